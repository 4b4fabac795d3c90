import gc
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr
from sqlalchemy import select

from gql_app.config import Settings
from gql_app.db import create_engine
from gql_app.main import create_app
from gql_app.models import User
from tests.conftest import TEST_SECRET, LogRecords
from tests.factories import STRONG_PASSWORD
from tests.graphql import LOGIN, GraphQLClient


def file_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "secret_key": SecretStr(TEST_SECRET),
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
        **overrides,
    }
    return Settings.model_validate(values)


class TestHealth:
    async def test_healthz_answers_without_the_database(self, client: AsyncClient) -> None:
        response = await client.get("/healthz")

        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_readyz_answers_when_the_database_does(self, client: AsyncClient) -> None:
        response = await client.get("/readyz")

        assert response.status_code == 200
        assert response.json() == {"status": "ok", "checks": {"database": "ok"}}

    async def test_readyz_is_unavailable_when_the_database_is_not(self, settings: Settings) -> None:
        app = create_app(settings)
        await app.state.engine.dispose()
        # Nothing listens on port 1, so every connection is refused at once.
        app.state.engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
            response = await http.get("/readyz")
        await app.state.engine.dispose()

        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "checks": {"database": "unavailable"}}


class TestGraphiQL:
    async def test_served_in_development(self, client: AsyncClient) -> None:
        response = await client.get("/graphql", headers={"Accept": "text/html"})

        assert response.status_code == 200
        assert "graphiql" in response.text.lower()
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        assert "script-src 'self' 'sha256-" in response.headers["content-security-policy"]

    @pytest.mark.parametrize(
        "overrides",
        [{"graphiql": False}, {"environment": "production", "password_hashing_cost": "standard"}],
    )
    async def test_not_served_when_disabled_or_in_production(
        self, tmp_path: Path, overrides: dict[str, object]
    ) -> None:
        app = create_app(file_settings(tmp_path, **overrides))
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
            response = await http.get("/graphql", headers={"Accept": "text/html"})
        await app.state.engine.dispose()

        assert "graphiql" not in response.text.lower()
        assert response.status_code == 404


class TestStartup:
    async def test_migrates_and_creates_the_first_superuser_idempotently(
        self, tmp_path: Path
    ) -> None:
        settings = file_settings(
            tmp_path,
            first_superuser_email="Admin@Example.com",
            first_superuser_password=SecretStr(STRONG_PASSWORD),
        )
        for _ in range(2):
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                async with app.state.session_factory() as session:
                    users = (await session.scalars(select(User))).all()
                transport = ASGITransport(app=app)
                async with AsyncClient(transport=transport, base_url="http://t") as http:
                    response = await GraphQLClient(http)(
                        LOGIN,
                        {"input": {"email": "admin@example.com", "password": STRONG_PASSWORD}},
                    )

            assert [(u.email, u.is_superuser) for u in users] == [("admin@example.com", True)]
            assert response.errors == []

    async def test_objects_built_at_startup_are_kept_out_of_garbage_collection(
        self, tmp_path: Path
    ) -> None:
        app = create_app(file_settings(tmp_path))
        gc.unfreeze()
        try:
            async with app.router.lifespan_context(app):
                frozen = gc.get_freeze_count()
        finally:
            gc.unfreeze()

        assert frozen > 0

    @pytest.mark.parametrize(
        ("overrides", "line"),
        [
            ({}, "Rate limits on (development defaults): login 10000/hour per IP, "),
            ({"rate_limit_enabled": False}, "Rate limits off (RATE_LIMIT_ENABLED=false)"),
        ],
    )
    async def test_says_once_which_rate_limits_are_in_force(
        self, tmp_path: Path, app_log: LogRecords, overrides: dict[str, object], line: str
    ) -> None:
        app = create_app(file_settings(tmp_path, **overrides))
        async with app.router.lifespan_context(app):
            pass

        said = [r.getMessage() for r in app_log.records if "Rate limits" in r.getMessage()]
        assert len(said) == 1
        assert said[0].startswith(line)

    @pytest.mark.parametrize(
        ("overrides", "warned"),
        [
            ({"email_backend": "console"}, ["EMAIL_BACKEND=console", "passkeys are made for"]),
            ({"email_backend": "memory", "frontend_base_url": "https://app.example"}, []),
        ],
        ids=["development-defaults", "configured"],
    )
    async def test_production_warns_of_settings_only_development_wants(
        self, tmp_path: Path, app_log: LogRecords, overrides: dict[str, object], warned: list[str]
    ) -> None:
        settings = file_settings(
            tmp_path, environment="production", password_hashing_cost="standard", **overrides
        )

        app = create_app(settings)

        prefixes = ("EMAIL_BACKEND=console", "passkeys are made for")
        said = [
            prefix
            for record in app_log.records
            for prefix in prefixes
            if record.levelname == "WARNING" and record.getMessage().startswith(prefix)
        ]
        assert said == warned
        await app.state.engine.dispose()

    def test_production_refuses_a_missing_or_short_secret(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="SECRET_KEY"):
            file_settings(tmp_path, environment="production", secret_key=None)
        with pytest.raises(ValueError, match="at least 32 bytes"):
            file_settings(tmp_path, environment="production", secret_key=SecretStr("short"))
