"""Malformed input and failed fields that once reached the server-error path or leaked state."""

import base64
import json
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.api.context import Context
from gql_app.availability import Availability
from gql_app.config import Settings
from gql_app.email.backends import MemoryBackend
from gql_app.email.service import EmailService
from gql_app.models import User
from gql_app.security.rate_limit import RateLimiter
from tests.factories import STRONG_PASSWORD, create_user, hashed
from tests.graphql import GraphQLClient, GraphQLResponse

LONE_SURROGATE = "\ud800"
REGISTER = "mutation ($i: RegisterInput!) { register(input: $i) { id } }"


async def post_escaped(
    client: AsyncClient, query: str, variables: dict[str, Any]
) -> GraphQLResponse:
    """Post JSON with non-ASCII escaped, as a client may send a lone surrogate."""
    response = await client.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    return GraphQLResponse(status_code=200, body=response.json(), text=response.text)


@pytest.fixture
def email_service(settings: Settings) -> EmailService:
    return EmailService(backend=MemoryBackend(), settings=settings)


def cursor(payload: object) -> str:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


class TestTextThatIsNotUnicode:
    async def test_a_password_with_a_lone_surrogate_is_bad_user_input(
        self, client: AsyncClient
    ) -> None:
        response = await post_escaped(
            client,
            REGISTER,
            {"i": {"email": "odd@example.com", "password": LONE_SURROGATE + STRONG_PASSWORD}},
        )

        assert response.error_fields() == ["password"]

    @pytest.mark.parametrize(
        "document",
        [
            "mutation ($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
            "mutation ($t: String!) { logout(refreshToken: $t) }",
        ],
    )
    async def test_a_token_with_a_lone_surrogate_is_just_unknown(
        self, client: AsyncClient, document: str
    ) -> None:
        response = await post_escaped(client, document, {"t": LONE_SURROGATE})

        response.single_error("UNAUTHENTICATED")

    async def test_an_emailed_token_with_a_lone_surrogate_is_just_invalid(
        self, client: AsyncClient
    ) -> None:
        response = await post_escaped(
            client,
            "mutation ($t: String!) { verifyEmail(token: $t) { id } }",
            {"t": LONE_SURROGATE},
        )

        assert response.error_fields() == ["token"]


class TestCraftedCursors:
    @pytest.mark.parametrize(
        "after",
        [
            cursor({"c": "0001-01-01T00:00:00+05:00", "i": "00000000-0000-0000-0000-000000000000"}),
            cursor("[" * 3000),
        ],
        ids=["before-year-one-in-utc", "deeply-nested"],
    )
    async def test_are_bad_user_input(
        self, gql: GraphQLClient, superuser_token: str, after: str
    ) -> None:
        response = await gql(
            "query ($a: String) { users(after: $a) { totalCount } }",
            {"a": after},
            token=superuser_token,
        )

        assert response.error_fields() == ["after"]


class TestAFailedFieldLeavesNothingBehind:
    async def test_its_writes_are_rolled_back_before_another_field_can_commit_them(
        self, db_session: AsyncSession, settings: Settings, email_service: EmailService
    ) -> None:
        # Every field of a request shares one session; a field that raised must not leave
        # pending writes (a spent token, a half-made change) for the next field's commit.
        context = Context(
            session=db_session,
            session_factory=lambda: db_session,  # type: ignore[arg-type,return-value]
            settings=settings,
            email=email_service,
            rate_limiter=RateLimiter.from_settings(settings),
            availability=Availability(),
        )

        async def failing_field() -> None:
            async with context.db() as session:
                session.add(User(email="half@example.com", password_hash="x"))
                await session.flush()
                raise RuntimeError("the field failed")

        with pytest.raises(RuntimeError):
            await failing_field()
        async with context.db() as session:
            await session.commit()

        assert await db_session.scalar(select(User).where(User.email == "half@example.com")) is None


async def test_database_errors_do_not_carry_the_values_written(db_session: AsyncSession) -> None:
    await create_user(db_session, email="twice@example.com")
    secret_hash = hashed("another password entirely")
    db_session.add(User(email="twice@example.com", password_hash=secret_hash))

    with pytest.raises(IntegrityError) as caught:
        await db_session.flush()

    assert secret_hash not in str(caught.value)
