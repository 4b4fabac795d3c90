import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import partial

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException

from gql_app.api import graphiql, planned_execution
from gql_app.api.context import get_context
from gql_app.api.dev_mail import add_dev_mail_route
from gql_app.api.documents import DocumentCache
from gql_app.api.health import add_health_routes
from gql_app.api.http import RequestGuard, SecurityHeaders
from gql_app.api.lean_lane import LeanLane
from gql_app.api.persisted_queries import (
    PersistedQueryStore,
    RedisQueryStorage,
    persisted_query_storage,
)
from gql_app.api.refresh_cookie import CSRF_HEADER
from gql_app.api.request_errors import http_exception_answer
from gql_app.api.request_log import RequestLog
from gql_app.api.router import GraphQLEndpoint
from gql_app.api.schema import schema_for
from gql_app.api.well_known import add_well_known_routes
from gql_app.availability import Availability
from gql_app.config import Settings, get_settings
from gql_app.db import (
    create_engine_for,
    create_migration_engine,
    create_session_factory,
    database_unreachable,
    watch_availability,
)
from gql_app.email.backends import backend_from_settings
from gql_app.email.mailbox import Mailbox
from gql_app.email.service import EmailService
from gql_app.logging_config import configure_logging
from gql_app.migrations import upgrade_to_head
from gql_app.security.passwords import configure_hashing_queue, configure_password_hashing
from gql_app.security.rate_limit import RateLimiter, describe_limits
from gql_app.services import signing_keys as signing_keys_service
from gql_app.services import users as users_service
from gql_app.services.key_ring import KeyRing
from gql_app.services.passkey_challenges import passkey_challenge_store
from gql_app.watchdog import Watchdog

logger = logging.getLogger(__name__)

# How often a worker checks whether automatic rotation is due (SIGNING_KEY_ROTATION_DAYS).
KEY_ROTATION_CHECK_SECONDS = 300


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    _configure_process(settings)
    availability = Availability()
    engine = create_engine_for(settings)
    watch_availability(engine, availability)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logger.info("%s", describe_limits(settings))
        if settings.migrate_on_start:
            await _migrate(settings, engine)
        await _ensure_signing_key(app, settings)
        await _ensure_first_superuser(app, settings)
        _freeze_startup_objects()
        watchdog = Watchdog(stall_seconds=settings.worker_watchdog_seconds)
        if settings.worker_watchdog_seconds:
            watchdog.start()
        rotation = _start_key_rotation(app, settings)
        yield
        if rotation is not None:
            rotation.cancel()
            with suppress(asyncio.CancelledError):
                await rotation
        watchdog.stop()
        await engine.dispose()
        await app.state.rate_limiter.aclose()
        await app.state.persisted_queries.storage.aclose()
        await app.state.passkey_challenges.aclose()

    app = FastAPI(
        title="gql-app",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.availability = availability
    app.state.engine = engine
    app.state.session_factory = create_session_factory(engine)
    app.state.rate_limiter = RateLimiter.from_settings(settings, availability=availability)
    app.state.key_ring = KeyRing(settings)
    app.state.passkey_challenges = passkey_challenge_store(settings, availability=availability)
    mailbox = Mailbox() if settings.dev_mail_enabled else None
    app.state.email_service = EmailService(
        backend=backend_from_settings(settings, mailbox=mailbox), settings=settings
    )
    _warn_of_development_settings_in_production(settings)

    schema, documents = schema_for(settings)
    storage = persisted_query_storage(settings)
    persisted_queries = PersistedQueryStore(
        storage=storage,
        accepts=partial(documents.accepts, schema._schema),
        max_bytes=settings.persisted_query_max_bytes,
        availability=availability,
    )
    app.state.persisted_queries = persisted_queries
    graphql_router = GraphQLEndpoint(
        schema,
        context_getter=get_context,
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        allow_queries_via_get=settings.get_queries_enabled,
        persisted_queries=persisted_queries,
        request_timeout_seconds=settings.request_timeout_seconds,
    )
    app.include_router(graphql_router, prefix="/graphql")
    app.add_exception_handler(StarletteHTTPException, http_exception_answer)
    _add_pages(app, settings, mailbox=mailbox)
    _add_lean_lane(app, graphql_router, documents, settings)
    _add_middleware(app, settings)
    add_health_routes(app, redis=storage if isinstance(storage, RedisQueryStorage) else None)
    add_well_known_routes(app)
    return app


def _add_lean_lane(
    app: FastAPI, endpoint: GraphQLEndpoint, documents: DocumentCache, settings: Settings
) -> None:
    if not planned_execution.checked_versions_installed():
        logger.warning(
            "graphql-core and strawberry-graphql are not the versions the planned executor "
            "and the lean lane were checked against (%s, installed %s): both are off",
            dict(planned_execution.CHECKED_VERSIONS),
            planned_execution.installed_versions(),
        )
        return
    if not LeanLane.serves(endpoint.schema):  # type: ignore[arg-type]
        return
    # Innermost: it answers what it can with the router's parts, after every other layer.
    app.add_middleware(
        LeanLane,
        endpoint=endpoint,
        documents=documents,
        hide_suggestions=not settings.suggestions_enabled,
    )


def _warn_of_development_settings_in_production(settings: Settings) -> None:
    if settings.environment != "production":
        return
    if settings.email_backend == "console":
        logger.warning("EMAIL_BACKEND=console in production: mail is printed, not sent")
    if settings.passkey_rp_id == "localhost":
        logger.warning(
            "passkeys are made for localhost in production: set WEBAUTHN_RP_ID and "
            "WEBAUTHN_ORIGINS (or FRONTEND_BASE_URL) to the site's domain"
        )


def _add_pages(app: FastAPI, settings: Settings, *, mailbox: Mailbox | None) -> None:
    """What people open in a browser, where the settings allow it."""
    if settings.graphiql_enabled:
        graphiql.mount_assets(app)
    if settings.root_redirects_to_graphiql:
        graphiql.redirect_root(app)
    if mailbox is not None:
        add_dev_mail_route(app, mailbox=mailbox)


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    # Added last runs first: the request log, headers on every answer, the guard, then CORS.
    if cors_origins := settings.allowed_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", CSRF_HEADER],
            # The refresh cookie rides only on credentialed requests, and those only from
            # these origins (never '*': the settings refuse it in this mode).
            allow_credentials=settings.refresh_token_cookie,
            expose_headers=["X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders, hsts=settings.environment == "production")
    # Outermost: its line has the status every other layer settled on.
    app.add_middleware(RequestLog, trusted_proxies=settings.trusted_proxies)


def _configure_process(settings: Settings) -> None:
    """What the settings choose for the whole process: logging and password hashing."""
    configure_logging(settings.log_level, log_format=settings.resolved_log_format)
    configure_hashing_queue(queue_size=settings.password_hashing_queue_size)
    configure_password_hashing(cost=settings.password_hashing_cost)


async def _migrate(settings: Settings, engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        # An embedded database sets no timeouts, and an in-memory one exists only here.
        await upgrade_to_head(engine)
        return
    migration_engine = create_migration_engine(settings)
    try:
        await upgrade_to_head(migration_engine)
    finally:
        await migration_engine.dispose()


def _freeze_startup_objects() -> None:
    # What startup built (schema, ORM mappings, password dictionaries) lives as long as the
    # process. Left to the collector, each full collection walks all of it and stalls
    # every request in flight for tens of milliseconds; frozen, it is never walked.
    gc.collect()
    gc.freeze()


async def _ensure_signing_key(app: FastAPI, settings: Settings) -> None:
    """A key to sign with before the first request, made once however many workers start
    together; and the proof that this worker can decrypt it (a changed SECRET_KEY or
    KEY_ENCRYPTION_KEY stops the start, with that said, rather than every sign-in)."""
    key_ring: KeyRing = app.state.key_ring
    try:
        async with app.state.session_factory() as session:
            done = await signing_keys_service.ensure_signing_key(session=session, settings=settings)
            await session.commit()
            key_ring.forget()
            await key_ring.signing_key(session=session)
    except Exception as error:
        if not database_unreachable(error):
            raise
        # A worker replaced during an outage must start, to answer SERVICE_UNAVAILABLE and
        # /healthz; the keys are read, or made, at the first sign-in.
        logger.warning("signing keys not checked at startup: the database does not answer")
        return
    if done:
        logger.info("%s", done)


def _start_key_rotation(app: FastAPI, settings: Settings) -> "asyncio.Task[None] | None":
    if settings.signing_key_rotation_days is None:
        return None
    return asyncio.create_task(_rotate_keys_when_due(app, settings), name="signing key rotation")


async def _rotate_keys_when_due(app: FastAPI, settings: Settings) -> None:
    while True:
        try:
            async with app.state.session_factory() as session:
                for done in await signing_keys_service.rotate_when_due(
                    session=session, settings=settings
                ):
                    logger.info("%s", done)
                await session.commit()
        except Exception:
            # The database may be down for a while; the next round tries again.
            logger.warning("automatic signing key rotation failed; retrying later", exc_info=True)
        await asyncio.sleep(KEY_ROTATION_CHECK_SECONDS)


async def _ensure_first_superuser(app: FastAPI, settings: Settings) -> None:
    if not settings.first_superuser_email or settings.first_superuser_password is None:
        return
    async with app.state.session_factory() as session:
        await users_service.ensure_superuser(
            session=session,
            email=settings.first_superuser_email,
            password=settings.first_superuser_password.get_secret_value(),
        )
