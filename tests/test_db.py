from gql_app.config import Settings
from gql_app.db import engine_options


def test_sqlite_keeps_its_own_pool(settings: Settings) -> None:
    assert engine_options(settings) == {}


def test_postgresql_gets_the_configured_limits(settings: Settings) -> None:
    options = engine_options(
        settings.model_copy(
            update={
                "database_url": "postgresql+asyncpg://app@db.internal/app",
                "database_pool_size": 7,
                "database_max_overflow": 3,
                "database_pool_timeout_seconds": 4.5,
                "database_connect_timeout_seconds": 2.0,
                "database_statement_timeout_ms": 1500,
            }
        )
    )

    assert options["pool_size"] == 7
    assert options["max_overflow"] == 3
    assert options["pool_timeout"] == 4.5
    assert options["connect_args"]["timeout"] == 2.0
    assert options["connect_args"]["server_settings"]["statement_timeout"] == "1500"
    assert options["connect_args"]["server_settings"]["idle_in_transaction_session_timeout"] == (
        "3000"
    )
