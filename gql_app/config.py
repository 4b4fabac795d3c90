import re
import secrets
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gql_app.security.key_derivation import derive_key
from gql_app.security.signing_keys import SigningAlgorithm

# Browsers treat http://localhost as a secure context, so passkeys work there unencrypted.
_LOCALHOST_ORIGIN = re.compile(r"http://localhost(:[0-9]{1,5})?")

Environment = Literal["development", "test", "production"]
EmailBackendName = Literal["console", "smtp", "memory"]
PasswordHashingCost = Literal["standard", "minimal"]

MIN_SECRET_KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class RateLimitValues:
    """Every business-logic rate limit: windows in the `limits` notation, ";"-separated."""

    login_attempts_per_account: str
    login_attempts_per_ip: str
    registrations_per_ip: str
    password_resets_per_ip: str
    password_resets_per_email: str
    refreshes_per_ip: str
    email_verifications_per_ip: str


RATE_LIMIT_SETTINGS = tuple(field.name for field in fields(RateLimitValues))

PRODUCTION_RATE_LIMITS = RateLimitValues(
    login_attempts_per_account="10/15minutes;100/hour",
    login_attempts_per_ip="60/minute;600/hour",
    registrations_per_ip="10/hour;50/day",
    password_resets_per_ip="10/hour;50/day",  # noqa: S106 - a rate
    password_resets_per_email="3/hour;10/day",  # noqa: S106 - a rate
    refreshes_per_ip="120/minute",
    email_verifications_per_ip="20/hour",
)
# A test suite creates and signs in thousands of accounts from one address within the hour;
# the limiter still runs, so what it does is still exercised, but it never refuses such a suite.
DEVELOPMENT_RATE_LIMITS = RateLimitValues(
    login_attempts_per_account="10000/hour",
    login_attempts_per_ip="10000/hour",
    registrations_per_ip="10000/hour",
    password_resets_per_ip="10000/hour",  # noqa: S106 - a rate
    password_resets_per_email="10000/hour",  # noqa: S106 - a rate
    refreshes_per_ip="10000/hour",
    email_verifications_per_ip="10000/hour",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Environment = "development"
    database_url: str = "sqlite+aiosqlite:///./gql_app.db"
    # Server databases (PostgreSQL) only; SQLite is embedded and needs no pool tuning.
    # Each wait is bounded, so a database that is down or frozen answers SERVICE_UNAVAILABLE
    # within seconds instead of holding requests (README, "Failure behaviour").
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    database_pool_timeout_seconds: float = Field(default=1.0, gt=0)
    database_pool_recycle_seconds: int = Field(default=1800, gt=0)
    database_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    database_statement_timeout_ms: int = Field(default=2000, ge=0)
    # On the client: a statement the server never answers (a frozen or cut-off host).
    database_command_timeout_seconds: float = Field(default=3.0, gt=0)
    secret_key: SecretStr | None = None
    # Where development keeps its generated secret, so tokens survive restarts.
    secret_key_file: Path = Path(".gql_app_secret")

    access_token_expire_seconds: int = Field(default=15 * 60, gt=0)
    refresh_token_expire_seconds: int = Field(default=30 * 24 * 3600, gt=0)
    # A just-rotated refresh token still works this long (two tabs refreshing at once).
    refresh_reuse_grace_seconds: int = Field(default=10, ge=0)
    # Browser session mode (README, "Browser session mode"): the refresh token travels only
    # in an HttpOnly cookie, never in a response body JavaScript can read.
    refresh_token_cookie: bool = False
    password_reset_token_expire_seconds: int = Field(default=3600, gt=0)
    email_verification_token_expire_seconds: int = Field(default=48 * 3600, gt=0)
    require_verified_email: bool = False
    # `register` with an address in use answers like a new registration and mails the
    # owner, instead of answering CONFLICT (README, "Accounts and tokens").
    registration_conceals_existing: bool = False
    jwt_issuer: str = "gql-app"
    jwt_audience: str = "gql-app"
    # Access tokens (README, "Signing keys"). ES256, EdDSA and RS256 keys are published at
    # /.well-known/jwks.json for other services to verify; HS256 keeps tokens to this one.
    jwt_algorithm: SigningAlgorithm = "ES256"
    # Encrypts the private signing keys stored in the database. Unset: derived from SECRET_KEY.
    key_encryption_key: SecretStr | None = None
    # A new key is published this long before it signs, so verifiers' caches have it first.
    signing_key_publish_seconds: int = Field(default=3600, ge=0)
    # Unset: keys are rotated by `gql-app keys rotate` only.
    signing_key_rotation_days: int | None = Field(default=None, gt=0)
    # How long a worker trusts the keys it read: a key activated or retired elsewhere is
    # honoured by every worker within this long.
    signing_key_cache_seconds: float = Field(default=30.0, gt=0)

    # Second factors (README, "Second factors"). The name authenticator apps show the
    # account under.
    mfa_issuer: str = "gql-app"
    # Sensitive changes ask for a sign-in (or reauthenticate) at most this long ago.
    reauth_max_age_seconds: int = Field(default=600, gt=0)
    # Superuser-only operations need a session signed in with a second factor.
    require_mfa_for_superusers: bool = False

    # Passkeys (README, "Passkeys"). The relying party ID passkeys are made for: the site's
    # domain. Unset: the host name of FRONTEND_BASE_URL.
    webauthn_rp_id: str | None = None
    webauthn_rp_name: str = "gql-app"
    # The page origins passkeys are accepted from, a JSON list. Unset: the origin of
    # FRONTEND_BASE_URL, and in development also any http://localhost:<port>.
    webauthn_origins: list[str] | None = None
    webauthn_user_verification: Literal["preferred", "required"] = "preferred"

    # Security events (README, "Security activity") older than this are deleted by
    # `gql-app events purge`.
    security_event_retention_days: int = Field(default=90, gt=0)
    # Notices mailed to the account's owner after a change to its security, one switch per
    # kind: a sign-in from a device not seen in 90 days; a password changed or reset; a
    # second factor turned on or off, recovery codes renewed or one used; a passkey added or
    # removed; a session ended for refresh-token reuse; the old address of an email change.
    security_notice_new_sign_in: bool = True
    security_notice_password: bool = True
    security_notice_mfa: bool = True
    security_notice_passkeys: bool = True
    security_notice_session_theft: bool = True
    security_notice_email_change: bool = True

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

    # Business-logic rate limits (see README, "Rate limits"). Each limit is one or more
    # windows in the `limits` notation, ";"-separated: "10/15minutes;100/hour". Unset, a
    # limit takes its environment's default (`rate_limits`): production's, or development's
    # far larger ones.
    rate_limit_enabled: bool = True
    # Unset: counters live in the process (one worker). Set (redis://host:6379/0) to share
    # them between workers and keep them across restarts.
    redis_url: str | None = None
    redis_connect_timeout_seconds: float = Field(default=1.0, gt=0)
    redis_timeout_seconds: float = Field(default=1.0, gt=0)
    rate_limit_key_prefix: str = "gql-app"
    login_attempts_per_account: str | None = None
    login_attempts_per_ip: str | None = None
    registrations_per_ip: str | None = None
    password_resets_per_ip: str | None = None
    password_resets_per_email: str | None = None
    refreshes_per_ip: str | None = None
    email_verifications_per_ip: str | None = None
    # Reverse proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For is believed.
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )

    graphiql: bool | None = None
    # GraphQL hardening (OWASP GraphQL cheat sheet); None means "on outside production".
    graphql_introspection: bool | None = None
    graphql_suggestions: bool | None = None
    graphql_get_queries: bool | None = None
    graphql_max_depth: int = Field(default=10, ge=1)
    graphql_max_aliases: int = Field(default=15, ge=0)
    graphql_max_tokens: int = Field(default=2000, ge=10)
    graphql_max_directives: int = Field(default=10, ge=0)
    # Fields with every fragment spread written out, and fields merged under one result key.
    graphql_max_fields: int = Field(default=1000, ge=1)
    graphql_max_fields_per_key: int = Field(default=20, ge=1)
    # Wall-clock time a document's checks may hold the event loop before it is refused.
    graphql_check_budget_ms: int = Field(default=200, ge=1)
    # Distinct documents whose parse and validation outcome is kept (least recently used go).
    graphql_document_cache_size: int = Field(default=128, ge=1)
    # Automatic persisted queries: kept in memory per worker, or in Redis when REDIS_URL is set.
    persisted_queries_cache_size: int = Field(default=1000, ge=1)
    persisted_queries_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    # Longer documents still run; they are just sent in full every time.
    persisted_query_max_bytes: int = Field(default=16_384, ge=1)
    max_body_bytes: int = Field(default=100_000, ge=1024)
    # The HTTP server (`gql-app serve`), per worker process (README, "Failure behaviour").
    server_max_header_bytes: int = Field(default=32_768, ge=1024)
    server_max_headers: int = Field(default=100, ge=10)
    server_header_timeout_seconds: float = Field(default=5.0, gt=0)
    server_keep_alive_seconds: int = Field(default=5, ge=1)
    server_max_connections: int = Field(default=512, ge=1)
    # A worker whose event loop stops turning this long exits, and is replaced; 0 turns it off.
    worker_watchdog_seconds: float = Field(default=10.0, ge=0)
    # A request still running after this is answered SERVICE_UNAVAILABLE (DEADLINE_EXCEEDED).
    request_timeout_seconds: float = Field(default=10.0, gt=0)
    # Password checks waiting for a hashing thread, per process; beyond, sign-ins are
    # answered SERVICE_UNAVAILABLE at once instead of waiting for seconds.
    password_hashing_queue_size: int = Field(default=32, ge=1)
    # For test suites only: "minimal" hashes new passwords at the least cost argon2 takes, so
    # thousands of sign-ins cost milliseconds. Refused in production.
    password_hashing_cost: PasswordHashingCost = "standard"  # noqa: S105 - a cost
    # Browser origins allowed to call the API. Unset: the origin of FRONTEND_BASE_URL in
    # development (the frontend a newcomer starts works at once), none elsewhere.
    cors_origins: list[str] | None = None
    migrate_on_start: bool = True
    log_level: str = "INFO"
    # JSON lines for log collectors; readable lines for people. Unset: JSON in production.
    log_format: Literal["json", "text"] | None = None

    @field_validator(*RATE_LIMIT_SETTINGS)
    @classmethod
    def _rate_limit_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_many(value)  # ValueError on anything the limiter could not use
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://")):
            raise ValueError("REDIS_URL must start with redis:// or rediss://")
        return value or None

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _resolve_secret_key(self) -> Self:
        if self.secret_key is None:
            if self.environment == "production":
                raise ValueError("SECRET_KEY must be set when ENVIRONMENT=production")
            self.secret_key = SecretStr(_local_development_secret(self.secret_key_file))
        # Keys derived from fewer bytes than the hash output are weaker than they look.
        if len(self.secret_key.get_secret_value().encode()) < MIN_SECRET_KEY_BYTES:
            raise ValueError(f"SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes")
        encryption_key = self.key_encryption_key
        if (
            encryption_key is not None
            and len(encryption_key.get_secret_value().encode()) < MIN_SECRET_KEY_BYTES
        ):
            raise ValueError(f"KEY_ENCRYPTION_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes")
        return self

    @field_validator("webauthn_origins")
    @classmethod
    def _passkey_origins_are_origins(cls, value: list[str] | None) -> list[str] | None:
        for origin in value or []:
            # What a browser puts in clientDataJSON: scheme, host, port; no path, no slash.
            if origin_of(origin) != origin:
                raise ValueError(
                    f"WEBAUTHN_ORIGINS: {origin!r} is not an origin such as https://app.example"
                )
        return value

    @model_validator(mode="after")
    def _credentials_only_from_named_origins(self) -> Self:
        # The refresh cookie makes requests carry credentials; a wildcard would let any site
        # send them (the CORS middleware would echo its origin back).
        if self.refresh_token_cookie and "*" in (self.cors_origins or []):
            raise ValueError(
                "CORS_ORIGINS may not contain '*' when REFRESH_TOKEN_COOKIE=true: "
                "list the frontend's origins"
            )
        return self

    @model_validator(mode="after")
    def _standard_hashing_in_production(self) -> Self:
        standard = self.password_hashing_cost == "standard"  # noqa: S105 - a cost
        if self.environment == "production" and not standard:
            raise ValueError("PASSWORD_HASHING_COST must be standard when ENVIRONMENT=production")
        return self

    def _outside_production_unless(self, explicit: bool | None) -> bool:
        return explicit if explicit is not None else self.environment != "production"

    @property
    def graphiql_enabled(self) -> bool:
        return self._outside_production_unless(self.graphiql)

    @property
    def introspection_enabled(self) -> bool:
        return self._outside_production_unless(self.graphql_introspection)

    @property
    def suggestions_enabled(self) -> bool:
        return self._outside_production_unless(self.graphql_suggestions)

    @property
    def get_queries_enabled(self) -> bool:
        return self._outside_production_unless(self.graphql_get_queries)

    @property
    def allowed_cors_origins(self) -> list[str]:
        if self.cors_origins is not None:
            return self.cors_origins
        if self.environment != "development":
            return []
        frontend = origin_of(self.frontend_base_url)
        return [frontend] if frontend else []

    @property
    def passkey_rp_id(self) -> str:
        return self.webauthn_rp_id or urlsplit(self.frontend_base_url).hostname or "localhost"

    def accepts_passkey_origin(self, origin: str) -> bool:
        """Whether a passkey ceremony on a page of ``origin`` counts."""
        if self.webauthn_origins is not None:
            return origin in self.webauthn_origins
        if origin == origin_of(self.frontend_base_url):
            return True
        # Any port of localhost, for a newcomer's frontend: only where the passkeys are
        # localhost's own, so it never widens a real site's origins.
        return (
            self.environment == "development"
            and self.passkey_rp_id == "localhost"
            and _LOCALHOST_ORIGIN.fullmatch(origin) is not None
        )

    @property
    def dev_mail_enabled(self) -> bool:
        # Only what the console prints anyway: with a real mail server the messages reach
        # real people, and their links must not be readable by whoever finds the page.
        return self.environment == "development" and self.email_backend == "console"

    @property
    def root_redirects_to_graphiql(self) -> bool:
        return self.environment == "development" and self.graphiql_enabled

    @property
    def resolved_log_format(self) -> str:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.environment == "production" else "text"

    @property
    def rate_limits(self) -> RateLimitValues:
        """Each limit as set, or else its default in this environment."""
        defaults = (
            PRODUCTION_RATE_LIMITS if self.environment == "production" else DEVELOPMENT_RATE_LIMITS
        )
        return replace(defaults, **{name: getattr(self, name) for name in self.rate_limits_set})

    @property
    def rate_limits_set(self) -> tuple[str, ...]:
        """The names of the limits set explicitly, in any environment."""
        return tuple(name for name in RATE_LIMIT_SETTINGS if getattr(self, name) is not None)

    @property
    def secret_key_value(self) -> str:
        assert self.secret_key is not None, "resolved by the validator"
        return self.secret_key.get_secret_value()

    @property
    def key_encryption_secret(self) -> bytes:
        """The AES key that encrypts the stored private signing keys."""
        return self.key_encryption_secrets[0]

    @property
    def key_encryption_secrets(self) -> tuple[bytes, ...]:
        """The AES keys a stored signing key may be encrypted with, the one new keys use
        first: with KEY_ENCRYPTION_KEY set, keys stored before still decrypt."""
        from_secret_key = derive_key(self.secret_key_value, purpose="signing key encryption")
        if self.key_encryption_key is None:
            return (from_secret_key,)
        dedicated = derive_key(
            self.key_encryption_key.get_secret_value(), purpose="signing key encryption"
        )
        return (dedicated, from_secret_key)

    @property
    def recovery_code_keys(self) -> tuple[bytes, ...]:
        """The keys recovery codes are hashed with, the one new codes use first: from
        KEY_ENCRYPTION_KEY when set (so SECRET_KEY can change), else from SECRET_KEY."""
        from_secret_key = derive_key(self.secret_key_value, purpose="recovery codes")
        if self.key_encryption_key is None:
            return (from_secret_key,)
        dedicated = derive_key(self.key_encryption_key.get_secret_value(), purpose="recovery codes")
        return (dedicated, from_secret_key)

    @property
    def security_event_email_key(self) -> bytes:
        """The key failed sign-ins' unknown addresses are hashed with in the security trail."""
        return derive_key(self.secret_key_value, purpose="security event addresses")

    @property
    def refresh_successor_key(self) -> bytes:
        return derive_key(self.secret_key_value, purpose="refresh token successor")

    @property
    def jwks_max_age_seconds(self) -> int:
        """How long verifiers may cache the key set: well within the publish delay, so a
        key published for the delay is in every cache before it signs."""
        return min(600, self.signing_key_publish_seconds // 4)


def origin_of(url: str) -> str | None:
    """The Origin header a browser sends from pages under ``url``; None for a URL it never would."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default_port = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + ("" if port in (None, default_port) else f":{port}")


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
