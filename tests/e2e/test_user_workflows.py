"""User workflows against the real application on PostgreSQL, as a client drives them."""

import asyncio
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.api.resolvers import users as users_resolvers
from gql_app.config import Settings
from gql_app.error_reasons import ErrorReason
from gql_app.models import AuthSession, RefreshToken, User
from gql_app.models.base import utc_now
from gql_app.security.tokens import hash_opaque_token
from tests.factories import STRONG_PASSWORD, USER_PASSWORD, create_user
from tests.graphql import LOGIN, GraphQLClient, GraphQLResponse

pytestmark = pytest.mark.e2e

USER_FIELDS = "id email fullName isActive isSuperuser isVerified createdAt updatedAt"
REGISTER = f"""
mutation Register($input: RegisterInput!) {{
  register(input: $input) {{ {USER_FIELDS} }}
}}
"""
ME = f"query {{ me {{ {USER_FIELDS} }} }}"
USER = "query User($id: ID!) { user(id: $id) { id email } }"
USERS = """
query Users($first: Int, $after: String, $filter: UserFilter) {
  users(first: $first, after: $after, filter: $filter) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id email fullName isActive isSuperuser createdAt updatedAt } }
  }
}
"""

SUPERUSER_EMAIL = "superuser@example.com"


def assert_utc_timestamp(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"{value!r} has no timezone"
    assert parsed.utcoffset() == timedelta(0), f"{value!r} is not UTC"
    return parsed


async def register(
    gql: GraphQLClient, email: str, *, full_name: str | None = None
) -> GraphQLResponse:
    registration: dict[str, Any] = {"email": email, "password": STRONG_PASSWORD}
    if full_name is not None:
        registration["fullName"] = full_name
    return await gql(REGISTER, {"input": registration})


async def all_pages(
    gql: GraphQLClient, token: str, *, first: int, user_filter: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every page of the users listing, following endCursor until hasNextPage is false."""
    pages: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        response = await gql(
            USERS, {"first": first, "after": after, "filter": user_filter}, token=token
        )
        assert response.errors == [], response.body
        connection: dict[str, Any] = response.data["users"]
        pages.append(connection)
        if not connection["pageInfo"]["hasNextPage"]:
            return pages
        assert len(pages) < 50, "pagination does not end"
        after = connection["pageInfo"]["endCursor"]


def page_emails(pages: list[dict[str, Any]]) -> list[str]:
    return [edge["node"]["email"] for page in pages for edge in page["edges"]]


@contextmanager
def captured_logs(caplog: pytest.LogCaptureFixture, logger_name: str) -> Iterator[None]:
    # The application's loggers do not propagate to the root logger caplog listens on.
    logger = logging.getLogger(logger_name)
    logger.addHandler(caplog.handler)
    try:
        yield
    finally:
        logger.removeHandler(caplog.handler)


class TestRegisterLoginMe:
    async def test_a_new_account_registers_signs_in_and_reads_itself(
        self, gql: GraphQLClient, db_session: AsyncSession, settings: Settings
    ) -> None:
        registered = await register(gql, "New.Person@Example.COM", full_name="  Ada   Lovelace ")

        assert registered.errors == [], registered.body
        account = registered.data["register"]
        assert account["email"] == "new.person@example.com"
        assert account["fullName"] == "Ada Lovelace"
        assert (account["isActive"], account["isSuperuser"], account["isVerified"]) == (
            True,
            False,
            False,
        )
        assert STRONG_PASSWORD not in registered.text

        signed_in = await gql(
            LOGIN, {"input": {"email": "NEW.PERSON@example.com", "password": STRONG_PASSWORD}}
        )

        assert signed_in.errors == [], signed_in.body
        payload = signed_in.data["login"]
        assert payload["tokenType"] == "Bearer"
        assert payload["expiresIn"] == settings.access_token_expire_seconds
        assert payload["refreshToken"]
        assert payload["user"] == {"id": account["id"], "email": "new.person@example.com"}

        me = await gql(ME, token=payload["accessToken"])

        assert me.errors == [], me.body
        assert me.data["me"] == account

        stored = (
            await db_session.scalars(
                select(AuthSession).where(AuthSession.user_id == uuid.UUID(account["id"]))
            )
        ).all()
        assert len(stored) == 1
        assert stored[0].revoked_at is None
        assert stored[0].ip_address == "127.0.0.1"
        assert stored[0].user_agent is not None
        assert stored[0].user_agent.startswith("python-httpx/")
        refresh_rows = (
            await db_session.scalars(
                select(RefreshToken).where(RefreshToken.session_id == stored[0].id)
            )
        ).all()
        assert len(refresh_rows) == 1
        assert refresh_rows[0].rotated_at is None
        assert refresh_rows[0].token_hash == hash_opaque_token(payload["refreshToken"])
        assert payload["refreshToken"] not in refresh_rows[0].token_hash
        assert stored[0].expires_at - utc_now() > timedelta(days=29)

    async def test_registering_an_email_again_in_another_case_conflicts(
        self, gql: GraphQLClient
    ) -> None:
        assert (await register(gql, "twice@example.com")).errors == []

        again = await register(gql, "TWICE@Example.com")

        error = again.single_error("CONFLICT")
        assert error["extensions"]["reason"] == ErrorReason.EMAIL_TAKEN
        assert again.data is None

    async def test_wrong_password_is_refused(self, gql: GraphQLClient) -> None:
        assert (await register(gql, "careful@example.com")).errors == []

        response = await gql(
            LOGIN, {"input": {"email": "careful@example.com", "password": STRONG_PASSWORD + "!"}}
        )

        assert response.single_error("UNAUTHENTICATED")["message"] == "Invalid credentials"


class TestTimestamps:
    async def test_timestamps_come_back_timezone_aware(
        self, gql: GraphQLClient, db_session: AsyncSession, superuser_token: str
    ) -> None:
        before = utc_now()
        registered = await register(gql, "clock@example.com")
        assert registered.errors == [], registered.body
        account = registered.data["register"]

        created_at = assert_utc_timestamp(account["createdAt"])
        assert_utc_timestamp(account["updatedAt"])
        assert before - timedelta(seconds=5) <= created_at <= utc_now() + timedelta(seconds=5)

        listing = await gql(USERS, token=superuser_token)
        assert listing.errors == [], listing.body
        for edge in listing.data["users"]["edges"]:
            assert_utc_timestamp(edge["node"]["createdAt"])
            assert_utc_timestamp(edge["node"]["updatedAt"])

        # The columns themselves are timestamptz: the driver hands back aware values.
        row = (
            await db_session.execute(
                text("SELECT created_at, updated_at FROM users WHERE email = :email"),
                {"email": "clock@example.com"},
            )
        ).one()
        assert all(value.tzinfo is not None for value in row)
        assert row.created_at == created_at


# The listing's seed: 25 members and the superuser fixture, 26 accounts in all.
MEMBER_COUNT = 25
INACTIVE = frozenset(range(0, MEMBER_COUNT, 5))
NEEDLES = frozenset({3, 13, 23})
PERCENT = 7
SUPER_MEMBER = 24


def member_email(index: int) -> str:
    return f"member{index:02d}@example.com"


def member_name(index: int) -> str | None:
    if index in NEEDLES:
        return f"Needle Finder {index}"
    if index == PERCENT:
        return "100% Genuine"
    return None


def members(predicate: Any) -> set[str]:
    return {member_email(index) for index in range(MEMBER_COUNT) if predicate(index)}


FILTER_CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("search in the name, any case", {"search": "NEEDLE"}, members(lambda i: i in NEEDLES)),
    ("search in the email", {"search": "member1"}, members(lambda i: 10 <= i < 20)),
    ("% is literal", {"search": "100%"}, {member_email(PERCENT)}),
    ("_ is literal", {"search": "_"}, set()),
    ("inactive", {"isActive": False}, members(lambda i: i in INACTIVE)),
    ("superusers", {"isSuperuser": True}, {SUPERUSER_EMAIL, member_email(SUPER_MEMBER)}),
    (
        "active ordinary users",
        {"isActive": True, "isSuperuser": False},
        members(lambda i: i not in INACTIVE and i != SUPER_MEMBER),
    ),
    (
        "search and inactive",
        {"search": "member", "isActive": False},
        members(lambda i: i in INACTIVE),
    ),
    ("no match", {"search": "nobody-has-this"}, set()),
]


@pytest.fixture
async def seeded_members(db_session: AsyncSession, test_superuser: User) -> list[User]:
    return [
        await create_user(
            db_session,
            email=member_email(index),
            full_name=member_name(index),
            is_active=index not in INACTIVE,
            is_superuser=index == SUPER_MEMBER,
        )
        for index in range(MEMBER_COUNT)
    ]


class TestAdminListing:
    @pytest.mark.usefixtures("seeded_members")
    async def test_cursor_pagination_walks_every_user_once_in_order(
        self, gql: GraphQLClient, superuser_token: str, db_session: AsyncSession
    ) -> None:
        pages = await all_pages(gql, superuser_token, first=10)

        assert [len(page["edges"]) for page in pages] == [10, 10, 6]
        assert [page["totalCount"] for page in pages] == [26, 26, 26]
        assert [page["pageInfo"]["hasNextPage"] for page in pages] == [True, True, False]
        assert [page["pageInfo"]["hasPreviousPage"] for page in pages] == [False, True, True]
        for page in pages:
            assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
            assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]

        listed_ids = [edge["node"]["id"] for page in pages for edge in page["edges"]]
        expected_ids = (
            await db_session.scalars(select(User.id).order_by(User.created_at, User.id))
        ).all()
        assert listed_ids == [str(user_id) for user_id in expected_ids]
        assert len(set(listed_ids)) == 26

    @pytest.mark.usefixtures("seeded_members")
    async def test_filters_narrow_every_page_and_the_total(
        self, gql: GraphQLClient, superuser_token: str
    ) -> None:
        # One seeded listing, many filters: seeding and signing in cost more than a query.
        problems: dict[str, Any] = {}
        for name, user_filter, expected in FILTER_CASES:
            pages = await all_pages(gql, superuser_token, first=4, user_filter=user_filter)
            listed = page_emails(pages)
            seen = {
                "emails": sorted(listed),
                "totals": {page["totalCount"] for page in pages},
                "pages": len(pages),
            }
            wanted = {
                "emails": sorted(expected),
                "totals": {len(expected)},
                "pages": max(1, -(-len(expected) // 4)),
            }
            if seen != wanted:
                problems[name] = {"filter": user_filter, "got": seen, "expected": wanted}

        assert problems == {}

    async def test_an_ordinary_user_may_not_list(self, gql: GraphQLClient, user_token: str) -> None:
        response = await gql(USERS, token=user_token)

        response.single_error("FORBIDDEN")
        assert response.data is None

    async def test_an_anonymous_client_may_not_list(self, gql: GraphQLClient) -> None:
        (await gql(USERS)).single_error("UNAUTHENTICATED")


class TestRevokedSession:
    async def test_the_token_of_a_revoked_session_is_refused(
        self,
        gql: GraphQLClient,
        user_token: str,
        test_user: User,
        async_test_db: tuple[Any, Any],
    ) -> None:
        assert (await gql(ME, token=user_token)).errors == []
        _, session_factory = async_test_db
        async with session_factory() as session:
            revoked = await session.execute(
                text("UPDATE auth_sessions SET revoked_at = :now WHERE user_id = :user_id"),
                {"now": datetime.now(UTC), "user_id": test_user.id},
            )
            await session.commit()
        assert revoked.rowcount == 1

        response = await gql(ME, token=user_token)

        error = response.single_error("UNAUTHENTICATED")
        assert error["message"] == "Session has ended"
        assert response.data is None

        # Signing in again starts a new, usable session.
        fresh = await gql(LOGIN, {"input": {"email": test_user.email, "password": USER_PASSWORD}})
        assert fresh.errors == [], fresh.body
        assert (await gql(ME, token=fresh.data["login"]["accessToken"])).errors == []


def case_variants(email: str, count: int) -> list[str]:
    """``count`` spellings of ``email`` differing only in letter case."""
    letters = [index for index, character in enumerate(email) if character.isalpha()]
    assert 2 ** len(letters) >= count
    variants = []
    for number in range(count):
        characters = list(email)
        for bit, position in enumerate(letters):
            if number >> bit & 1:
                characters[position] = characters[position].upper()
        variants.append("".join(characters))
    return variants


class TestConcurrentRegistration:
    async def test_one_of_twenty_simultaneous_registrations_wins(
        self, gql: GraphQLClient, db_session: AsyncSession
    ) -> None:
        variants = case_variants("race@example.com", 20)
        assert len(set(variants)) == 20

        responses = await asyncio.gather(*(register(gql, email) for email in variants))

        codes = [code for response in responses for code in response.error_codes]
        assert "INTERNAL_SERVER_ERROR" not in codes, [r.body for r in responses]
        winners = [response for response in responses if not response.errors]
        assert len(winners) == 1, [r.body for r in responses]
        assert winners[0].data["register"]["email"] == "race@example.com"
        assert codes == ["CONFLICT"] * 19
        for response in responses:
            if response.errors:
                assert (
                    response.single_error("CONFLICT")["extensions"]["reason"]
                    == ErrorReason.EMAIL_TAKEN
                )

        stored = await db_session.scalar(
            select(func.count())
            .select_from(User)
            .where(func.lower(User.email) == "race@example.com")
        )
        assert stored == 1


class TestInternalErrors:
    async def test_an_unexpected_exception_is_masked(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        test_user: User,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        async def broken_get_user(**_: Any) -> User:
            raise RuntimeError("secret detail")

        # Patched where the resolver looks it up, so only this request path breaks.
        monkeypatch.setattr(f"{users_resolvers.__name__}.users_service.get_user", broken_get_user)

        with captured_logs(caplog, "gql_app.errors"):
            response = await gql(USER, {"id": str(test_user.id)}, token=superuser_token)

        error = response.single_error("INTERNAL_SERVER_ERROR")
        assert error["message"] == "Internal server error"
        assert error["path"] == ["user"]
        request_id = error["extensions"]["requestId"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
        assert response.data is None
        assert "secret detail" not in response.text
        assert "Traceback" not in response.text
        assert "RuntimeError" not in response.text
        # The server keeps what the client may not see, under the same request id.
        assert request_id in caplog.text
        assert "secret detail" in caplog.text


class TestDatabaseConstraints:
    INSERT = text(
        "INSERT INTO users (id, email, password_hash, is_active, is_superuser, is_verified, "
        "created_at, updated_at) "
        "VALUES (:id, :email, 'not-a-hash', true, false, false, now(), now())"
    )

    async def test_an_uppercase_email_violates_the_check_constraint(
        self, db_session: AsyncSession
    ) -> None:
        with pytest.raises(IntegrityError) as raised:
            await db_session.execute(
                self.INSERT, {"id": uuid.uuid4(), "email": "Upper@Example.com"}
            )
        await db_session.rollback()

        assert raised.value.orig is not None
        assert getattr(raised.value.orig, "sqlstate", None) == "23514"  # check_violation
        assert "ck_users_email_lowercase" in str(raised.value)

    async def test_the_same_lowercase_email_violates_the_unique_constraint(
        self, db_session: AsyncSession, test_user: User
    ) -> None:
        with pytest.raises(IntegrityError) as raised:
            await db_session.execute(self.INSERT, {"id": uuid.uuid4(), "email": test_user.email})
        await db_session.rollback()

        assert getattr(raised.value.orig, "sqlstate", None) == "23505"  # unique_violation
        assert "uq_users_email" in str(raised.value)

    async def test_sessions_go_with_their_user(
        self, db_session: AsyncSession, test_user: User, user_token: str
    ) -> None:
        await db_session.execute(text("DELETE FROM users WHERE id = :id"), {"id": test_user.id})
        await db_session.commit()

        remaining = await db_session.scalar(select(func.count()).select_from(AuthSession))
        remaining_refresh_tokens = await db_session.scalar(
            select(func.count()).select_from(RefreshToken)
        )

        assert remaining == 0
        assert remaining_refresh_tokens == 0


class TestInputsPostgresIsStricterAbout:
    """Client input that SQLite stores or compares happily but PostgreSQL refuses."""

    async def test_a_long_user_agent_does_not_break_login(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        response = await gql(
            LOGIN,
            {"input": {"email": test_user.email, "password": USER_PASSWORD}},
            headers={"User-Agent": "Mozilla/5.0 " + "x" * 600},
        )

        assert response.errors == [], response.body
        stored = await db_session.scalar(select(AuthSession.user_agent))
        assert stored is not None
        assert len(stored) <= 512

    async def test_a_nul_character_in_search_is_not_a_server_error(
        self, gql: GraphQLClient, superuser_token: str
    ) -> None:
        response = await gql(USERS, {"filter": {"search": "a\x00b"}}, token=superuser_token)

        assert response.error_fields() == ["search"]
