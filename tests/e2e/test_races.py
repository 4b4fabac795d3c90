"""Changes that race on PostgreSQL: one winner, no branch, no connection held while waiting.

Each test fires its requests at once against the real application; PostgreSQL's row locks
decide who goes first, as they would between workers.
"""

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage

import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.main import create_app
from gql_app.models import RefreshToken, User
from gql_app.security import passwords
from tests.factories import USER_PASSWORD
from tests.graphql import LOGIN, GraphQLClient, Tokens, login_tokens
from tests.operations import CHANGE_PASSWORD, ME, REFRESH_TOKEN, REQUEST_EMAIL_VERIFICATION

pytestmark = pytest.mark.e2e

RACERS = 20


def new_password(index: int) -> str:
    return f"violet tangerine submarine {index:02d}"


@pytest_asyncio.fixture
async def patient_gql(settings: Settings, app: FastAPI) -> AsyncIterator[GraphQLClient]:
    """A client of the application with a long request deadline, on the emptied database.

    Twenty changes make forty password hashes, one after another on a hashing thread; with
    coverage tracing and the rest of the suite beside them, the last can wait past the
    production deadline (10 s), which is not what these tests are about.
    """
    application = create_app(settings.model_copy(update={"request_timeout_seconds": 120}))
    async with (
        application.router.lifespan_context(application),
        AsyncClient(transport=ASGITransport(app=application), base_url="http://test") as http,
    ):
        yield GraphQLClient(http)


@pytest.mark.slow
class TestConcurrentPasswordChanges:
    async def test_the_first_change_wins_and_keeps_its_session(
        self, patient_gql: GraphQLClient, test_user: User
    ) -> None:
        gql = patient_gql
        sessions = [
            await login_tokens(gql, email=test_user.email, password=USER_PASSWORD)
            for _ in range(RACERS)
        ]

        answers = await asyncio.gather(
            *(
                gql(
                    CHANGE_PASSWORD,
                    {"input": {"currentPassword": USER_PASSWORD, "newPassword": new_password(i)}},
                    token=tokens.access,
                )
                for i, tokens in enumerate(sessions)
            )
        )

        winners = [i for i, answer in enumerate(answers) if answer.errors == []]
        assert len(winners) == 1, [answer.body for answer in answers]
        winner = winners[0]
        assert answers[winner].data == {"changePassword": True}
        for i, answer in enumerate(answers):
            if i != winner:
                assert answer.error_fields() == ["currentPassword"]
        # Only the winner's password signs in; only the winner's session goes on.
        for i in range(RACERS):
            signed_in = await gql(
                LOGIN, {"input": {"email": test_user.email, "password": new_password(i)}}
            )
            assert (signed_in.errors == []) is (i == winner), signed_in.body
        for i, tokens in enumerate(sessions):
            me = await gql(ME, token=tokens.access)
            assert (me.errors == []) is (i == winner), me.body


class TestConcurrentRefreshes:
    async def test_one_token_presented_twenty_times_at_once_has_one_successor(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        tokens = await login_tokens(gql, email=test_user.email, password=USER_PASSWORD)

        answers = await asyncio.gather(
            *(gql(REFRESH_TOKEN, {"refreshToken": tokens.refresh}) for _ in range(RACERS))
        )

        assert [answer.errors for answer in answers] == [[]] * RACERS
        successors = {answer.data["refreshToken"]["refreshToken"] for answer in answers}
        assert len(successors) == 1
        access_tokens = {answer.data["refreshToken"]["accessToken"] for answer in answers}
        assert len(access_tokens) == RACERS
        stored = await db_session.scalar(select(func.count()).select_from(RefreshToken))
        assert stored == 2  # the one presented and its one successor
        # The chain goes on from the successor, as from any other token.
        (successor,) = successors
        onward = await gql(REFRESH_TOKEN, {"refreshToken": successor})
        assert onward.errors == [], onward.body
        assert (await gql(ME, token=onward.data["refreshToken"]["accessToken"])).errors == []


class HeldPasswordChecks:
    """Password checks that wait, in their hashing thread, until the test lets them go."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def hold(self, monkeypatch: pytest.MonkeyPatch) -> None:
        check = passwords._verify_and_update

        def held(password: str, hashed: str) -> passwords.VerifyResult:
            self.started.set()
            self.release.wait(timeout=30)
            return check(password, hashed)

        monkeypatch.setattr(passwords, "_verify_and_update", held)


@pytest.fixture
def held_checks() -> Iterator[HeldPasswordChecks]:
    held = HeldPasswordChecks()
    yield held
    held.release.set()


@pytest_asyncio.fixture
async def one_connection_app(settings: Settings, app: FastAPI) -> AsyncIterator[FastAPI]:
    """The application with a pool of one connection, on the e2e database ``app`` emptied."""
    application = create_app(
        settings.model_copy(
            update={
                "database_pool_size": 1,
                "database_max_overflow": 0,
                "database_pool_timeout_seconds": 1.0,
            }
        )
    )
    async with application.router.lifespan_context(application):
        yield application


class HeldMail:
    """A mail server that takes the message only when the test lets it."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        self.started.set()
        await self.release.wait()
        self.sent.append(message)


class TestNoConnectionHeldWhileWaiting:
    @pytest.mark.parametrize("operation", ["login", "changePassword"])
    async def test_a_request_waiting_for_its_password_check_leaves_the_pool_to_others(
        self,
        one_connection_app: FastAPI,
        test_user: User,
        held_checks: HeldPasswordChecks,
        monkeypatch: pytest.MonkeyPatch,
        operation: str,
    ) -> None:
        transport = ASGITransport(app=one_connection_app)
        async with AsyncClient(transport=transport, base_url="http://test") as http:
            gql = GraphQLClient(http)
            tokens: Tokens = await login_tokens(gql, email=test_user.email, password=USER_PASSWORD)
            held_checks.hold(monkeypatch)
            if operation == "login":
                waiting = asyncio.ensure_future(
                    gql(LOGIN, {"input": {"email": test_user.email, "password": USER_PASSWORD}})
                )
            else:
                change = {"currentPassword": USER_PASSWORD, "newPassword": new_password(1)}
                waiting = asyncio.ensure_future(
                    gql(CHANGE_PASSWORD, {"input": change}, token=tokens.access)
                )
            assert await asyncio.to_thread(held_checks.started.wait, 30)

            # The only connection is free: another request is served meanwhile.
            me = await gql(ME, token=tokens.access)
            held_checks.release.set()
            finished = await waiting

        assert me.errors == [], me.body
        assert me.data["me"]["email"] == test_user.email
        assert finished.errors == [], finished.body

    async def test_a_request_waiting_for_the_mail_server_leaves_the_pool_to_others(
        self, one_connection_app: FastAPI, test_user: User
    ) -> None:
        mail = HeldMail()
        one_connection_app.state.email_service.backend = mail
        transport = ASGITransport(app=one_connection_app)
        async with AsyncClient(transport=transport, base_url="http://test") as http:
            gql = GraphQLClient(http)
            tokens = await login_tokens(gql, email=test_user.email, password=USER_PASSWORD)
            waiting = asyncio.ensure_future(gql(REQUEST_EMAIL_VERIFICATION, token=tokens.access))
            await asyncio.wait_for(mail.started.wait(), 30)

            me = await gql(ME, token=tokens.access)
            mail.release.set()
            finished = await waiting

        assert me.errors == [], me.body
        assert finished.data == {"requestEmailVerification": True}, finished.body
        assert [message["To"] for message in mail.sent] == [test_user.email]
