from collections.abc import Iterator, Mapping

import pytest
from fastapi.testclient import TestClient
from gql_app.testing import GqlAppServer

from reports.app import TokenSettings, create_app

# gql-app's fixtures: gql_app_server, gql_client, create_user, superuser, login_as,
# mail_outbox. Nothing of the plugin is active in a suite that does not ask for it.
pytest_plugins = ["gql_app.testing"]


@pytest.fixture(scope="session")
def gql_app_settings() -> Mapping[str, str]:
    """gql-app's settings for this suite, over the plugin's defaults."""
    return {"JWT_AUDIENCE": "reports", "FRONTEND_BASE_URL": "https://reports.example"}


@pytest.fixture
def reports(gql_app_server: GqlAppServer) -> Iterator[TestClient]:
    """The service under test: it trusts the keys gql-app publishes, for gql-app's audience."""
    settings = TokenSettings(
        jwks_url=gql_app_server.jwks_url,
        audience=gql_app_server.settings["JWT_AUDIENCE"],
    )
    with TestClient(create_app(settings)) as client:
        yield client
