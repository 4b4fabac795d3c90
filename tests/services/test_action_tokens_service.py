"""Issuing and redeeming emailed single-use tokens, and the rules built on them."""

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.crud import action_tokens as action_tokens_crud
from gql_app.db import SessionFactory
from gql_app.email.service import EmailService
from gql_app.errors import EmailDeliveryError, InputValidationError
from gql_app.models import ActionToken, ActionTokenPurpose, User
from gql_app.models.base import utc_now
from gql_app.security.tokens import hash_opaque_token
from gql_app.services import accounts as accounts_service
from gql_app.services import action_tokens
from gql_app.services import admin as admin_service
from gql_app.services import auth as auth_service
from gql_app.services import email_verification as email_verification_service
from gql_app.services.accounts import PasswordChange
from gql_app.services.admin import AccountChanges, NewAccount
from gql_app.services.auth import Registration
from gql_app.services.jobs import JobContext
from tests.auth_factories import create_action_token
from tests.conftest import SUITE_SETTINGS
from tests.factories import STRONG_PASSWORD, USER_PASSWORD, create_user
from tests.fixtures.email import FailingEmailBackend
from tests.services.support import CollectingScheduler, viewer_for

RESET = ActionTokenPurpose.PASSWORD_RESET
VERIFY = ActionTokenPurpose.EMAIL_VERIFICATION
NEW_PASSWORD = "an entirely new passphrase"


async def unused_tokens(session_factory: SessionFactory, user: User) -> list[ActionToken]:
    async with session_factory() as session:
        rows = await session.scalars(
            select(ActionToken).where(ActionToken.user_id == user.id, ActionToken.used_at.is_(None))
        )
        return list(rows)


class TestRedeem:
    async def test_a_token_read_before_another_request_spent_it_cannot_be_spent_again(
        self, session_factory: SessionFactory, db_session: AsyncSession, test_user: User
    ) -> None:
        token, _ = await create_action_token(db_session, test_user)
        async with session_factory() as first, session_factory() as second:
            # The loser of a race has read the token as unused before the winner spends it.
            stale = await action_tokens_crud.get_by_hash(
                session=second, token_hash=hash_opaque_token(token), purpose=RESET
            )
            assert stale is not None
            await action_tokens.redeem(session=first, token=token, purpose=RESET)
            await first.commit()

            assert (
                await action_tokens_crud.spend(session=second, action_token=stale, now=utc_now())
                is False
            )

    async def test_a_token_of_another_purpose_is_invalid(
        self, session_factory: SessionFactory, db_session: AsyncSession, test_user: User
    ) -> None:
        token, _ = await create_action_token(db_session, test_user, purpose=VERIFY)
        async with session_factory() as session:
            with pytest.raises(InputValidationError) as caught:
                await action_tokens.redeem(session=session, token=token, purpose=RESET)

        assert [problem.field for problem in caught.value.fields] == ["token"]


class TestNewAccountsGetAConfirmationLink:
    async def test_register_schedules_the_link_for_the_new_user(
        self, db_session: AsyncSession
    ) -> None:
        jobs = CollectingScheduler()

        user = await auth_service.register(
            session=db_session,
            data=Registration(email="fresh@example.com", password=STRONG_PASSWORD),
            jobs=jobs,
        )

        assert [(job.job, job.kwargs) for job in jobs.scheduled] == [
            (email_verification_service.deliver_email_verification, {"user_id": user.id})
        ]

    @pytest.mark.parametrize(("is_verified", "expected_jobs"), [(False, 1), (True, 0)])
    async def test_create_user_schedules_it_unless_already_verified(
        self, db_session: AsyncSession, is_verified: bool, expected_jobs: int
    ) -> None:
        jobs = CollectingScheduler()

        await admin_service.create_user(
            session=db_session,
            data=NewAccount(
                email="staff@example.com", password=STRONG_PASSWORD, is_verified=is_verified
            ),
            jobs=jobs,
        )

        assert len(jobs.scheduled) == expected_jobs


class TestPasswordChangesSpendResetLinks:
    async def test_change_password(
        self, session_factory: SessionFactory, db_session: AsyncSession, test_user: User
    ) -> None:
        await create_action_token(db_session, test_user)
        async with session_factory() as session:
            await accounts_service.change_password(
                session=session,
                settings=SUITE_SETTINGS,
                viewer=await viewer_for(session, test_user),
                change=PasswordChange(current_password=USER_PASSWORD, new_password=NEW_PASSWORD),
            )

        assert await unused_tokens(session_factory, test_user) == []

    async def test_a_superuser_setting_the_password(
        self, session_factory: SessionFactory, db_session: AsyncSession, test_user: User
    ) -> None:
        await create_action_token(db_session, test_user)
        async with session_factory() as session:
            await admin_service.update_user(
                session=session,
                user_id=str(test_user.id),
                changes=AccountChanges(password=NEW_PASSWORD),
            )

        assert await unused_tokens(session_factory, test_user) == []

    async def test_verification_links_are_not_spent(
        self, session_factory: SessionFactory, db_session: AsyncSession, test_user: User
    ) -> None:
        await create_action_token(db_session, test_user, purpose=VERIFY)
        async with session_factory() as session:
            await accounts_service.change_password(
                session=session,
                settings=SUITE_SETTINGS,
                viewer=await viewer_for(session, test_user),
                change=PasswordChange(current_password=USER_PASSWORD, new_password=NEW_PASSWORD),
            )

        assert [token.purpose for token in await unused_tokens(session_factory, test_user)] == [
            VERIFY
        ]


class TestAFailedDeliveryKeepsEarlierLinks:
    async def test_password_reset(
        self,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        test_user: User,
        settings: Settings,
    ) -> None:
        earlier, _ = await create_action_token(db_session, test_user)
        failing = EmailService(backend=FailingEmailBackend(), settings=settings)
        async with session_factory() as session:
            with pytest.raises(EmailDeliveryError):
                await accounts_service.deliver_password_reset(
                    JobContext(session=session, settings=settings, email=failing),
                    email=test_user.email,
                )

        [still_usable] = await unused_tokens(session_factory, test_user)
        async with session_factory() as session:
            redeemed = await action_tokens.redeem(session=session, token=earlier, purpose=RESET)
        assert redeemed.id == still_usable.id

    async def test_email_verification(
        self,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        test_user: User,
        settings: Settings,
    ) -> None:
        await create_action_token(db_session, test_user, purpose=VERIFY)
        failing = EmailService(backend=FailingEmailBackend(), settings=settings)
        async with session_factory() as session:
            with pytest.raises(EmailDeliveryError):
                await email_verification_service.request_email_verification(
                    session=session,
                    settings=settings,
                    email=failing,
                    viewer=await viewer_for(session, test_user),
                )

        assert len(await unused_tokens(session_factory, test_user)) == 1


class TestVerifyEmail:
    async def test_a_deactivated_account_cannot_use_its_link(
        self, session_factory: SessionFactory, db_session: AsyncSession
    ) -> None:
        user = await create_user(db_session, is_active=False)
        token, _ = await create_action_token(db_session, user, purpose=VERIFY)
        async with session_factory() as session:
            with pytest.raises(InputValidationError, match=action_tokens.INVALID_ACTION_TOKEN):
                await email_verification_service.verify_email(session=session, token=token)


class TestUpdateUserReportsEveryProblem:
    async def test_bad_email_and_weak_password_together(
        self, db_session: AsyncSession, test_user: User
    ) -> None:
        with pytest.raises(InputValidationError) as caught:
            await admin_service.update_user(
                session=db_session,
                user_id=str(test_user.id),
                changes=AccountChanges(email="not-an-email", password="short"),
            )

        assert sorted(problem.field for problem in caught.value.fields) == ["email", "password"]
