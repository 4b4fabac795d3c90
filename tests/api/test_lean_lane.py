"""The lean lane and the general path give every request the same answer, byte for byte.

``LeanLane`` (gql_app/api/lean_lane.py) answers the common POST itself and passes everything
else on to the general path, ``GraphQLEndpoint.run``. It passes on any body with a key other
than query, variables, operationName and extensions, and the router ignores such keys, so
every request here has a twin: the same body plus ``"generalPath": true``, which only the
general path answers. A spy on ``GraphQLEndpoint.run`` (it counts the call, then runs the
real method) proves which path answered each request of a pair.

The two answers of a pair must have the same status, the same body (bytes), the same headers
in the same order (x-request-id aside: each request gets a fresh one, and a masked error
quotes it, so each body's own id is replaced by a placeholder before the comparison) and the
same request-log line (status, operation, its type and outcome).
"""

import asyncio
import json
import logging
import re
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from strawberry.extensions import SchemaExtension

from gql_app.api.lean_lane import LeanLane
from gql_app.api.media_types import GRAPHQL_RESPONSE_JSON, JSON
from gql_app.api.planned_execution import PlannedExecutionContext
from gql_app.api.request_log import REQUEST_ID_HEADER
from gql_app.api.router import GraphQLEndpoint
from gql_app.api.schema import Mutation, Query, Schema, schema_for
from gql_app.config import Settings
from gql_app.db import SessionFactory, create_engine, create_session_factory
from gql_app.email.backends import MemoryBackend
from gql_app.main import create_app
from gql_app.models import Passkey, User
from gql_app.models.base import utc_now
from gql_app.security import passwords
from gql_app.services import users as users_service
from tests.api.test_mfa import COMPLETE_LOGIN, MY_MFA
from tests.api.test_mfa import MY_SESSIONS as MY_SESSIONS_WITH_PROOF
from tests.api.test_outages import (
    LOGIN_BODY,
    REFUSING_REDIS,
    app_with,
    database_down,  # noqa: F401 - a fixture, set up by name
    hashing_busy,  # noqa: F401 - a fixture, set up by name
)
from tests.api.test_persisted_queries import persisted, sha256
from tests.api.test_security_events import MY_SECURITY_EVENTS, SECURITY_EVENTS
from tests.api.test_security_events import MY_SESSIONS as MY_SESSION_IDS
from tests.api.test_users import USER, USERS, cursor
from tests.auth_factories import create_auth_session, signed_access_token
from tests.factories import ADMIN_PASSWORD, STRONG_PASSWORD, USER_PASSWORD, create_user
from tests.fixtures.database import create_sqlite_schema
from tests.graphql import LOGIN
from tests.mail import RESET_PATH, VERIFY_PATH, action_link, action_token
from tests.operations import (
    AUTH_PAYLOAD_FIELDS,
    CHANGE_PASSWORD,
    CREATE_USER,
    DELETE_USER,
    LOGOUT,
    LOGOUT_ALL,
    ME,
    MY_SESSIONS,
    REFRESH_TOKEN,
    REQUEST_EMAIL_VERIFICATION,
    REQUEST_PASSWORD_RESET,
    RESET_PASSWORD,
    REVOKE_SESSION,
    UPDATE_ME,
    UPDATE_USER,
    USER_FIELDS,
    VERIFY_EMAIL,
)
from tests.passkey_flows import DELETE_PASSKEY, MY_PASSKEYS

GENERAL_PATH_KEY = "generalPath"
ACCEPTS = [JSON, GRAPHQL_RESPONSE_JSON]
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
NEW_PASSWORD = "violet tangerine submarine 42"
ORIGIN = "https://app.example.com"
MIB = 1024 * 1024
USER_EMAIL = "testuser@example.com"

REGISTER = f"""
mutation Register($input: RegisterInput!) {{ register(input: $input) {{ {USER_FIELDS} }} }}
"""
FULL_LOGIN = f"""
mutation Login($input: LoginInput!) {{ login(input: $input) {{ {AUTH_PAYLOAD_FIELDS} }} }}
"""
RESET_USER_MFA = "mutation Reset($id: ID!) { resetUserMfa(id: $id) { id email } }"
CONFIRM_TOTP_ENROLLMENT = "mutation Confirm($code: String!) { confirmTotpEnrollment(code: $code) }"
REGENERATE_RECOVERY_CODES = "mutation { regenerateRecoveryCodes }"


# What the test sees of the two paths.


@dataclass
class Paths:
    """GraphQLEndpoint.run's calls (a spy's count) and the request log's lines."""

    general_runs: int = 0
    lines: list[logging.LogRecord] = field(default_factory=list)


PATHS = Paths()


class _LogLines(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        PATHS.lines.append(record)


@pytest.fixture(autouse=True)
def paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[Paths]:
    """Counts the general path's runs and keeps the request log's lines, for every test."""
    PATHS.general_runs = 0
    PATHS.lines.clear()
    original_run = GraphQLEndpoint.run

    async def counted_run(self: GraphQLEndpoint, *args: Any, **kwargs: Any) -> Any:
        PATHS.general_runs += 1
        return await original_run(self, *args, **kwargs)

    monkeypatch.setattr(GraphQLEndpoint, "run", counted_run)
    handler = _LogLines(level=logging.DEBUG)
    request_log = logging.getLogger("gql_app.requests")
    request_log.addHandler(handler)
    yield PATHS
    request_log.removeHandler(handler)


def _without_fsync(connection: Any, _: object) -> None:
    # A test's database outlives no crash: commits need not wait for the disk.
    cursor = connection.cursor()
    cursor.execute("PRAGMA synchronous = OFF")
    cursor.close()


async def database_in(path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    event.listen(engine.sync_engine, "connect", _without_fsync)
    async with engine.begin() as connection:
        await create_sqlite_schema(connection)
    return engine


@pytest_asyncio.fixture
async def async_test_db(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, SessionFactory]]:
    """Conftest's fresh database, in a file rather than in memory.

    When a non-null field fails, graphql-core cancels its siblings still running, and a
    request's context invalidates the connection of a block that was cancelled
    (``Context.db``). Conftest's in-memory database lives in its one connection (StaticPool),
    so it would be gone for the next request of the pair; a file is opened again.
    """
    engine = await database_in(tmp_path / "test.db")
    yield engine, create_session_factory(engine)
    await engine.dispose()


@dataclass(frozen=True)
class Sent:
    """One HTTP request, as the test sends it."""

    content: bytes | None
    headers: dict[str, str]
    method: str = "POST"
    url: str = "/graphql"
    # In chunks and without a Content-Length, as a client streaming its body sends it.
    streamed: bool = False

    def describe(self) -> str:
        content = (self.content or b"")[:300]
        shown = {k: v[:40] for k, v in self.headers.items()}
        return f"{self.method} {self.url} {shown} {content!r}"


@dataclass(frozen=True)
class Answer:
    response: Response
    general_runs: int
    line: tuple[object, ...]


def posted(body: object, headers: dict[str, str] | None = None) -> Sent:
    return Sent(
        content=json.dumps(body).encode(),
        headers={"content-type": JSON, **(headers or {})},
    )


def twin_of(body: dict[str, Any]) -> dict[str, Any]:
    """The same request, with a key only the general path accepts (and then ignores)."""
    return {**body, GENERAL_PATH_KEY: True}


async def send(client: AsyncClient, request: Sent) -> Answer:
    runs_before = PATHS.general_runs
    lines_before = len(PATHS.lines)
    content: bytes | AsyncIterator[bytes] | None = request.content
    if request.streamed:
        content = chunks(request.content or b"")
    response = await client.request(
        request.method, request.url, content=content, headers=request.headers
    )
    lines = PATHS.lines[lines_before:]
    assert len(lines) == 1, f"one request-log line per request: {lines}"
    record = lines[0]
    line = tuple(
        getattr(record, name, None)
        for name in ("method", "path", "status", "operation", "operation_type", "outcome")
    )
    return Answer(response=response, general_runs=PATHS.general_runs - runs_before, line=line)


async def chunks(content: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(content), size):
        yield content[start : start + size]


def request_id_of(response: Response) -> str:
    [request_id] = response.headers.get_list(REQUEST_ID_HEADER)
    assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id
    return request_id


def body_of(response: Response) -> bytes:
    """The body, with the request's own id (masked errors quote it) as a placeholder."""
    return response.content.replace(request_id_of(response).encode(), b"<request-id>")


def header_pairs(response: Response, *, leave_out: frozenset[str]) -> list[tuple[str, str]]:
    return [
        (name.lower(), value)
        for name, value in response.headers.multi_items()
        if name.lower() not in leave_out
    ]


def assert_same_headers(
    lane: Response, general: Response, where: str, *, leave_out: frozenset[str]
) -> None:
    lane_headers = header_pairs(lane, leave_out=leave_out)
    general_headers = header_pairs(general, leave_out=leave_out)
    if lane_headers != general_headers:
        only_order = sorted(lane_headers) == sorted(general_headers)
        raise AssertionError(
            f"headers differ{' only in their order' if only_order else ''} for {where}:\n"
            f"  lane:    {lane_headers}\n  general: {general_headers}"
        )


async def answered_alike(
    client: AsyncClient, lane: Sent, general: Sent, *, runs: tuple[int, int] = (0, 1)
) -> tuple[Response, Response]:
    """Sends ``lane`` then ``general``; asserts which path answered each, and that the two
    answers are the same: status, body bytes, headers but x-request-id, log line."""
    lane_answer = await send(client, lane)
    general_answer = await send(client, general)
    return assert_alike(lane_answer, general_answer, lane.describe(), runs=runs)


def assert_alike(
    lane_answer: Answer, general_answer: Answer, where: str, *, runs: tuple[int, int]
) -> tuple[Response, Response]:
    assert (lane_answer.general_runs, general_answer.general_runs) == runs, (
        f"GraphQLEndpoint.run calls (request, twin) for {where}"
    )
    lane_response, general_response = lane_answer.response, general_answer.response
    assert lane_response.status_code == general_response.status_code, (
        f"status for {where}: lane {lane_response.status_code} {lane_response.content[:500]!r}"
        f" general {general_response.status_code} {general_response.content[:500]!r}"
    )
    assert body_of(lane_response) == body_of(general_response), f"body for {where}"
    assert_same_headers(
        lane_response, general_response, where, leave_out=frozenset({REQUEST_ID_HEADER})
    )
    assert lane_answer.line == general_answer.line, f"request-log line for {where}"
    return lane_response, general_response


async def both_paths(
    client: AsyncClient,
    body: dict[str, Any],
    headers: dict[str, str],
    *,
    lane_answers: bool = True,
) -> tuple[Response, Response]:
    """The request and its general-path twin, answered alike. ``lane_answers``: whether the
    lane answers the request itself (else it passes it on, and both reach run)."""
    return await answered_alike(
        client,
        posted(body, headers),
        posted(twin_of(body), headers),
        runs=(0 if lane_answers else 1, 1),
    )


def data_of(response: Response) -> Any:
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def codes_of(response: Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json().get("errors", [])]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A client of an app built by the test, and the app's resources closed after."""
    try:
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
            yield http
    finally:
        await app.state.rate_limiter.aclose()
        await app.state.persisted_queries.storage.aclose()
        await app.state.passkey_challenges.aclose()
        await app.state.engine.dispose()


# 1. Read-only queries, as every kind of caller.


@dataclass(frozen=True)
class Seeded:
    user: User
    superuser: User
    user_token: str
    superuser_token: str
    expired_token: str
    users_cursor: str
    events_cursor: str

    def headers(self, caller: str) -> dict[str, str]:
        return {
            "user": bearer(self.user_token),
            "superuser": bearer(self.superuser_token),
            "anonymous": {},
            "malformed": {"authorization": "Bearer not-a-jwt"},
            "expired": bearer(self.expired_token),
        }[caller]


CALLERS = ["user", "superuser", "anonymous", "malformed", "expired"]


async def end_cursor(client: AsyncClient, query: str, field_name: str, token: str) -> str:
    response = await client.post(
        "/graphql", json={"query": query, "variables": {"first": 1}}, headers=bearer(token)
    )
    end: str = data_of(response)[field_name]["pageInfo"]["endCursor"]
    return end


@pytest_asyncio.fixture
async def seeded(
    *,
    client: AsyncClient,
    db_session: AsyncSession,
    settings: Settings,
    test_user: User,
    test_superuser: User,
    user_token: str,
    superuser_token: str,
) -> Seeded:
    """Accounts, sessions (and their sign-in events), a passkey and pages to read."""
    for number in range(3):
        await create_user(db_session, email=f"member{number}@example.com", full_name="Member")
    await create_user(db_session, email="retired@example.org", is_active=False)
    db_session.add(
        Passkey(
            user_id=test_user.id,
            credential_id=b"\x01" * 16,
            public_key=b"unused",
            sign_count=0,
            transports=["internal", "hybrid"],
            aaguid=str(uuid.UUID(int=0)),
            name="Laptop",
        )
    )
    await db_session.commit()
    long_ago = utc_now() - timedelta(seconds=settings.access_token_expire_seconds + 60)
    auth_session = await create_auth_session(db_session, test_user)
    expired = await signed_access_token(
        db_session, settings, user_id=test_user.id, session_id=auth_session.id, now=long_ago
    )
    return Seeded(
        user=test_user,
        superuser=test_superuser,
        user_token=user_token,
        superuser_token=superuser_token,
        expired_token=expired,
        users_cursor=await end_cursor(client, USERS, "users", superuser_token),
        events_cursor=await end_cursor(client, SECURITY_EVENTS, "securityEvents", superuser_token),
    )


Variables = Callable[[Seeded], dict[str, Any]]


@dataclass(frozen=True)
class Operation:
    query: str
    variables: Variables | None = None
    operation_name: str | None = None

    def body(self, seeded: Seeded) -> dict[str, Any]:
        body: dict[str, Any] = {"query": self.query}
        if self.variables is not None:
            body["variables"] = self.variables(seeded)
        if self.operation_name is not None:
            body["operationName"] = self.operation_name
        return body


def read(query: str, variables: Variables | None = None, *, name: str | None = None) -> Operation:
    return Operation(query, variables, name)


def family(name: str, *operations: Operation) -> Any:
    """Operations that read alike, tested together (each set-up costs a few sign-ins)."""
    return pytest.param(operations, id=name)


ALIASES = "query Aliased { kind: __typename me { who: email kind: __typename id } }"
FRAGMENTS = """
query WithFragments { me { ...Who } }
fragment Who on User { id email ...Since }
fragment Since on User { isActive createdAt }
"""
INLINE_FRAGMENTS = "{ me { ... on User { email isSuperuser } __typename } }"
DIRECTIVES = """
query Pick($v: Boolean!) { me { email fullName @include(if: $v) id @skip(if: $v) } }
"""
TWO_OPERATIONS = "query First { me { id } } query Second { myMfa { enabled } }"
USER_PAGE = """
query Page($first: Int) {
  users(first: $first) { edges { node { ...Row } } pageInfo { hasNextPage } }
}
fragment Row on User { email isActive isSuperuser }
"""
INTROSPECTION = '{ __type(name: "User") { name kind fields { name type { name kind } } } }'

READS = [
    family(
        "me",
        read(ME),
        read("query Me { me { email } }"),
        read("query Me { me { email } }", name="Me"),
        read("{ __typename }"),
    ),
    family(
        "document-features",
        read(ALIASES),
        read(FRAGMENTS),
        read(INLINE_FRAGMENTS),
        read(DIRECTIVES, lambda _: {"v": True}),
        read(DIRECTIVES, lambda _: {"v": False}),
        read(TWO_OPERATIONS, name="Second"),
        read(USER_PAGE, lambda _: {"first": 3}),
    ),
    family(
        "introspection",
        read(INTROSPECTION),
        read("{ __schema { queryType { name } mutationType { name } } }"),
    ),
    family("mySessions", read(MY_SESSIONS), read(MY_SESSIONS_WITH_PROOF), read(MY_SESSION_IDS)),
    family(
        "users-pages",
        read(USERS),
        read(USERS, lambda _: {"first": 2}),
        read(USERS, lambda s: {"first": 2, "after": s.users_cursor}),
        read(USERS, lambda _: {"first": None}),
    ),
    family(
        "users-filters",
        read(USERS, lambda _: {"filter": {"search": "MEMBER"}}),
        read(USERS, lambda _: {"filter": {"isActive": False}}),
        read(
            USERS,
            lambda _: {"filter": {"isSuperuser": False, "isActive": True, "search": "example"}},
        ),
        read(USERS, lambda _: {"filter": {"search": "%"}}),
    ),
    family(
        "users-bad-user-input",
        read(USERS, lambda _: {"filter": {"search": "a\x00b"}}),
        read(USERS, lambda _: {"first": 0}),
        read(USERS, lambda _: {"first": 101}),
        read(USERS, lambda _: {"after": "garbage"}),
        read(USERS, lambda _: {"after": ""}),
        read(
            "query ($a: String) { users(after: $a) { totalCount } }",
            lambda _: {"a": cursor("[" * 3000)},
        ),
    ),
    family(
        "user-by-id",
        read(USER, lambda s: {"id": str(s.user.id)}),
        read(USER, lambda _: {"id": "not-a-uuid"}),
        read(USER, lambda _: {"id": UNKNOWN_ID}),
    ),
    family("myMfa-and-myPasskeys", read(MY_MFA), read(MY_PASSKEYS)),
    family(
        "security-events",
        read(MY_SECURITY_EVENTS),
        read(MY_SECURITY_EVENTS, lambda _: {"first": 1}),
        read(SECURITY_EVENTS),
        read(SECURITY_EVENTS, lambda s: {"first": 1, "after": s.events_cursor}),
        read(
            SECURITY_EVENTS,
            lambda s: {"filter": {"userId": str(s.user.id), "types": ["SIGNED_IN"]}},
        ),
        read(SECURITY_EVENTS, lambda _: {"filter": {"types": ["SIGNED_INN"]}}),
    ),
    family(
        "several-root-fields",
        read("{ me { email } users { totalCount } }"),
        read("{ me { email } users { totalCount } again: users(first: 1) { totalCount } }"),
    ),
]


class TestReadOnlyQueries:
    @pytest.mark.parametrize("operations", READS)
    async def test_each_caller_gets_the_same_answer_from_both_paths(
        self, client: AsyncClient, seeded: Seeded, operations: tuple[Operation, ...]
    ) -> None:
        for operation in operations:
            for accept in ACCEPTS:
                for caller in CALLERS:
                    headers = {"accept": accept, **seeded.headers(caller)}
                    lane, _ = await both_paths(client, operation.body(seeded), headers)
                    assert lane.headers["content-type"] == accept


# 2. The error contract.


def graphql_body(
    query: str | None = None, variables: dict[str, Any] | None = None, **more: Any
) -> Any:
    body: dict[str, Any] = {} if query is None else {"query": query}
    if variables is not None:
        body["variables"] = variables
    return {**body, **more}


def factor_input(factor: dict[str, str | None]) -> dict[str, Any]:
    return {"input": {"challenge": "made-up", "factor": factor}}


EXECUTED_WITH_ERRORS = [
    pytest.param(
        graphql_body(
            "query ($first: Int) { users(first: $first) { totalCount } }", {"first": "ten"}
        ),
        id="variable-of-the-wrong-type",
    ),
    pytest.param(
        graphql_body("mutation ($t: String!) { verifyEmail(token: $t) { id } }", {}),
        id="required-variable-left-out",
    ),
    pytest.param(
        graphql_body("mutation ($t: String!) { verifyEmail(token: $t) { id } }", {"t": None}),
        id="required-variable-null",
    ),
    pytest.param(
        graphql_body(
            "mutation ($i: RegisterInput!) { register(input: $i) { id } }",
            {"i": {"email": "someone@example.com"}},
        ),
        id="input-without-a-required-field",
    ),
    pytest.param(
        graphql_body(REGISTER, {"input": {"email": "a@example.com", "password": 5}}),
        id="input-field-of-the-wrong-type",
    ),
    pytest.param(
        graphql_body(REGISTER, {"input": {"email": "a@example.com", "pasword": "x"}}),
        id="input-field-misspelt",
    ),
    pytest.param(graphql_body(COMPLETE_LOGIN, factor_input({})), id="one-of-given-no-member"),
    pytest.param(
        graphql_body(COMPLETE_LOGIN, factor_input({"totpCode": None})), id="one-of-given-a-null"
    ),
    pytest.param(
        graphql_body(
            COMPLETE_LOGIN, factor_input({"totpCode": "123456", "recoveryCode": "ABCD-EFGH-JKMN"})
        ),
        id="one-of-given-two-members",
    ),
    pytest.param(graphql_body("query Me { me { email } }"), id="unauthenticated"),
    pytest.param(
        graphql_body(
            "query ($f: SecurityEventFilter) { securityEvents(filter: $f) { edges { cursor } } }",
            {"f": {"types": [f"NOT_A_TYPE_{n}" for n in range(60)]}},
        ),
        id="more-variable-errors-than-counted",
    ),
    pytest.param(
        graphql_body(
            "mutation ($e: String!) { requestPasswordReset(email: $e) }", {"e": "not email"}
        ),
        id="domain-input-error",
    ),
]

# Refused by validation (the document limits included): the lane answers these itself.
NOT_VALID = [
    pytest.param(graphql_body(document), id=f"does-not-validate-{name}")
    for name, document in [
        ("unknown-field", "{ nope }"),
        ("hidden-field", "{ me { passwordHash } }"),
        ("argument-of-the-wrong-type", 'query { users(first: "ten") { totalCount } }'),
        (
            "input-missing-a-field",
            'mutation { register(input: {email: "a@example.com"}) { id } }',
        ),
        ("unused-variable", "query ($x: Int) { me { id } }"),
        ("fragment-cycle", "{ me { ...A } } fragment A on User { ...A }"),
        (
            "one-of-literal-with-two-members",
            'mutation { completeLogin(input: {challenge: "x", factor: '
            '{totpCode: "1", recoveryCode: "2"}}) { accessToken } }',
        ),
        ("too-many-aliases", "{ " + " ".join(f"a{n}: __typename" for n in range(40)) + " }"),
    ]
]
# Never executed, and passed on: the router words these refusals.
NEVER_EXECUTED = [
    *[
        pytest.param(graphql_body(document), id=f"does-not-parse-{number}")
        for number, document in enumerate(
            ["{ me { id ", "query {", "}", "mutation { login(input: }"]
        )
    ],
    pytest.param(graphql_body("subscription { me { id } }"), id="a-subscription"),
    pytest.param(
        graphql_body("query Me { me { id } }", operationName="Other"), id="unknown-operation-name"
    ),
    pytest.param(
        graphql_body("{ me { id } }", operationName="Me"), id="operation-name-of-an-anonymous-one"
    ),
    pytest.param(
        graphql_body("query Me { me { id } }", operationName=""), id="operation-name-empty"
    ),
    pytest.param(graphql_body(TWO_OPERATIONS), id="two-operations-none-named"),
    pytest.param(graphql_body(variables={}), id="no-document"),
    pytest.param(graphql_body(""), id="empty-document"),
]


@pytest.fixture
def stalled_password_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Password checks that hang until the test ends, as tests/api/test_error_reasons.py
    stalls them to outlast a request's deadline."""
    release = threading.Event()

    def stalled(password: str, hashed: str) -> passwords.VerifyResult:
        release.wait(timeout=30)
        return passwords.VerifyResult(valid=False)

    monkeypatch.setattr(passwords, "_verify_and_update", stalled)
    yield
    release.set()


class TestErrorContract:
    @pytest.mark.parametrize("body", EXECUTED_WITH_ERRORS)
    async def test_errors_of_operations_the_lane_runs(
        self, client: AsyncClient, body: dict[str, Any]
    ) -> None:
        for accept in ACCEPTS:
            lane, _ = await both_paths(client, body, {"accept": accept})

            assert codes_of(lane), lane.text

    @pytest.mark.parametrize("body", NOT_VALID)
    async def test_documents_that_do_not_validate(
        self, client: AsyncClient, body: dict[str, Any]
    ) -> None:
        for accept in ACCEPTS:
            lane, _ = await both_paths(client, body, {"accept": accept})

            # A @oneOf literal of two members is the caller's input, as the router says too.
            assert set(codes_of(lane)) <= {"GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"}
            assert codes_of(lane), lane.text
            assert lane.status_code == (422 if accept == GRAPHQL_RESPONSE_JSON else 200)

    @pytest.mark.parametrize("body", NEVER_EXECUTED)
    async def test_documents_the_lane_passes_on(
        self, client: AsyncClient, body: dict[str, Any]
    ) -> None:
        for accept in ACCEPTS:
            lane, _ = await both_paths(client, body, {"accept": accept}, lane_answers=False)

            assert codes_of(lane), lane.text

    @pytest.mark.parametrize("accept", ACCEPTS)
    async def test_a_field_forbidden_to_a_user(
        self, client: AsyncClient, user_token: str, accept: str
    ) -> None:
        lane, _ = await both_paths(
            client,
            graphql_body("{ me { email } users { totalCount } }"),
            {"accept": accept, **bearer(user_token)},
        )

        assert codes_of(lane) == ["FORBIDDEN"]

    @pytest.mark.parametrize("accept", ACCEPTS)
    async def test_a_masked_internal_error_quotes_each_requests_own_id(
        self,
        client: AsyncClient,
        superuser_token: str,
        test_user: User,
        monkeypatch: pytest.MonkeyPatch,
        accept: str,
    ) -> None:
        # As tests/api/test_error_contract.py provokes it: the service fails unexpectedly.
        async def explode(**_: object) -> User:
            raise RuntimeError("database password is hunter2")

        monkeypatch.setattr(users_service, "get_user", explode)
        body = graphql_body("query ($id: ID!) { user(id: $id) { id } }", {"id": str(test_user.id)})

        lane, general = await both_paths(
            client, body, {"accept": accept, **bearer(superuser_token)}
        )

        assert codes_of(lane) == ["INTERNAL_SERVER_ERROR"]
        for response in (lane, general):
            [error] = response.json()["errors"]
            assert error["extensions"]["requestId"] == response.headers[REQUEST_ID_HEADER]

    @pytest.mark.parametrize("accept", ACCEPTS)
    @pytest.mark.usefixtures("database_down")
    async def test_the_database_down_is_service_unavailable(
        self, request: pytest.FixtureRequest, accept: str
    ) -> None:
        http: AsyncClient = request.getfixturevalue("database_down")

        lane, _ = await both_paths(http, LOGIN_BODY, {"accept": accept})

        assert codes_of(lane) == ["SERVICE_UNAVAILABLE"]
        if accept == GRAPHQL_RESPONSE_JSON:
            assert (lane.status_code, lane.headers["retry-after"]) == (503, "5")
        else:
            assert lane.status_code == 200

    @pytest.mark.usefixtures("database_down")
    async def test_the_database_down_with_other_errors_too_keeps_its_status(
        self, request: pytest.FixtureRequest
    ) -> None:
        http: AsyncClient = request.getfixturevalue("database_down")
        document = 'mutation { a: login(input: {email: "x", password: "y"}) { expiresIn } }'

        lane, _ = await both_paths(http, graphql_body(document), {"accept": GRAPHQL_RESPONSE_JSON})

        assert (lane.status_code, codes_of(lane)) == (200, ["BAD_USER_INPUT"])

    @pytest.mark.parametrize("accept", ACCEPTS)
    @pytest.mark.usefixtures("hashing_busy", "test_user")
    async def test_password_hashing_saturated_is_service_unavailable(
        self, client: AsyncClient, accept: str
    ) -> None:
        lane, _ = await both_paths(client, LOGIN_BODY, {"accept": accept})

        assert lane.json()["errors"][0]["extensions"]["reason"] == "PASSWORD_HASHING_BUSY"
        if accept == GRAPHQL_RESPONSE_JSON:
            assert (lane.status_code, lane.headers["retry-after"]) == (503, "1")

    @pytest.mark.parametrize("accept", ACCEPTS)
    @pytest.mark.usefixtures("test_user", "stalled_password_checks")
    async def test_a_request_past_its_deadline(
        self, settings: Settings, async_test_db: tuple[AsyncEngine, SessionFactory], accept: str
    ) -> None:
        app = app_with(settings, async_test_db, request_timeout_seconds=0.1)
        async with served(app) as http:
            lane, _ = await both_paths(http, LOGIN_BODY, {"accept": accept})

        assert lane.json()["errors"][0]["extensions"]["reason"] == "DEADLINE_EXCEEDED"
        assert lane.status_code == (503 if accept == GRAPHQL_RESPONSE_JSON else 200)

    @pytest.mark.usefixtures("test_user", "stalled_password_checks")
    async def test_what_a_request_past_its_deadline_scheduled_still_runs(
        self, settings: Settings, async_test_db: tuple[AsyncEngine, SessionFactory]
    ) -> None:
        # The first field schedules the reset mail and is done; the second outlasts the
        # deadline. The general path still runs the scheduled job after its 503 (FastAPI
        # hands a route's background tasks to whatever response the route returns).
        document = f"""mutation {{
          requestPasswordReset(email: "{USER_EMAIL}")
          login(input: {{email: "{USER_EMAIL}", password: "{USER_PASSWORD}"}}) {{ expiresIn }}
        }}"""
        app = app_with(settings, async_test_db, request_timeout_seconds=0.1)
        backend = app.state.email_service.backend
        assert isinstance(backend, MemoryBackend)
        async with served(app) as http:
            lane = await send(http, posted(graphql_body(document)))
            mailed_after_lane = len(backend.outbox)
            general = await send(http, posted(twin_of(graphql_body(document))))
            mailed_after_general = len(backend.outbox) - mailed_after_lane

        response, _ = assert_alike(lane, general, document, runs=(0, 1))
        assert response.json()["errors"][0]["extensions"]["reason"] == "DEADLINE_EXCEEDED"
        assert mailed_after_general == 1
        assert mailed_after_lane == mailed_after_general, "the lane dropped the scheduled job"

    async def test_suggestions_and_introspection_off(
        self, settings: Settings, async_test_db: tuple[AsyncEngine, SessionFactory]
    ) -> None:
        app = app_with(
            settings, async_test_db, graphql_suggestions=False, graphql_introspection=False
        )
        typo = graphql_body(SECURITY_EVENTS, {"filter": {"types": ["SIGNED_INN"]}})
        misspelt = graphql_body(USERS, {"filter": {"serch": "x"}})
        introspection = graphql_body("{ __schema { queryType { name } } }")
        async with served(app) as http:
            for body in (typo, misspelt):
                lane, _ = await both_paths(http, body, {})

                assert codes_of(lane) == ["BAD_USER_INPUT"]
                assert "Did you mean" not in lane.text
            refused, _ = await both_paths(http, introspection, {})

        assert set(codes_of(refused)) == {"GRAPHQL_VALIDATION_FAILED"}

    @pytest.mark.parametrize("accept", ACCEPTS)
    async def test_get_requests_go_the_general_path(self, client: AsyncClient, accept: str) -> None:
        headers = {"accept": accept}
        answers = [
            await answered_alike(
                client,
                Sent(None, headers, "GET", f"/graphql?{urlencode(params)}"),
                Sent(None, headers, "GET", f"/graphql?{urlencode(twin_of(params))}"),
                runs=(1, 1),
            )
            for params in (
                {"query": "{ __typename }"},
                {"query": "query Me { me { email } }"},
                {"query": 'mutation { requestPasswordReset(email: "a@example.com") }'},
            )
        ]

        [(query, _), (unauthenticated, _), (mutation, _)] = answers
        assert data_of(query) == {"__typename": "Query"}
        assert codes_of(unauthenticated) == ["UNAUTHENTICATED"]
        assert (mutation.status_code, mutation.headers["allow"]) == (405, "POST")

    async def test_variables_that_do_not_fit_are_422_without_data(
        self, client: AsyncClient
    ) -> None:
        body = graphql_body(
            "query ($first: Int) { users(first: $first) { totalCount } }", {"first": "ten"}
        )

        lane, _ = await both_paths(client, body, {"accept": GRAPHQL_RESPONSE_JSON})

        assert lane.status_code == 422
        assert "data" not in lane.json()
        assert codes_of(lane) == ["BAD_USER_INPUT"]


# 3. Mutations that fail and change nothing the answer shows.


@dataclass(frozen=True)
class Refused:
    caller: str
    operation: Operation


def refused(caller: str, query: str, variables: Variables | None = None) -> Refused:
    return Refused(caller, Operation(query, variables))


def refusals(name: str, *cases: Refused) -> Any:
    return pytest.param(cases, id=name)


FAILED_MUTATIONS = [
    refusals(
        "sign-in-and-tokens",
        refused(
            "anonymous",
            LOGIN,
            lambda _: {"input": {"email": "nobody@example.com", "password": "not-the-password"}},
        ),
        refused("anonymous", LOGIN, lambda _: {"input": {"email": "", "password": ""}}),
        refused("anonymous", REFRESH_TOKEN, lambda _: {"refreshToken": "made-up"}),
        refused("anonymous", REFRESH_TOKEN, lambda _: {"refreshToken": "\ud800"}),
        refused("anonymous", LOGOUT, lambda _: {"refreshToken": "junk"}),
        refused("anonymous", LOGOUT_ALL),
        refused("malformed", LOGOUT_ALL),
        refused("anonymous", COMPLETE_LOGIN, lambda _: factor_input({"totpCode": "123456"})),
    ),
    refusals(
        "register",
        refused(
            "anonymous",
            REGISTER,
            lambda _: {"input": {"email": "not-an-email", "password": STRONG_PASSWORD}},
        ),
        refused(
            "anonymous",
            REGISTER,
            lambda _: {"input": {"email": "new@example.com", "password": "password1234"}},
        ),
        refused(
            "anonymous",
            REGISTER,
            lambda _: {"input": {"email": "TestUser@example.com", "password": STRONG_PASSWORD}},
        ),
    ),
    refusals(
        "passwords",
        refused(
            "user",
            CHANGE_PASSWORD,
            lambda _: {"input": {"currentPassword": "not-it", "newPassword": NEW_PASSWORD}},
        ),
        refused(
            "user",
            CHANGE_PASSWORD,
            lambda _: {"input": {"currentPassword": USER_PASSWORD, "newPassword": "short"}},
        ),
        refused(
            "anonymous",
            CHANGE_PASSWORD,
            lambda _: {"input": {"currentPassword": USER_PASSWORD, "newPassword": NEW_PASSWORD}},
        ),
        refused(
            "anonymous",
            RESET_PASSWORD,
            lambda _: {"input": {"token": "junk", "newPassword": NEW_PASSWORD}},
        ),
        refused("anonymous", REQUEST_PASSWORD_RESET, lambda _: {"email": "not an email"}),
    ),
    refusals(
        "profile",
        refused("user", UPDATE_ME, lambda _: {"input": {"email": "not an email"}}),
        refused("user", UPDATE_ME, lambda _: {"input": {"email": "superuser@example.com"}}),
        refused("user", UPDATE_ME, lambda _: {"input": {"fullName": "x" * 1000}}),
        refused("expired", UPDATE_ME, lambda _: {"input": {"fullName": "X"}}),
        refused("anonymous", VERIFY_EMAIL, lambda _: {"token": "junk"}),
    ),
    refusals(
        "admin-mutations-as-a-user",
        refused(
            "user",
            CREATE_USER,
            lambda _: {"input": {"email": "made@example.com", "password": STRONG_PASSWORD}},
        ),
        refused(
            "user",
            UPDATE_USER,
            lambda s: {"id": str(s.superuser.id), "input": {"isActive": False}},
        ),
        refused("user", DELETE_USER, lambda s: {"id": str(s.superuser.id)}),
        refused("user", RESET_USER_MFA, lambda s: {"id": str(s.superuser.id)}),
    ),
    refusals(
        "admin-mutations-refused",
        refused("superuser", DELETE_USER, lambda s: {"id": str(s.superuser.id)}),
        refused("superuser", DELETE_USER, lambda _: {"id": UNKNOWN_ID}),
        refused(
            "superuser",
            UPDATE_USER,
            lambda s: {"id": str(s.superuser.id), "input": {"isSuperuser": False}},
        ),
        refused(
            "superuser",
            CREATE_USER,
            lambda _: {"input": {"email": "member0@example.com", "password": STRONG_PASSWORD}},
        ),
    ),
    refusals(
        "sessions-and-second-factors",
        refused("user", REVOKE_SESSION, lambda _: {"id": UNKNOWN_ID}),
        refused("user", REVOKE_SESSION, lambda _: {"id": "nope"}),
        refused("user", REGENERATE_RECOVERY_CODES),
        refused("user", CONFIRM_TOTP_ENROLLMENT, lambda _: {"code": "123456"}),
        refused("user", DELETE_PASSKEY, lambda _: {"id": UNKNOWN_ID}),
    ),
]


class TestFailedMutations:
    @pytest.mark.parametrize("cases", FAILED_MUTATIONS)
    async def test_a_refused_mutation_is_refused_alike(
        self, client: AsyncClient, seeded: Seeded, cases: tuple[Refused, ...]
    ) -> None:
        for case in cases:
            for accept in ACCEPTS:
                headers = {"accept": accept, **seeded.headers(case.caller)}
                lane, _ = await both_paths(client, case.operation.body(seeded), headers)

                assert codes_of(lane), lane.text

    @pytest.mark.parametrize("accept", ACCEPTS)
    async def test_a_wrong_password(self, client: AsyncClient, seeded: Seeded, accept: str) -> None:
        # One account per media type: two wrong passwords each, far from any lockout.
        account = seeded.user if accept == JSON else seeded.superuser
        body = graphql_body(
            LOGIN, {"input": {"email": account.email, "password": "not-the-password"}}
        )

        lane, _ = await both_paths(client, body, {"accept": accept})

        assert lane.json()["errors"][0]["extensions"]["reason"] == "INVALID_CREDENTIALS"


# 4. Mutations that succeed, in twin worlds.


@dataclass
class World:
    """An app on a database of its own, seeded as its twin is, and what a test keeps of it."""

    http: AsyncClient
    outbox: list[EmailMessage]
    kept: dict[str, str] = field(default_factory=dict)


async def seed_world(session_factory: SessionFactory) -> None:
    async with session_factory() as session:
        await create_user(session, email="testuser@example.com", password=USER_PASSWORD)
        await create_user(
            session,
            email="superuser@example.com",
            password=ADMIN_PASSWORD,
            is_superuser=True,
            full_name="Super User",
        )


@asynccontextmanager
async def world(settings: Settings, database: Path) -> AsyncIterator[World]:
    # As the async_test_db (this module's) and app fixtures build theirs.
    engine = await database_in(database)
    try:
        session_factory = create_session_factory(engine)
        await seed_world(session_factory)
        app = create_app(settings.model_copy(deep=True))
        app.state.session_factory = session_factory
        backend = app.state.email_service.backend
        assert isinstance(backend, MemoryBackend)
        async with served(app) as http:
            yield World(http=http, outbox=backend.outbox)
    finally:
        await engine.dispose()


@pytest_asyncio.fixture
async def twin_worlds(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[World, World]]:
    """Two apps, each on its own database, seeded alike: the lane's world and the general
    path's."""
    async with (
        world(settings, tmp_path / "lane.db") as lane_world,
        world(settings, tmp_path / "general.db") as general_world,
    ):
        yield lane_world, general_world


# Values drawn at random or from the clock, which two worlds cannot share.
_RANDOM_VALUES = re.compile(
    r"(?P<jwt>eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)"
    r"|(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"|(?P<time>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2}|Z)?)"
    r'|"(?P<token>[A-Za-z0-9_-]{43})"'
)


def normalised(text: str) -> str:
    """``text`` with each UUID, JWT, opaque token and timestamp replaced by a placeholder
    numbered by its first appearance: the structure, order and repetition still count."""
    placeholders: dict[tuple[str, str], str] = {}
    counts: Counter[str] = Counter()

    def placeholder(match: re.Match[str]) -> str:
        kind = match.lastgroup
        assert kind is not None
        value = match[kind]
        if (kind, value) not in placeholders:
            counts[kind] += 1
            placeholders[kind, value] = f"<{kind}-{counts[kind]}>"
        shown = placeholders[kind, value]
        return f'"{shown}"' if kind == "token" else shown

    return _RANDOM_VALUES.sub(placeholder, text)


Step = Callable[[World], tuple[dict[str, Any], dict[str, str]]]


async def both_worlds(worlds: tuple[World, World], step: Step) -> Any:
    """One step of a flow, in both worlds: the request to the lane's world, its twin to the
    general path's. Answers the lane's data (no errors) and the general path's."""
    lane_world, general_world = worlds
    lane_body, lane_headers = step(lane_world)
    general_body, general_headers = step(general_world)
    lane = await send(lane_world.http, posted(lane_body, lane_headers))
    general = await send(general_world.http, posted(twin_of(general_body), general_headers))
    where = posted(lane_body, lane_headers).describe()
    assert (lane.general_runs, general.general_runs) == (0, 1), f"run calls for {where}"
    lane_response, general_response = lane.response, general.response
    assert lane_response.status_code == general_response.status_code, where
    lane_text = normalised(body_of(lane_response).decode())
    assert lane_text == normalised(body_of(general_response).decode()), where
    # The bodies differ in their random values, whose lengths may differ too.
    assert_same_headers(
        lane_response,
        general_response,
        where,
        leave_out=frozenset({REQUEST_ID_HEADER, "content-length"}),
    )
    for response in (lane_response, general_response):
        assert response.headers["content-length"] == str(len(response.content))
    assert lane.line == general.line, where
    return data_of(lane_response), data_of(general_response)


def signing_in(email: str, password: str) -> Step:
    return lambda _: (
        graphql_body(FULL_LOGIN, {"input": {"email": email, "password": password}}),
        {},
    )


def as_kept(query: str, variables: Callable[[World], dict[str, Any]] | None = None) -> Step:
    """A request with the world's kept access token, and variables from what it kept."""

    def step(world: World) -> tuple[dict[str, Any], dict[str, str]]:
        body = graphql_body(query, variables(world) if variables else None)
        return body, bearer(world.kept["access"])

    return step


async def sign_in(worlds: tuple[World, World], email: str, password: str) -> None:
    answers = await both_worlds(worlds, signing_in(email, password))
    for world_of, data in zip(worlds, answers, strict=True):
        world_of.kept["access"] = data["login"]["accessToken"]
        world_of.kept["refresh"] = data["login"]["refreshToken"]


def mailed_token(world_of: World, path: str) -> str:
    """The token of the one mail in the world's outbox whose link leads to ``path``."""
    [message] = [m for m in world_of.outbox if urlsplit(action_link(m)).path == path]
    return action_token(message, path)


def mail_subjects(world_of: World) -> list[str]:
    return [str(message["Subject"]) for message in world_of.outbox]


class TestMutationsInTwinWorlds:
    """Mutations that succeed change state, so the request and its twin cannot run on one
    database and both answer the same bytes. Each runs in twin worlds instead: two apps, each
    on a fresh in-memory database seeded with the same accounts and passwords, one sent the
    request (the lane answers it), the other its twin (the general path answers it). The two
    worlds draw different UUIDs, tokens and clock readings, so their bodies are compared
    after each UUID, JWT, opaque token and timestamp is replaced by a placeholder numbered by
    its first appearance in that body (the structure, order and repetition of those values
    must still match), and their headers without content-length (which follows those
    values' lengths)."""

    async def test_register_then_sign_in(self, twin_worlds: tuple[World, World]) -> None:
        new = {"email": "newcomer@example.com", "password": STRONG_PASSWORD, "fullName": "N"}

        registered, _ = await both_worlds(
            twin_worlds, lambda _: (graphql_body(REGISTER, {"input": new}), {})
        )
        await sign_in(twin_worlds, new["email"], STRONG_PASSWORD)
        me, _ = await both_worlds(twin_worlds, as_kept(ME))

        assert registered["register"]["email"] == me["me"]["email"] == "newcomer@example.com"

    async def test_sign_in_refresh_and_sign_out(self, twin_worlds: tuple[World, World]) -> None:
        await sign_in(twin_worlds, "testuser@example.com", USER_PASSWORD)
        refreshed = await both_worlds(
            twin_worlds,
            lambda w: (graphql_body(REFRESH_TOKEN, {"refreshToken": w.kept["refresh"]}), {}),
        )
        for world_of, data in zip(twin_worlds, refreshed, strict=True):
            world_of.kept["access"] = data["refreshToken"]["accessToken"]
            world_of.kept["refresh"] = data["refreshToken"]["refreshToken"]
        await both_worlds(twin_worlds, as_kept(ME))
        sessions, _ = await both_worlds(twin_worlds, as_kept(MY_SESSIONS))
        signed_out, _ = await both_worlds(
            twin_worlds, as_kept(LOGOUT, lambda w: {"refreshToken": w.kept["refresh"]})
        )

        assert len(sessions["mySessions"]) == 1
        assert signed_out == {"logout": True}
        assert mail_subjects(twin_worlds[0]) == mail_subjects(twin_worlds[1])

    async def test_profile_and_password(self, twin_worlds: tuple[World, World]) -> None:
        await sign_in(twin_worlds, "testuser@example.com", USER_PASSWORD)
        updated, _ = await both_worlds(
            twin_worlds, as_kept(UPDATE_ME, lambda _: {"input": {"fullName": "Renamed"}})
        )
        changed, _ = await both_worlds(
            twin_worlds,
            as_kept(
                CHANGE_PASSWORD,
                lambda _: {
                    "input": {"currentPassword": USER_PASSWORD, "newPassword": NEW_PASSWORD}
                },
            ),
        )
        await sign_in(twin_worlds, "testuser@example.com", NEW_PASSWORD)

        assert updated["updateMe"]["fullName"] == "Renamed"
        assert changed == {"changePassword": True}
        assert mail_subjects(twin_worlds[0]) == mail_subjects(twin_worlds[1])

    async def test_sessions_revoked(self, twin_worlds: tuple[World, World]) -> None:
        await sign_in(twin_worlds, "testuser@example.com", USER_PASSWORD)
        await sign_in(twin_worlds, "testuser@example.com", USER_PASSWORD)
        sessions = await both_worlds(twin_worlds, as_kept(MY_SESSIONS))
        for world_of, data in zip(twin_worlds, sessions, strict=True):
            [other] = [entry["id"] for entry in data["mySessions"] if not entry["current"]]
            world_of.kept["other"] = other
        revoked, _ = await both_worlds(
            twin_worlds, as_kept(REVOKE_SESSION, lambda w: {"id": w.kept["other"]})
        )
        remaining, _ = await both_worlds(twin_worlds, as_kept(MY_SESSIONS))
        everywhere, _ = await both_worlds(twin_worlds, as_kept(LOGOUT_ALL))

        assert revoked == {"revokeSession": True}
        assert len(remaining["mySessions"]) == 1
        assert everywhere == {"logoutAll": True}

    async def test_a_superuser_manages_an_account(self, twin_worlds: tuple[World, World]) -> None:
        await sign_in(twin_worlds, "superuser@example.com", ADMIN_PASSWORD)
        made = {"email": "made@example.com", "password": STRONG_PASSWORD, "fullName": "Made"}
        created = await both_worlds(twin_worlds, as_kept(CREATE_USER, lambda _: {"input": made}))
        for world_of, data in zip(twin_worlds, created, strict=True):
            world_of.kept["made"] = data["createUser"]["id"]
        updated, _ = await both_worlds(
            twin_worlds,
            as_kept(
                UPDATE_USER,
                lambda w: {"id": w.kept["made"], "input": {"isActive": False, "fullName": "M"}},
            ),
        )
        listed, _ = await both_worlds(twin_worlds, as_kept("{ users { totalCount } }"))
        deleted, _ = await both_worlds(
            twin_worlds, as_kept(DELETE_USER, lambda w: {"id": w.kept["made"]})
        )

        assert updated["updateUser"]["isActive"] is False
        assert listed == {"users": {"totalCount": 3}}
        assert deleted == {"deleteUser": True}

    async def test_email_verification_then_password_reset(
        self, twin_worlds: tuple[World, World]
    ) -> None:
        await sign_in(twin_worlds, "testuser@example.com", USER_PASSWORD)
        await both_worlds(twin_worlds, as_kept(REQUEST_EMAIL_VERIFICATION))
        for world_of in twin_worlds:
            world_of.kept["verify"] = mailed_token(world_of, VERIFY_PATH)
        verified, _ = await both_worlds(
            twin_worlds,
            lambda w: (graphql_body(VERIFY_EMAIL, {"token": w.kept["verify"]}), {}),
        )
        requested, _ = await both_worlds(
            twin_worlds,
            lambda _: (graphql_body(REQUEST_PASSWORD_RESET, {"email": USER_EMAIL}), {}),
        )
        for world_of in twin_worlds:
            world_of.kept["reset"] = mailed_token(world_of, RESET_PATH)
        reset, _ = await both_worlds(
            twin_worlds,
            lambda w: (
                graphql_body(
                    RESET_PASSWORD,
                    {"input": {"token": w.kept["reset"], "newPassword": NEW_PASSWORD}},
                ),
                {},
            ),
        )
        await sign_in(twin_worlds, USER_EMAIL, NEW_PASSWORD)

        assert verified["verifyEmail"]["isVerified"] is True
        assert requested == {"requestPasswordReset": True}
        assert reset == {"resetPassword": True}
        assert mail_subjects(twin_worlds[0]) == mail_subjects(twin_worlds[1])


# 5. Persisted queries.

PICK = "query Pick($yes: Boolean!) { a: __typename @include(if: $yes) me { email } }"
YES = {"variables": {"yes": True}}


class TestPersistedQueries:
    @pytest.mark.parametrize("accept", ACCEPTS)
    async def test_registration_hit_miss_and_mismatch(
        self, client: AsyncClient, user_token: str, accept: str
    ) -> None:
        headers = {"accept": accept, **bearer(user_token)}
        variables = {"variables": {"yes": True}}

        registered, _ = await both_paths(
            client, persisted(PICK, send_query=True) | variables, headers
        )
        hit, _ = await both_paths(client, persisted(PICK) | variables, headers)
        named, _ = await both_paths(
            client,
            persisted(PICK) | {"variables": {"yes": False}, "operationName": "Pick"},
            headers,
        )
        unknown = "query Unknown { __typename }"
        # The store's refusals are the lane's to answer: asked once, not again by the router.
        miss, _ = await both_paths(client, persisted(unknown), headers)
        mismatch, _ = await both_paths(client, persisted(unknown) | {"query": PICK}, headers)
        invalid = {"extensions": {"persistedQuery": {"version": 2, "sha256Hash": sha256(PICK)}}}
        refused, _ = await both_paths(client, invalid, headers)
        not_an_object = {"query": "{ __typename }", "extensions": {"persistedQuery": "yes"}}
        malformed, _ = await both_paths(client, not_an_object, headers)

        assert data_of(registered) == data_of(hit) == {"a": "Query", "me": {"email": USER_EMAIL}}
        assert data_of(named) == {"me": {"email": USER_EMAIL}}
        assert codes_of(miss) == ["PERSISTED_QUERY_NOT_FOUND"]
        assert codes_of(mismatch) == ["PERSISTED_QUERY_HASH_MISMATCH"]
        assert codes_of(refused) == ["PERSISTED_QUERY_INVALID"]
        assert codes_of(malformed) == ["PERSISTED_QUERY_INVALID"]
        assert miss.status_code == (404 if accept == GRAPHQL_RESPONSE_JSON else 200)

    async def test_without_their_store(
        self, settings: Settings, async_test_db: tuple[AsyncEngine, SessionFactory]
    ) -> None:
        app = app_with(settings, async_test_db, redis_url=REFUSING_REDIS)
        async with served(app) as http:
            full, _ = await both_paths(http, persisted(PICK, send_query=True) | YES, {})
            hash_only, _ = await both_paths(http, persisted(PICK) | YES, {})

        assert codes_of(full) == ["UNAUTHENTICATED"]
        assert codes_of(hash_only) == ["PERSISTED_QUERY_NOT_FOUND"]

    async def test_a_document_that_does_not_validate_is_not_kept(self, client: AsyncClient) -> None:
        invalid = "{ nope }"

        first, _ = await both_paths(client, persisted(invalid, send_query=True), {})
        again, _ = await both_paths(client, persisted(invalid), {})

        assert codes_of(first) == ["GRAPHQL_VALIDATION_FAILED"]
        assert codes_of(again) == ["PERSISTED_QUERY_NOT_FOUND"]


# 6. Headers that other layers add.


class TestCors:
    @pytest.mark.parametrize(
        ("origin", "allowed"),
        [
            pytest.param(ORIGIN, True, id="allowed"),
            pytest.param("https://evil.example", False, id="other"),
        ],
    )
    async def test_cors_headers_come_alike(
        self,
        settings: Settings,
        async_test_db: tuple[AsyncEngine, SessionFactory],
        origin: str,
        allowed: bool,
    ) -> None:
        app = app_with(settings, async_test_db, cors_origins=[ORIGIN])
        async with served(app) as http:
            lane, _ = await both_paths(http, graphql_body("{ __typename }"), {"origin": origin})

        assert (lane.headers.get("access-control-allow-origin") == ORIGIN) is allowed
        if allowed:
            assert lane.headers["access-control-expose-headers"].lower() == "x-request-id"


# 7. What the lane must pass on, or stop at, without breaking anything.


def raw(content: bytes, **headers: str) -> Sent:
    return Sent(content=content, headers={"content-type": JSON, **headers})


MALFORMED = [
    pytest.param(b'{"query":"{__typename}","variables":{"x":"\xff"}}', id="invalid-utf-8"),
    pytest.param(
        b'{"query":"{__typename}","variables":{"x":' + b"9" * 5000 + b"}}", id="huge-integer"
    ),
    pytest.param(b'{"query":"{__typename}","variables":{"x":NaN}}', id="nan"),
    pytest.param(b"[" * 100_000, id="deep-nesting-unfinished"),
    pytest.param(b'{"query":"{__typename}",', id="truncated"),
    pytest.param(b"", id="empty"),
    pytest.param(b'"just a string"', id="not-an-object"),
    pytest.param(b"null", id="null"),
]

WRONG_SHAPES = [
    pytest.param(graphql_body("{ __typename }", extensions="yes"), id="extensions-string"),
    pytest.param(graphql_body("{ __typename }", extensions=[1]), id="extensions-list"),
    pytest.param({"query": "{ __typename }", "variables": "{}"}, id="variables-string"),
    pytest.param({"query": "{ __typename }", "variables": []}, id="variables-list"),
    pytest.param(graphql_body("{ __typename }", operationName=5), id="operation-name-number"),
    pytest.param(graphql_body("{ __typename }", operationName=True), id="operation-name-boolean"),
    pytest.param({"query": 5}, id="query-number"),
    pytest.param({"query": None}, id="query-null"),
]


class TestPassedOnOrStopped:
    @pytest.mark.parametrize("body", WRONG_SHAPES)
    async def test_a_body_of_the_wrong_shape_goes_the_general_path(
        self, client: AsyncClient, body: dict[str, Any]
    ) -> None:
        for accept in ACCEPTS:
            lane, _ = await both_paths(client, body, {"accept": accept}, lane_answers=False)

            assert lane.status_code in {200, 400}
            assert codes_of(lane), lane.text

    @pytest.mark.parametrize("content", MALFORMED)
    async def test_a_malformed_body_goes_the_general_path(
        self, client: AsyncClient, content: bytes
    ) -> None:
        for accept in ACCEPTS:
            # No twin can be made of what is not a JSON object: the same bytes, sent twice.
            lane, _ = await answered_alike(
                client, raw(content, accept=accept), raw(content, accept=accept), runs=(1, 1)
            )

            assert lane.status_code == 400

    async def test_a_batch_goes_the_general_path(self, client: AsyncClient) -> None:
        batch = [{"query": "{ __typename }"}]

        lane, _ = await answered_alike(
            client, posted(batch), posted([twin_of(batch[0])]), runs=(1, 1)
        )

        assert lane.status_code == 400

    @pytest.mark.parametrize("streamed", [False, True], ids=["declared", "streamed"])
    async def test_a_body_over_the_limit_is_refused_before_either_path(
        self, client: AsyncClient, settings: Settings, streamed: bool
    ) -> None:
        body = graphql_body("{ __typename }", {"pad": "x" * (settings.max_body_bytes + MIB)})
        # Streamed, without a Content-Length: the guard counts the bytes as the lane reads.
        lane = replace(posted(body), streamed=streamed)
        general = replace(posted(twin_of(body)), streamed=streamed)

        answer, _ = await answered_alike(client, lane, general, runs=(0, 0))

        assert answer.status_code == 413

    async def test_other_methods_and_unacceptable_media_types(self, client: AsyncClient) -> None:
        body = graphql_body("{ __typename }")
        put = Sent(json.dumps(body).encode(), {"content-type": JSON}, method="PUT")
        put_twin = Sent(json.dumps(twin_of(body)).encode(), {"content-type": JSON}, method="PUT")
        not_allowed, _ = await answered_alike(client, put, put_twin, runs=(0, 0))
        unacceptable, _ = await both_paths(
            client, body, {"accept": "text/plain"}, lane_answers=False
        )
        refused, _ = await both_paths(
            client, body, {"accept": "application/json;q=0"}, lane_answers=False
        )

        assert not_allowed.status_code == 405
        assert unacceptable.status_code == refused.status_code == 406

    @pytest.mark.parametrize(
        "headers",
        [
            pytest.param({}, id="no-accept"),
            pytest.param({"accept": "*/*"}, id="any"),
            pytest.param({"accept": "application/*"}, id="application-any"),
            pytest.param({"accept": f"{JSON};q=0.5, {GRAPHQL_RESPONSE_JSON};q=0.9"}, id="weighted"),
            pytest.param({"accept": f"text/html, {JSON}"}, id="html-and-json"),
            pytest.param(
                {"accept": f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"}, id="media-type-parameter"
            ),
            pytest.param({"content-type": "application/json; charset=utf-8"}, id="charset"),
            pytest.param({"user-agent": "Lane/1.0", "x-forwarded-for": "203.0.113.9"}, id="client"),
        ],
    )
    async def test_ordinary_variations_the_lane_answers(
        self, client: AsyncClient, user_token: str, headers: dict[str, str]
    ) -> None:
        body = graphql_body(
            "query ($v: Boolean!) { me { email } t: __typename @skip(if: $v) }", {"v": False}
        )

        lane, _ = await both_paths(client, body, {**bearer(user_token), **headers})

        assert data_of(lane) == {"me": {"email": "testuser@example.com"}, "t": "Query"}

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(
                {
                    "query": "{ __typename }",
                    "variables": None,
                    "operationName": None,
                    "extensions": None,
                },
                id="explicit-nulls",
            ),
            pytest.param(graphql_body("{ __typename }", extensions={}), id="empty-extensions"),
            pytest.param(
                graphql_body("{ __typename }", extensions={"persistedQuery": None}),
                id="null-persisted-query",
            ),
            pytest.param(
                graphql_body("{ __typename }", extensions={"tracing": True}), id="other-extensions"
            ),
            pytest.param(graphql_body("{ __typename }", {"unused": 1}), id="unused-variable-value"),
        ],
    )
    async def test_unusual_but_valid_bodies_the_lane_answers(
        self, client: AsyncClient, body: dict[str, Any]
    ) -> None:
        lane, _ = await both_paths(client, body, {})

        assert data_of(lane) == {"__typename": "Query"}

    @pytest.mark.parametrize(
        "encoding", ["utf-8-sig", "utf-16", "utf-32"], ids=["utf-8-bom", "utf-16", "utf-32"]
    )
    async def test_other_unicode_encodings_of_json(
        self, client: AsyncClient, encoding: str
    ) -> None:
        body = graphql_body("{ __typename }")

        lane, _ = await answered_alike(
            client,
            raw(json.dumps(body).encode(encoding)),
            raw(json.dumps(twin_of(body)).encode(encoding)),
        )

        assert data_of(lane) == {"__typename": "Query"}

    async def test_a_body_sent_in_chunks_within_the_limit(
        self, client: AsyncClient, settings: Settings
    ) -> None:
        body = graphql_body("{ __typename }", {"pad": "x" * (settings.max_body_bytes // 2)})

        lane, _ = await answered_alike(
            client,
            replace(posted(body), streamed=True),
            replace(posted(twin_of(body)), streamed=True),
        )

        assert data_of(lane) == {"__typename": "Query"}

    async def test_repeated_keys_and_a_query_string(self, client: AsyncClient) -> None:
        repeated = b'{"query": "{ me { id } }", "query": "{ __typename }"}'
        repeated_twin = b'{"query": "{ me { id } }", "query": "{ __typename }", "generalPath": 1}'
        body = graphql_body("{ __typename }")
        with_query_string = Sent(
            json.dumps(body).encode(), {"content-type": JSON}, url="/graphql?x=1"
        )
        twin = Sent(json.dumps(twin_of(body)).encode(), {"content-type": JSON}, url="/graphql?x=1")

        last_wins, _ = await answered_alike(client, raw(repeated), raw(repeated_twin))
        ignored, _ = await answered_alike(client, with_query_string, twin)

        assert data_of(last_wins) == data_of(ignored) == {"__typename": "Query"}


# The lane answers what clients send most.


async def test_a_typical_session_is_answered_by_the_lane_throughout(
    client: AsyncClient, test_superuser: User
) -> None:
    signed_in = await client.post(
        "/graphql",
        json=graphql_body(
            FULL_LOGIN, {"input": {"email": test_superuser.email, "password": ADMIN_PASSWORD}}
        ),
    )
    token = data_of(signed_in)["login"]["accessToken"]
    auth = bearer(token)
    answers = [
        signed_in,
        await client.post("/graphql", json=graphql_body(ME), headers=auth),
        await client.post("/graphql", json=graphql_body(USERS, {"first": 10}), headers=auth),
        await client.post("/graphql", json=graphql_body(MY_SESSIONS), headers=auth),
        await client.post(
            "/graphql", json=graphql_body(UPDATE_ME, {"input": {"fullName": "Admin"}}), headers=auth
        ),
    ]

    assert [response.status_code for response in answers] == [200] * 5
    for response in answers:
        data_of(response)
    assert PATHS.general_runs == 0, "the lane answered none of a typical session's requests"
    assert len(PATHS.lines) == 5


# 9. What the lane keeps of the general path's own rules.


class TestTheRouterRules:
    async def test_a_media_type_the_router_does_not_read_as_json_is_passed_on(
        self, client: AsyncClient
    ) -> None:
        # The guard lets any spelling of application/json through; Strawberry's view reads
        # a body as JSON by its own test, and the lane leaves that decision to it.
        body = graphql_body("{ __typename }")
        lane, _ = await answered_alike(
            client,
            posted(body, {"content-type": "Application/JSON"}),
            posted(twin_of(body), {"content-type": "Application/JSON"}),
            runs=(1, 1),
        )
        plain, _ = await both_paths(
            client, body, {"content-type": "application/json; charset=utf-8"}
        )

        assert lane.status_code == 400
        assert data_of(plain) == {"__typename": "Query"}

    async def test_reading_a_slow_body_is_within_the_deadline(
        self, settings: Settings, async_test_db: tuple[AsyncEngine, SessionFactory]
    ) -> None:
        app = app_with(settings, async_test_db, request_timeout_seconds=0.2)
        never = asyncio.Event()
        messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": b'{"query": "{ __typename }"', "more_body": True}
        ]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await never.wait()  # the rest of the body never comes
            return {"type": "http.disconnect"}

        sent: list[MutableMapping[str, Any]] = []

        async def send_message(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/graphql",
            "raw_path": b"/graphql",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"content-type", b"application/json"), (b"host", b"test")],
            "client": ("127.0.0.1", 50000),
            "server": ("test", 80),
        }
        try:
            # A safety net, so a regression fails rather than hangs: not a measurement.
            await asyncio.wait_for(app(scope, receive, send_message), timeout=30)
        finally:
            await app.state.engine.dispose()
            await app.state.rate_limiter.aclose()
            await app.state.persisted_queries.storage.aclose()
            await app.state.passkey_challenges.aclose()

        start, body = sent[0], b"".join(message.get("body", b"") for message in sent[1:])
        assert start["status"] == 200
        answer = json.loads(body)
        assert answer["errors"][0]["extensions"]["reason"] == "DEADLINE_EXCEEDED"

    def test_the_lane_serves_only_the_schema_it_copies(self, settings: Settings) -> None:
        class Tracing(SchemaExtension):
            def resolve(
                self, _next: Callable[..., Any], root: Any, info: Any, *args: Any, **kwargs: Any
            ) -> Any:
                return _next(root, info, *args, **kwargs)

        app_schema, _ = schema_for(settings)
        traced = Schema(
            query=Query,
            mutation=Mutation,
            extensions=[Tracing],
            execution_context_class=PlannedExecutionContext,
        )
        stock = Schema(query=Query, mutation=Mutation)

        assert LeanLane.serves(app_schema)
        assert not LeanLane.serves(traced)
        assert not LeanLane.serves(stock)
