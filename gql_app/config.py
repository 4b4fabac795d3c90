import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]
EmailBackendName = Literal["console", "smtp", "memory"]

MIN_SECRET_KEY_BYTES = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Environment = "development"
    database_url: str = "sqlite+aiosqlite:///./gql_app.db"
    # Server databases (PostgreSQL) only; SQLite is embedded and needs no pool tuning.
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    database_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    database_pool_recycle_seconds: int = Field(default=1800, gt=0)
    database_connect_timeout_seconds: float = Field(default=10.0, gt=0)
    database_statement_timeout_ms: int = Field(default=30_000, ge=0)
    secret_key: SecretStr | None = None
    # Where development keeps its generated secret, so tokens survive restarts.
    secret_key_file: Path = Path(".gql_app_secret")

    access_token_expire_seconds: int = Field(default=15 * 60, gt=0)
    refresh_token_expire_seconds: int = Field(default=30 * 24 * 3600, gt=0)
    # A just-rotated refresh token still works this long (two tabs refreshing at once).
    refresh_reuse_grace_seconds: int = Field(default=10, ge=0)
    password_reset_token_expire_seconds: int = Field(default=3600, gt=0)
    email_verification_token_expire_seconds: int = Field(default=48 * 3600, gt=0)
    require_verified_email: bool = False
    jwt_issuer: str = "gql-app"
    jwt_audience: str = "gql-app"

    first_superuser_email: str | None = None
    first_superuser_password: SecretStr | None = None

    # Links in emails point here: the frontend pages that take ?token=...
    frontend_base_url: str = "http://localhost:3000"
    email_backend: EmailBackendName = "console"
    email_from: str = "gql-app <no-reply@localhost>"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_ssl: bool = False
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)

    graphiql: bool | None = None
    migrate_on_start: bool = True
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _resolve_secret_key(self) -> Self:
        if self.secret_key is None:
            if self.environment == "production":
                raise ValueError("SECRET_KEY must be set when ENVIRONMENT=production")
            self.secret_key = SecretStr(_local_development_secret(self.secret_key_file))
        # HS256 keys shorter than the hash output weaken every token, in any environment.
        if len(self.secret_key.get_secret_value().encode()) < MIN_SECRET_KEY_BYTES:
            raise ValueError(f"SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes")
        return self

    @property
    def graphiql_enabled(self) -> bool:
        if self.graphiql is not None:
            return self.graphiql
        return self.environment != "production"

    @property
    def signing_key(self) -> str:
        assert self.secret_key is not None, "resolved by the validator"
        return self.secret_key.get_secret_value()


def _local_development_secret(path: Path) -> str:
    if path.exists():
        stored = path.read_text().strip()
        if len(stored.encode()) >= MIN_SECRET_KEY_BYTES:
            return stored
    generated = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(generated)
    return generated


@lru_cache
def get_settings() -> Settings:
    return Settings()
