"""The security trail through GraphQL: every event type recorded by the request that causes
it, read back by its owner (mySecurityEvents) and by superusers (securityEvents); pages,
filters and refusals; and the rule that an event and its change commit together or not at
all.

Requests carry a browser's User-Agent, and ASGITransport's peer address is the client's, so
an event of a request shows both. Events are compared as exact dicts: details hold what the
service sets and nothing else (no password, token or code).
"""

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pyotp
import pytest
from fastapi import FastAPI
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from httpx import AsyncClient
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.crud import refresh_tokens as refresh_tokens_crud
from gql_app.crud import security_events as events_crud
from gql_app.models import AuthSession, Passkey, SecurityEvent, User
from gql_app.services.security_events import address_hash
from tests.factories import USER_PASSWORD, create_user
from tests.graphql import LOGIN, GraphQLClient, GraphQLResponse, Tokens, login_tokens
from tests.mail import RESET_PATH, VERIFY_PATH, action_token
from tests.operations import (
    CHANGE_PASSWORD,
    DELETE_USER,
    LOGOUT,
    LOGOUT_ALL,
    ME,
    REFRESH_TOKEN,
    REQUEST_PASSWORD_RESET,
    RESET_PASSWORD,
    REVOKE_SESSION,
    UPDATE_ME,
    UPDATE_USER,
    VERIFY_EMAIL,
)
from tests.passkey_flows import DELETE_PASSKEY, add_passkey, authenticator, passkey_sign_in

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CLIENT_IP = "127.0.0.1"  # ASGITransport's peer
NEW_PASSWORD = "violet tangerine submarine 42"
WRONG_PASSWORD = "not-the-password-at-all"
NOBODY = "nobody@example.com"
T0 = datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC)  # 10 s into a TOTP step
TOTP_STEP = timedelta(seconds=30)
# Events written straight to the table start here, long before any request's.
PAST = datetime(2020, 1, 1, tzinfo=UTC)
LOCKOUT_AFTER = 3

EVENT_FIELDS = "addressHash id type occurredAt ipAddress userAgent sessionId details"
PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
MY_SECURITY_EVENTS = f"""
query Mine($first: Int, $after: String) {{
  mySecurityEvents(first: $first, after: $after) {{
    edges {{ cursor node {{ {EVENT_FIELDS} }} }} {PAGE_INFO}
  }}
}}
"""
SECURITY_EVENTS = f"""
query All($first: Int, $after: String, $filter: SecurityEventFilter) {{
  securityEvents(first: $first, after: $after, filter: $filter) {{
    edges {{ cursor node {{ {EVENT_FIELDS} user {{ id email }} }} }} {PAGE_INFO}
  }}
}}
"""
LISTS = [
    pytest.param(MY_SECURITY_EVENTS, id="mySecurityEvents"),
    pytest.param(SECURITY_EVENTS, id="securityEvents"),
]
MY_SESSIONS = "query { mySessions { id current } }"
START_TOTP_ENROLLMENT = "mutation { startTotpEnrollment { secret } }"
CONFIRM_TOTP_ENROLLMENT = "mutation Confirm($code: String!) { confirmTotpEnrollment(code: $code) }"
COMPLETE_LOGIN = """
mutation Complete($input: CompleteLoginInput!) { completeLogin(input: $input) { accessToken } }
"""
REAUTHENTICATE = "mutation Reauth($input: ReauthenticateInput!) { reauthenticate(input: $input) }"
RESET_USER_MFA = "mutation Reset($id: ID!) { resetUserMfa(id: $id) { id } }"

EventShape = dict[str, Any]


class BrowserClient(GraphQLClient):
    """Every request with a browser's User-Agent, for the events to record."""

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> GraphQLResponse:
        return await super().__call__(
            query, variables, token=token, headers={"User-Agent": USER_AGENT, **(headers or {})}
        )


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Security notices off: a notice notes its outcome in its event's details (the notices'
    own tests read that), and here the details are what the change recorded."""
    notices = {name: False for name in Settings.model_fields if name.startswith("security_notice_")}
    assert notices, "no security_notice_* settings to turn off"
    return settings.model_copy(update=notices)


@pytest.fixture
def gql(client: AsyncClient) -> GraphQLClient:
    return BrowserClient(client)


@pytest.fixture
def clock(app: FastAPI) -> Iterator[FrozenDateTimeFactory]:
    """Time stands still at T0, for TOTP codes; frozen once the app is built (see
    tests/api/test_mfa.py)."""
    with freeze_time(T0, real_asyncio=True) as frozen:
        assert isinstance(frozen, FrozenDateTimeFactory)
        yield frozen


def data_of(response: GraphQLResponse, field: str) -> Any:
    assert response.errors == [], response.body
    return response.data[field]


def event(
    type: str,
    *,
    session_id: str | None = None,
    details: dict[str, Any] | None = None,
    from_client: bool = True,
) -> EventShape:
    """What an event shows, but for its id and time."""
    return {
        "type": type,
        "ipAddress": CLIENT_IP if from_client else None,
        "userAgent": USER_AGENT if from_client else None,
        "sessionId": session_id,
        "details": details,
    }


def shape(node: dict[str, Any]) -> EventShape:
    return {key: node[key] for key in ("type", "ipAddress", "userAgent", "sessionId", "details")}


def with_user(node: dict[str, Any]) -> EventShape:
    return {**shape(node), "user": node["user"]}


def unordered(events: list[EventShape]) -> list[str]:
    """For events of one frozen instant, which their ids order."""
    return sorted(json.dumps(entry, sort_keys=True) for entry in events)


def types_of(events: list[EventShape]) -> list[str]:
    return [entry["type"] for entry in events]


async def my_nodes(gql: GraphQLClient, token: str) -> list[dict[str, Any]]:
    response = await gql(MY_SECURITY_EVENTS, {"first": 100}, token=token)
    return [edge["node"] for edge in data_of(response, "mySecurityEvents")["edges"]]


async def my_events(gql: GraphQLClient, token: str) -> list[EventShape]:
    return [shape(node) for node in await my_nodes(gql, token)]


async def all_nodes(gql: GraphQLClient, token: str, **event_filter: Any) -> list[dict[str, Any]]:
    response = await gql(SECURITY_EVENTS, {"first": 100, "filter": event_filter}, token=token)
    return [edge["node"] for edge in data_of(response, "securityEvents")["edges"]]


async def session_id_of(gql: GraphQLClient, token: str) -> str:
    sessions = data_of(await gql(MY_SESSIONS, token=token), "mySessions")
    current: str = next(entry["id"] for entry in sessions if entry["current"])
    return current


async def sign_in(gql: GraphQLClient, email: str, password: str = USER_PASSWORD) -> Tokens:
    return await login_tokens(gql, email=email, password=password)


async def login(gql: GraphQLClient, email: str, password: str) -> GraphQLResponse:
    return await gql(LOGIN, {"input": {"email": email, "password": password}})


async def fail_sign_in(gql: GraphQLClient, email: str) -> None:
    (await login(gql, email, WRONG_PASSWORD)).single_error("UNAUTHENTICATED")


async def stored_events(db_session: AsyncSession) -> list[SecurityEvent]:
    """The table as the requests left it."""
    query = select(SecurityEvent).execution_options(populate_existing=True)
    rows = list((await db_session.scalars(query)).all())
    await db_session.commit()
    return rows


async def stored_types(db_session: AsyncSession) -> list[str]:
    return sorted(row.type for row in await stored_events(db_session))


async def table_dump(db_session: AsyncSession) -> str:
    """Every value of every stored event (lowercased), for what must be nowhere in it."""
    rows = (await db_session.execute(text("SELECT * FROM security_events"))).all()
    await db_session.commit()
    return repr(rows).lower()


async def count(db_session: AsyncSession, model: type[AuthSession] | type[Passkey]) -> int:
    total = (await db_session.execute(select(func.count()).select_from(model))).scalar_one()
    await db_session.commit()
    return int(total)


def link_token(outbox: list[EmailMessage], *, to: str, path: str) -> str:
    """The token of the one message to ``to`` whose link points at ``path``."""
    [message] = [
        message for message in outbox if message["To"] == to and path in message.get_content()
    ]
    return action_token(message, path)


async def add_events(
    db_session: AsyncSession, *events: tuple[uuid.UUID | None, str, datetime, str]
) -> None:
    """(account, type, time, label) rows, the label in details to tell them apart."""
    for user_id, type, occurred_at, label in events:
        await events_crud.add(
            session=db_session,
            event=events_crud.NewSecurityEvent(
                type=type, occurred_at=occurred_at, user_id=user_id, details={"label": label}
            ),
        )
    await db_session.commit()


class TestSignIn:
    async def test_login_records_signed_in_with_the_password_method(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        tokens = await sign_in(gql, test_user.email)

        assert await my_events(gql, tokens.access) == [
            event(
                "SIGNED_IN",
                session_id=await session_id_of(gql, tokens.access),
                details={"methods": ["pwd"]},
            )
        ]

    async def test_a_wrong_password_is_on_the_owners_list(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        await fail_sign_in(gql, test_user.email)
        tokens = await sign_in(gql, test_user.email)

        assert await my_events(gql, tokens.access) == [
            event(
                "SIGNED_IN",
                session_id=await session_id_of(gql, tokens.access),
                details={"methods": ["pwd"]},
            ),
            event("SIGN_IN_FAILED"),
        ]
        dump = await table_dump(db_session)
        assert WRONG_PASSWORD not in dump
        assert USER_PASSWORD.lower() not in dump

    async def test_an_unknown_address_is_for_superusers_only_and_kept_as_a_keyed_hash(
        self,
        gql: GraphQLClient,
        test_user: User,
        superuser_token: str,
        db_session: AsyncSession,
        settings: Settings,
    ) -> None:
        await fail_sign_in(gql, "Nobody@Example.COM")

        tokens = await sign_in(gql, test_user.email)
        assert types_of(await my_events(gql, tokens.access)) == ["SIGNED_IN"]
        assert types_of(await my_events(gql, superuser_token)) == ["SIGNED_IN"]
        [failed] = await all_nodes(gql, superuser_token, types=["SIGN_IN_FAILED"])
        assert with_user(failed) == {**event("SIGN_IN_FAILED"), "user": None}
        [row] = [row for row in await stored_events(db_session) if row.type == "SIGN_IN_FAILED"]
        assert row.user_id is None
        # Normalised first: attempts on one address correlate whatever its letter case.
        assert row.email_hash == address_hash(NOBODY, settings=settings)
        dump = await table_dump(db_session)
        assert "nobody" not in dump
        assert WRONG_PASSWORD not in dump

    async def test_a_superuser_finds_the_attempts_on_one_unknown_address(
        self, gql: GraphQLClient, superuser_token: str, settings: Settings
    ) -> None:
        for address in (NOBODY, "NOBODY@example.com", "somebody-else@example.com"):
            await fail_sign_in(gql, address)

        found = await all_nodes(gql, superuser_token, address=" Nobody@Example.com ")

        assert [node["type"] for node in found] == ["SIGN_IN_FAILED"] * 2
        assert {node["addressHash"] for node in found} == {address_hash(NOBODY, settings=settings)}
        refused = await gql(
            SECURITY_EVENTS, {"filter": {"address": "not an address"}}, token=superuser_token
        )
        assert refused.error_fields() == ["filter.address"]


@pytest.mark.usefixtures("clock")
class TestSecondFactors:
    """Time is frozen: the events of a test share an instant, and are compared unordered."""

    async def enrol(
        self, gql: GraphQLClient, clock: FrozenDateTimeFactory, user: User
    ) -> tuple[Tokens, pyotp.TOTP, list[str]]:
        """TOTP on from a password session; the clock a step on (confirming spent a code)."""
        tokens = await sign_in(gql, user.email)
        secret = data_of(
            await gql(START_TOTP_ENROLLMENT, token=tokens.access), "startTotpEnrollment"
        )
        totp = pyotp.TOTP(secret["secret"])
        confirmed = await gql(CONFIRM_TOTP_ENROLLMENT, {"code": totp.now()}, token=tokens.access)
        codes: list[str] = data_of(confirmed, "confirmTotpEnrollment")
        clock.tick(TOTP_STEP)
        return tokens, totp, codes

    async def challenge(self, gql: GraphQLClient, user: User) -> str:
        response = await login(gql, user.email, USER_PASSWORD)
        challenge: str = response.single_error("MFA_REQUIRED")["extensions"]["challenge"]
        return challenge

    async def complete(self, gql: GraphQLClient, challenge: str, **factor: str) -> GraphQLResponse:
        return await gql(COMPLETE_LOGIN, {"input": {"challenge": challenge, "factor": factor}})

    async def test_enabling_a_wrong_code_and_a_completed_sign_in(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        db_session: AsyncSession,
    ) -> None:
        enrolled, totp, codes = await self.enrol(gql, clock, test_user)
        challenge = await self.challenge(gql, test_user)
        accepted = {totp.at(T0 + drift * TOTP_STEP) for drift in range(-1, 4)}
        wrong = next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in accepted)

        refused = await self.complete(gql, challenge, totpCode=wrong)
        refused.single_error("UNAUTHENTICATED")
        completed = await self.complete(gql, challenge, totpCode=totp.now())

        token = data_of(completed, "completeLogin")["accessToken"]
        enrol_session = await session_id_of(gql, enrolled.access)
        assert unordered(await my_events(gql, token)) == unordered(
            [
                event("SIGNED_IN", session_id=enrol_session, details={"methods": ["pwd"]}),
                event("MFA_ENABLED", session_id=enrol_session, details={"method": "TOTP"}),
                event("MFA_CHALLENGE_FAILED", details={"method": "TOTP"}),
                event(
                    "SIGNED_IN",
                    session_id=await session_id_of(gql, token),
                    details={"methods": ["pwd", "otp", "mfa"]},
                ),
            ]
        )
        details = json.dumps([row.details for row in await stored_events(db_session)])
        assert wrong not in details
        dump = await table_dump(db_session)
        assert totp.secret.lower() not in dump
        assert not any(code.lower() in dump for code in codes)

    async def test_recovery_codes_used_regenerated_and_totp_turned_off(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        db_session: AsyncSession,
    ) -> None:
        enrolled, _, codes = await self.enrol(gql, clock, test_user)
        challenge = await self.challenge(gql, test_user)

        completed = await self.complete(gql, challenge, recoveryCode=codes[0])
        token = data_of(completed, "completeLogin")["accessToken"]
        step_up = await gql(
            REAUTHENTICATE, {"input": {"factor": {"recoveryCode": codes[1]}}}, token=token
        )
        assert data_of(step_up, "reauthenticate") is True
        new_codes = data_of(
            await gql("mutation { regenerateRecoveryCodes }", token=token),
            "regenerateRecoveryCodes",
        )
        assert data_of(await gql("mutation { disableTotp }", token=token), "disableTotp") is True

        enrol_session = await session_id_of(gql, enrolled.access)
        session = await session_id_of(gql, token)
        assert unordered(await my_events(gql, token)) == unordered(
            [
                event("SIGNED_IN", session_id=enrol_session, details={"methods": ["pwd"]}),
                event("MFA_ENABLED", session_id=enrol_session, details={"method": "TOTP"}),
                # Spent before the session it opens exists.
                event("RECOVERY_CODE_USED", details={"remaining": 9}),
                event("SIGNED_IN", session_id=session, details={"methods": ["pwd", "otp", "mfa"]}),
                event("RECOVERY_CODE_USED", session_id=session, details={"remaining": 8}),
                event("RECOVERY_CODES_REGENERATED", session_id=session),
                event("MFA_DISABLED", session_id=session, details={"method": "TOTP"}),
            ]
        )
        dump = await table_dump(db_session)
        for code in codes + new_codes:
            assert code.lower() not in dump
            assert code.replace("-", "").lower() not in dump

    async def test_a_superusers_reset_is_mfa_disabled_with_who_reset_it(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        test_superuser: User,
        superuser_token: str,
    ) -> None:
        await self.enrol(gql, clock, test_user)

        reset = await gql(RESET_USER_MFA, {"id": str(test_user.id)}, token=superuser_token)
        assert data_of(reset, "resetUserMfa") == {"id": str(test_user.id)}

        # The reset ended the account's sessions; the password alone signs it in now.
        owner = await sign_in(gql, test_user.email)
        [disabled] = [
            entry for entry in await my_events(gql, owner.access) if entry["type"] == "MFA_DISABLED"
        ]
        # The superuser's address, client and session are theirs, not for the owner's list.
        assert disabled == event(
            "MFA_DISABLED", details={"by_admin": str(test_superuser.id)}, from_client=False
        )
        assert "MFA_DISABLED" not in types_of(await my_events(gql, superuser_token))


class TestPasskeys:
    async def test_added_signed_in_with_and_removed(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        first = await sign_in(gql, test_user.email)
        device = authenticator()

        passkey = await add_passkey(gql, first.access, device, name="Work laptop")
        token = data_of(await passkey_sign_in(gql, device), "finishPasskeySignIn")["accessToken"]
        deleted = await gql(DELETE_PASSKEY, {"id": passkey["id"]}, token=token)
        assert data_of(deleted, "deletePasskey") is True

        first_session = await session_id_of(gql, first.access)
        passkey_session = await session_id_of(gql, token)
        about = {"passkey_id": passkey["id"], "name": "Work laptop"}
        assert await my_events(gql, token) == [
            event("PASSKEY_REMOVED", session_id=passkey_session, details=about),
            event("SIGNED_IN", session_id=passkey_session, details={"methods": ["hwk", "user"]}),
            event("PASSKEY_ADDED", session_id=first_session, details=about),
            event("SIGNED_IN", session_id=first_session, details={"methods": ["pwd"]}),
        ]


class TestSessions:
    async def test_signed_out_one_revoked_and_all_revoked(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        a, b, c = [await sign_in(gql, test_user.email) for _ in range(3)]
        a_id, b_id, c_id = [await session_id_of(gql, tokens.access) for tokens in (a, b, c)]

        assert data_of(await gql(LOGOUT, {"refreshToken": c.refresh}), "logout") is True
        revoked = await gql(REVOKE_SESSION, {"id": b_id}, token=a.access)
        assert data_of(revoked, "revokeSession") is True
        assert data_of(await gql(LOGOUT_ALL, token=a.access), "logoutAll") is True

        later = await sign_in(gql, test_user.email)
        events = await my_events(gql, later.access)
        assert [entry for entry in events if entry["type"] != "SIGNED_IN"] == [
            event("ALL_SESSIONS_REVOKED", session_id=a_id),
            event("SESSION_REVOKED", session_id=a_id, details={"revoked_session_id": b_id}),
            event("SIGNED_OUT", session_id=c_id),
        ]


class TestRefreshTokenReuse:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        # No grace: presenting a rotated token again is reuse at once.
        return settings.model_copy(update={"refresh_reuse_grace_seconds": 0})

    async def test_reuse_is_recorded_with_the_session_it_ended(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        tokens = await sign_in(gql, test_user.email)
        session = await session_id_of(gql, tokens.access)
        data_of(await gql(REFRESH_TOKEN, {"refreshToken": tokens.refresh}), "refreshToken")

        reused = await gql(REFRESH_TOKEN, {"refreshToken": tokens.refresh})

        error = reused.single_error("UNAUTHENTICATED")
        assert error["extensions"]["reason"] == "REFRESH_TOKEN_REUSED"
        later = await sign_in(gql, test_user.email)
        events = await my_events(gql, later.access)
        assert [entry for entry in events if entry["type"] != "SIGNED_IN"] == [
            event("REFRESH_TOKEN_REUSE_DETECTED", session_id=session)
        ]


class TestAccount:
    async def test_a_password_change(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        tokens = await sign_in(gql, test_user.email)

        changed = await gql(
            CHANGE_PASSWORD,
            {"input": {"currentPassword": USER_PASSWORD, "newPassword": NEW_PASSWORD}},
            token=tokens.access,
        )

        assert data_of(changed, "changePassword") is True
        events = await my_events(gql, tokens.access)
        assert events[0] == event(
            "PASSWORD_CHANGED", session_id=await session_id_of(gql, tokens.access)
        )
        dump = await table_dump(db_session)
        assert USER_PASSWORD.lower() not in dump
        assert NEW_PASSWORD not in dump

    async def test_a_password_reset_requested_and_done(
        self,
        gql: GraphQLClient,
        test_user: User,
        db_session: AsyncSession,
        outbox: list[EmailMessage],
    ) -> None:
        # An address no account uses asks for nothing to be recorded.
        nobody = await gql(REQUEST_PASSWORD_RESET, {"email": NOBODY})
        assert data_of(nobody, "requestPasswordReset") is True
        assert await stored_events(db_session) == []

        requested = await gql(REQUEST_PASSWORD_RESET, {"email": test_user.email})
        assert data_of(requested, "requestPasswordReset") is True
        # The job that records the request ran after the response, and has sent the link.
        token = link_token(outbox, to=test_user.email, path=RESET_PATH)
        reset = await gql(RESET_PASSWORD, {"input": {"token": token, "newPassword": NEW_PASSWORD}})
        assert data_of(reset, "resetPassword") is True

        later = await sign_in(gql, test_user.email, NEW_PASSWORD)
        assert (await my_events(gql, later.access))[1:] == [
            event("PASSWORD_RESET"),
            # The job has no client to tell of.
            event("PASSWORD_RESET_REQUESTED", from_client=False),
        ]
        dump = await table_dump(db_session)
        assert token.lower() not in dump
        assert NEW_PASSWORD not in dump

    async def test_an_email_change_requested_and_verified_shows_addresses_masked(
        self,
        gql: GraphQLClient,
        test_user: User,
        db_session: AsyncSession,
        outbox: list[EmailMessage],
    ) -> None:
        tokens = await sign_in(gql, test_user.email)
        new_address = "new.address@example.com"

        updated = await gql(UPDATE_ME, {"input": {"email": new_address}}, token=tokens.access)
        assert data_of(updated, "updateMe")["email"] == new_address
        token = link_token(outbox, to=new_address, path=VERIFY_PATH)
        assert data_of(await gql(VERIFY_EMAIL, {"token": token}), "verifyEmail")["isVerified"]

        session = await session_id_of(gql, tokens.access)
        assert (await my_events(gql, tokens.access))[:2] == [
            event("EMAIL_VERIFIED", details={"email": "n***@example.com"}),
            event(
                "EMAIL_CHANGE_REQUESTED",
                session_id=session,
                details={"from": "t***@example.com", "to": "n***@example.com"},
            ),
        ]
        dump = await table_dump(db_session)
        assert test_user.email not in dump
        assert new_address not in dump
        assert token.lower() not in dump


class TestLockout:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                "rate_limit_enabled": True,
                "login_attempts_per_account": f"{LOCKOUT_AFTER}/15minutes",
            }
        )

    async def test_reaching_the_lockout_is_recorded_once(
        self, gql: GraphQLClient, test_user: User, user_token: str
    ) -> None:
        for _ in range(LOCKOUT_AFTER):
            await fail_sign_in(gql, test_user.email)
        # Refused before any password is checked: no more events, right password or not.
        for password in (WRONG_PASSWORD, USER_PASSWORD):
            (await login(gql, test_user.email, password)).single_error("RATE_LIMITED")

        events = await my_events(gql, user_token)
        assert [entry for entry in events if entry["type"] != "SIGNED_IN"] == [
            event("ACCOUNT_LOCKED"),
            *[event("SIGN_IN_FAILED")] * LOCKOUT_AFTER,
        ]

    async def test_an_unknown_address_locked_out_is_for_superusers_as_a_keyed_hash(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        db_session: AsyncSession,
        settings: Settings,
    ) -> None:
        for _ in range(LOCKOUT_AFTER):
            await fail_sign_in(gql, NOBODY)

        [locked] = await all_nodes(gql, superuser_token, types=["ACCOUNT_LOCKED"])
        assert with_user(locked) == {**event("ACCOUNT_LOCKED"), "user": None}
        [row] = [row for row in await stored_events(db_session) if row.type == "ACCOUNT_LOCKED"]
        assert (row.user_id, row.email_hash) == (None, address_hash(NOBODY, settings=settings))
        assert "nobody" not in await table_dump(db_session)


class TestAdmin:
    @pytest.mark.parametrize(
        ("changes", "changed"),
        [
            pytest.param({"fullName": "Renamed User"}, ["fullName"], id="name"),
            pytest.param({"password": NEW_PASSWORD}, ["password"], id="password"),
            pytest.param(
                {"email": "moved@example.com", "isSuperuser": True},
                # A new address is unverified until its owner follows the link.
                ["email", "isSuperuser", "isVerified"],
                id="email-and-role",
            ),
        ],
    )
    async def test_an_update_lists_the_fields_it_changed_never_their_values(
        self,
        gql: GraphQLClient,
        *,
        test_user: User,
        test_superuser: User,
        superuser_token: str,
        db_session: AsyncSession,
        changes: dict[str, Any],
        changed: list[str],
    ) -> None:
        updated = await gql(
            UPDATE_USER, {"id": str(test_user.id), "input": changes}, token=superuser_token
        )

        data_of(updated, "updateUser")
        owner = await sign_in(
            gql, changes.get("email", test_user.email), changes.get("password", USER_PASSWORD)
        )
        by_admin = {"by_admin": str(test_superuser.id)}
        # A password the owner did not set is also a PASSWORD_CHANGED, which they are told of.
        told = [event("PASSWORD_CHANGED", details=by_admin, from_client=False)]
        assert (await my_events(gql, owner.access))[1:] == (
            told if "password" in changes else []
        ) + [
            event(
                "ACCOUNT_UPDATED_BY_ADMIN",
                details={"changed": changed, **by_admin},
                from_client=False,
            )
        ]
        dump = await table_dump(db_session)
        for value in changes.values():
            if isinstance(value, str):
                assert value.lower() not in dump

    async def test_disabling_is_an_update_and_a_disabling(
        self,
        gql: GraphQLClient,
        test_user: User,
        test_superuser: User,
        superuser_token: str,
    ) -> None:
        by_admin = {"by_admin": str(test_superuser.id)}
        variables: dict[str, Any] = {"id": str(test_user.id), "input": {"isActive": False}}

        data_of(await gql(UPDATE_USER, variables, token=superuser_token), "updateUser")

        update = event(
            "ACCOUNT_UPDATED_BY_ADMIN",
            details={"changed": ["isActive"], **by_admin},
            from_client=False,
        )
        disabled = event("ACCOUNT_DISABLED", details=by_admin, from_client=False)
        # The owner cannot sign in now; a superuser reads the account's list.
        listed = await all_nodes(gql, superuser_token, userId=str(test_user.id))
        assert [shape(node) for node in listed] == [disabled, update]
        assert {node["user"]["id"] for node in listed} == {str(test_user.id)}
        # Enabled again, the owner reads both on their own list.
        variables["input"] = {"isActive": True}
        data_of(await gql(UPDATE_USER, variables, token=superuser_token), "updateUser")
        owner = await sign_in(gql, test_user.email)
        assert (await my_events(gql, owner.access))[1:] == [update, disabled, update]

    async def test_deleting_an_account_keeps_its_events_without_whom_or_where(
        self,
        gql: GraphQLClient,
        test_user: User,
        test_superuser: User,
        superuser_token: str,
        db_session: AsyncSession,
    ) -> None:
        await fail_sign_in(gql, test_user.email)
        owner = await sign_in(gql, test_user.email)
        earlier = await my_nodes(gql, owner.access)
        admin_session = await session_id_of(gql, superuser_token)

        deleted = await gql(DELETE_USER, {"id": str(test_user.id)}, token=superuser_token)

        assert data_of(deleted, "deleteUser") is True
        listed = {
            node["id"]: node
            for node in await all_nodes(gql, superuser_token, types=["SIGNED_IN", "SIGN_IN_FAILED"])
        }
        for before in earlier:
            after = listed[before["id"]]
            assert (after["type"], after["occurredAt"]) == (before["type"], before["occurredAt"])
            assert (after["user"], after["ipAddress"], after["userAgent"]) == (None, None, None)
        rows = {str(row.id): row for row in await stored_events(db_session)}
        assert all(rows[before["id"]].user_id is None for before in earlier)
        [gone] = await all_nodes(gql, superuser_token, types=["ACCOUNT_DELETED"])
        assert with_user(gone) == {
            **event(
                "ACCOUNT_DELETED",
                session_id=admin_session,
                details={"account_id": str(test_user.id), "by_admin": str(test_superuser.id)},
            ),
            "user": None,
        }
        assert await all_nodes(gql, superuser_token, userId=str(test_user.id)) == []
        assert test_user.email not in await table_dump(db_session)

    async def test_deleting_an_account_leaves_no_personal_data_in_its_events(
        self,
        gql: GraphQLClient,
        test_user: User,
        superuser_token: str,
        db_session: AsyncSession,
    ) -> None:
        """The account link, addresses and user agents are cleared; what it named itself
        (a passkey's name) and its addresses, even masked, must not stay in details."""
        owner = await sign_in(gql, test_user.email)
        await add_passkey(gql, owner.access, authenticator(), name="Alice Example's phone")
        moved = await gql(
            UPDATE_ME, {"input": {"email": "alice@alice-example.org"}}, token=owner.access
        )
        data_of(moved, "updateMe")

        deleted = await gql(DELETE_USER, {"id": str(test_user.id)}, token=superuser_token)

        assert data_of(deleted, "deleteUser") is True
        details = json.dumps([row.details for row in await stored_events(db_session)]).lower()
        assert "alice" not in details
        assert "t***@example.com" not in details


class TestLists:
    @pytest.fixture
    async def trail(self, db_session: AsyncSession, test_user: User) -> dict[str, uuid.UUID]:
        """Two accounts' events and a stranger's, an hour or so apart, long ago."""
        other = await create_user(db_session, email="other@example.com")

        def at(hours: float) -> datetime:
            return PAST + timedelta(hours=hours)

        await add_events(
            db_session,
            (test_user.id, "SIGNED_IN", at(1), "a1"),
            (other.id, "SIGNED_IN", at(1.5), "b1"),
            (test_user.id, "PASSWORD_CHANGED", at(2), "a2"),
            (None, "SIGN_IN_FAILED", at(2.25), "x1"),
            (other.id, "PASSWORD_CHANGED", at(2.5), "b2"),
            (test_user.id, "MFA_ENABLED", at(3), "a3"),
        )
        return {"test_user": test_user.id, "other": other.id}

    async def test_pages_run_newest_first_and_a_cursor_goes_on_where_the_last_ended(
        self, gql: GraphQLClient, test_user: User, user_token: str, db_session: AsyncSession
    ) -> None:
        # Five share an instant: their ids order them.
        times = [PAST - timedelta(minutes=n) for n in range(20)] + [PAST - timedelta(days=1)] * 5
        await add_events(
            db_session,
            *[(test_user.id, "PASSWORD_CHANGED", at, f"e{n}") for n, at in enumerate(times)],
        )
        stored = await stored_events(db_session)
        newest_first = sorted(stored, key=lambda row: (row.occurred_at, row.id), reverse=True)
        # With user_token's sign-in.
        assert len(newest_first) == 26

        seen: list[str] = []
        pages: list[tuple[int, bool, bool]] = []
        after = None
        while True:
            response = await gql(MY_SECURITY_EVENTS, {"first": 7, "after": after}, token=user_token)
            connection = data_of(response, "mySecurityEvents")
            edges, info = connection["edges"], connection["pageInfo"]
            assert (info["startCursor"], info["endCursor"]) == (
                edges[0]["cursor"],
                edges[-1]["cursor"],
            )
            pages.append((len(edges), info["hasNextPage"], info["hasPreviousPage"]))
            seen += [edge["node"]["id"] for edge in edges]
            if not info["hasNextPage"]:
                break
            after = info["endCursor"]

        assert seen == [str(row.id) for row in newest_first]
        assert pages == [(7, True, False), (7, True, True), (7, True, True), (5, False, True)]

    @pytest.mark.parametrize("first", [None, 1, 100])
    async def test_page_sizes_in_range_and_the_default(
        self,
        gql: GraphQLClient,
        test_user: User,
        user_token: str,
        db_session: AsyncSession,
        first: int | None,
    ) -> None:
        await add_events(
            db_session,
            *[(test_user.id, "SIGNED_IN", PAST - timedelta(minutes=n), f"e{n}") for n in range(24)],
        )

        response = await gql(MY_SECURITY_EVENTS, {"first": first}, token=user_token)

        expected = {None: 20, 1: 1, 100: 25}[first]
        assert len(data_of(response, "mySecurityEvents")["edges"]) == expected

    @pytest.mark.parametrize("first", [0, -1, 101])
    @pytest.mark.parametrize("document", LISTS)
    async def test_first_out_of_range_is_bad_user_input(
        self, gql: GraphQLClient, superuser_token: str, document: str, first: int
    ) -> None:
        response = await gql(document, {"first": first}, token=superuser_token)

        fields = response.single_error("BAD_USER_INPUT")["extensions"]["fields"]
        assert [(entry["field"], entry["code"]) for entry in fields] == [("first", "OUT_OF_RANGE")]
        assert response.data is None

    @pytest.mark.parametrize("after", ["garbage", "eyJ4IjogMX0"])
    @pytest.mark.parametrize("document", LISTS)
    async def test_a_bad_cursor_is_invalid_cursor(
        self, gql: GraphQLClient, superuser_token: str, document: str, after: str
    ) -> None:
        response = await gql(document, {"after": after}, token=superuser_token)

        fields = response.single_error("BAD_USER_INPUT")["extensions"]["fields"]
        assert [(entry["field"], entry["code"]) for entry in fields] == [
            ("after", "INVALID_CURSOR")
        ]

    async def test_security_events_is_for_superusers_only(
        self, gql: GraphQLClient, user_token: str
    ) -> None:
        response = await gql(SECURITY_EVENTS, token=user_token)

        assert response.single_error("FORBIDDEN")["message"] == "Superuser privileges required"
        assert response.data is None

    @pytest.mark.parametrize("document", LISTS)
    async def test_anonymous_reads_neither_list(self, gql: GraphQLClient, document: str) -> None:
        response = await gql(document)

        response.single_error("UNAUTHENTICATED")
        assert response.data is None

    @pytest.mark.parametrize(
        ("event_filter", "labels"),
        [
            # The superuser's own sign-in (superuser_token) is the newest, and has no label.
            pytest.param({}, [None, "a3", "b2", "x1", "a2", "b1", "a1"], id="none"),
            pytest.param({"userId": "test_user"}, ["a3", "a2", "a1"], id="user"),
            pytest.param(
                {"types": ["PASSWORD_CHANGED", "SIGN_IN_FAILED"]}, ["b2", "x1", "a2"], id="types"
            ),
            pytest.param(
                # Since is inclusive, until exclusive.
                # In any offset: 03:00+01:00 is 02:00 UTC.
                {"since": "2020-01-01T03:00:00+01:00", "until": "2020-01-01T03:00:00+00:00"},
                ["b2", "x1", "a2"],
                id="since-until",
            ),
            pytest.param(
                {
                    "userId": "other",
                    "types": ["PASSWORD_CHANGED", "SIGNED_IN"],
                    "since": "2020-01-01T01:30:00+00:00",
                },
                ["b2", "b1"],
                id="all-at-once",
            ),
        ],
    )
    async def test_superusers_filter_by_account_type_and_time(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        trail: dict[str, uuid.UUID],
        event_filter: dict[str, Any],
        labels: list[str],
    ) -> None:
        if "userId" in event_filter:
            event_filter = {**event_filter, "userId": str(trail[event_filter["userId"]])}

        nodes = await all_nodes(gql, superuser_token, **event_filter)

        assert [(node["details"] or {}).get("label") for node in nodes] == labels

    async def test_an_invalid_user_id_is_bad_user_input(
        self, gql: GraphQLClient, superuser_token: str
    ) -> None:
        response = await gql(
            SECURITY_EVENTS, {"filter": {"userId": "not-a-uuid"}}, token=superuser_token
        )

        fields = response.single_error("BAD_USER_INPUT")["extensions"]["fields"]
        assert [(entry["field"], entry["code"]) for entry in fields] == [
            ("filter.userId", "INVALID_ID")
        ]

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param("2020-01-01T02:00:00", id="no-offset"),
            pytest.param("9999-12-31T23:59:59-05:00", id="past-year-9999-in-utc"),
        ],
    )
    @pytest.mark.parametrize("bound", ["since", "until"])
    async def test_a_time_that_is_no_utc_instant_is_bad_user_input(
        self, gql: GraphQLClient, superuser_token: str, bound: str, value: str
    ) -> None:
        response = await gql(SECURITY_EVENTS, {"filter": {bound: value}}, token=superuser_token)

        assert response.error_fields() == [f"filter.{bound}"]

    async def test_a_filtered_list_pages_on_with_its_filter(
        self, gql: GraphQLClient, superuser_token: str, trail: dict[str, uuid.UUID]
    ) -> None:
        variables: dict[str, Any] = {
            "first": 2,
            "filter": {"types": ["PASSWORD_CHANGED", "SIGN_IN_FAILED"]},
        }
        first = data_of(
            await gql(SECURITY_EVENTS, variables, token=superuser_token), "securityEvents"
        )
        variables["after"] = first["pageInfo"]["endCursor"]
        second = data_of(
            await gql(SECURITY_EVENTS, variables, token=superuser_token), "securityEvents"
        )

        pages = [
            (
                [edge["node"]["details"]["label"] for edge in page["edges"]],
                page["pageInfo"]["hasNextPage"],
                page["pageInfo"]["hasPreviousPage"],
            )
            for page in (first, second)
        ]
        assert pages == [(["b2", "x1"], True, False), (["a2"], False, True)]

    async def test_an_events_user_is_its_account(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        test_user: User,
        trail: dict[str, uuid.UUID],
    ) -> None:
        nodes = await all_nodes(gql, superuser_token, until="2020-01-02T00:00:00+00:00")

        users = {node["details"]["label"]: node["user"] for node in nodes}
        assert users["a1"] == {"id": str(test_user.id), "email": test_user.email}
        assert users["b1"] == {"id": str(trail["other"]), "email": "other@example.com"}
        assert users["x1"] is None

    async def test_an_account_sees_its_own_events_only(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        other = await create_user(db_session, email="other@example.com")
        mine = await sign_in(gql, test_user.email)
        await fail_sign_in(gql, other.email)
        await fail_sign_in(gql, NOBODY)
        theirs = await sign_in(gql, other.email)

        assert await my_events(gql, mine.access) == [
            event(
                "SIGNED_IN",
                session_id=await session_id_of(gql, mine.access),
                details={"methods": ["pwd"]},
            )
        ]
        assert await my_events(gql, theirs.access) == [
            event(
                "SIGNED_IN",
                session_id=await session_id_of(gql, theirs.access),
                details={"methods": ["pwd"]},
            ),
            event("SIGN_IN_FAILED"),
        ]


class TestAtomicity:
    """No change happens without its event, and no event survives a rolled-back change: a
    failure after both were written, before the commit, leaves neither."""

    def fail_after_the_next_event(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The event written (flushed, like the change before it), then a failure."""
        add = events_crud.add

        async def add_then_fail(
            *, session: AsyncSession, event: events_crud.NewSecurityEvent
        ) -> SecurityEvent:
            await add(session=session, event=event)
            raise RuntimeError("forced failure before the commit")

        monkeypatch.setattr(events_crud, "add", add_then_fail)

    async def test_a_password_change(
        self,
        gql: GraphQLClient,
        test_user: User,
        db_session: AsyncSession,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        tokens, other = [await sign_in(gql, test_user.email) for _ in range(2)]
        password_hash = test_user.password_hash
        self.fail_after_the_next_event(monkeypatch)

        response = await gql(
            CHANGE_PASSWORD,
            {"input": {"currentPassword": USER_PASSWORD, "newPassword": NEW_PASSWORD}},
            token=tokens.access,
        )

        response.single_error("INTERNAL_SERVER_ERROR")
        monkeypatch.undo()
        await db_session.refresh(test_user)
        assert test_user.password_hash == password_hash
        await db_session.commit()
        # The other session was not ended either.
        assert (await gql(ME, token=other.access)).errors == []
        assert await stored_types(db_session) == ["SIGNED_IN", "SIGNED_IN"]

    async def test_a_passkey_removal(
        self,
        gql: GraphQLClient,
        test_user: User,
        db_session: AsyncSession,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        tokens = await sign_in(gql, test_user.email)
        passkey = await add_passkey(gql, tokens.access, authenticator())
        self.fail_after_the_next_event(monkeypatch)

        response = await gql(DELETE_PASSKEY, {"id": passkey["id"]}, token=tokens.access)

        response.single_error("INTERNAL_SERVER_ERROR")
        monkeypatch.undo()
        assert await count(db_session, Passkey) == 1
        assert await stored_types(db_session) == ["PASSKEY_ADDED", "SIGNED_IN"]

    async def test_an_admin_update(
        self,
        gql: GraphQLClient,
        test_user: User,
        superuser_token: str,
        db_session: AsyncSession,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.fail_after_the_next_event(monkeypatch)

        response = await gql(
            UPDATE_USER,
            {"id": str(test_user.id), "input": {"fullName": "Renamed User"}},
            token=superuser_token,
        )

        response.single_error("INTERNAL_SERVER_ERROR")
        monkeypatch.undo()
        await db_session.refresh(test_user)
        assert test_user.full_name is None
        await db_session.commit()
        assert await stored_types(db_session) == ["SIGNED_IN"]

    async def test_a_sign_in_that_fails_after_its_event(
        self,
        gql: GraphQLClient,
        test_user: User,
        db_session: AsyncSession,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        async def fail(**_: object) -> None:
            raise RuntimeError("forced failure before the commit")

        # The session and its SIGNED_IN are written before the refresh token is.
        monkeypatch.setattr(refresh_tokens_crud, "create", fail)

        response = await login(gql, test_user.email, USER_PASSWORD)

        response.single_error("INTERNAL_SERVER_ERROR")
        monkeypatch.undo()
        assert await count(db_session, AuthSession) == 0
        assert await stored_events(db_session) == []
