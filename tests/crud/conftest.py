import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_app.db import SessionFactory


@pytest.fixture
def session_factory(async_test_db: tuple[AsyncEngine, SessionFactory]) -> SessionFactory:
    """Opens further sessions on the test database, to read back what another one wrote."""
    _, factory = async_test_db
    return factory
