"""Self-service account changes (services/accounts.py): profile, password, reset, verification.

Each service call that stands for a request gets a session of its own, as a request does;
jobs run through the recording scheduler, each with a fresh session too.
"""

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
import pytest_asyncio
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.db import SessionFactory
from gql_app.email.service import RESET_PATH, VERIFY_PATH, EmailService
from gql_app.error_reasons import ErrorReason
from gql_app.errors import (
    MESSAGES,
    ConflictError,
    EmailDeliveryError,
    InputValidationError,
)
from gql_app.models import ActionToken, ActionTokenPurpose, User
from gql_app.security import tokens
from gql_app.security.passwords import VerifyResult, password_hasher, verify_password
from gql_app.services import accounts as accounts_service
from gql_app.services import email_verification as email_verification_service
from gql_app.services.accounts import (
    PasswordChange,
    PasswordReset,
    ProfileChanges,
)
from gql_app.services.action_tokens import INVALID_ACTION_TOKEN
from gql_app.services.jobs import JobContext, JobScheduler
from gql_app.services.security_notices import deliver_email_change_notice
from gql_app.services.viewer import Viewer
from tests.auth_factories import create_action_token, create_auth_session
from tests.conftest import SUITE_SETTINGS
from tests.factories import STRONG_PASSWORD, USER_PASSWORD, create_user
from tests.fixtures.database import count_stored_rows, load_user, revoked
from tests.fixtures.email import FailingEmailBackend
from tests.fixtures.errors import field_names
from tests.mail import action_token
from tests.services.support import RecordingScheduler, viewer_for

NOW = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)
NEW_PASSWORD = "a brand new passphrase, 2030"
RESET = ActionTokenPurpose.PASSWORD_RESET
VERIFY = ActionTokenPurpose.EMAIL_VERIFICATION

# Mails a password reset link to the user; returns the link's token.
MailReset = Callable[[User], Awaitable[str]]


async def password_is(session_factory: SessionFactory, user_id: uuid.UUID, password: str) -> bool:
    user = await load_user(session_factory, user_id)
    return (await verify_password(password, user.password_hash)).valid


async def update_me(
    session_factory: SessionFactory, user: User, changes: ProfileChanges, jobs: JobScheduler
) -> User:
    """``user`` edits their profile in a request of their own; the account it returns."""
    async with session_factory() as session:
        viewer = await viewer_for(session, user)
        return await accounts_service.update_me(
            session=session, settings=SUITE_SETTINGS, viewer=viewer, changes=changes, jobs=jobs
        )


async def request_email_verification(
    session_factory: SessionFactory, user: User, *, settings: Settings, email: EmailService
) -> None:
    """``user`` asks for a confirmation link in a request of their own."""
    async with session_factory() as session:
        viewer = await viewer_for(session, user)
        await email_verification_service.request_email_verification(
            session=session, settings=settings, email=email, viewer=viewer
        )


async def verify_email(session_factory: SessionFactory, token: str) -> User:
    """A request that follows a confirmation link."""
    async with session_factory() as session:
        return await email_verification_service.verify_email(session=session, token=token)


class TestUpdateMe:
    async def test_sets_the_full_name_collapsing_its_whitespace(
        self, session_factory: SessionFactory, test_user: User, jobs: RecordingScheduler
    ) -> None:
        updated = await update_me(
            session_factory, test_user, ProfileChanges(full_name="  Grace \t Hopper "), jobs
        )

        assert updated.full_name == "Grace Hopper"
        assert (await load_user(session_factory, test_user.id)).full_name == "Grace Hopper"
        assert jobs.scheduled == []

    async def test_an_empty_full_name_clears_it(
        self, session_factory: SessionFactory, db_session: AsyncSession, jobs: RecordingScheduler
    ) -> None:
        user = await create_user(db_session, full_name="Old Name")
        await update_me(session_factory, user, ProfileChanges(full_name=""), jobs)

        assert (await load_user(session_factory, user.id)).full_name is None

    async def test_no_changes_leave_the_account_as_it_is(
        self, session_factory: SessionFactory, db_session: AsyncSession, jobs: RecordingScheduler
    ) -> None:
        user = await create_user(db_session, full_name="Kept Name", is_verified=True)
        await update_me(session_factory, user, ProfileChanges(), jobs)

        stored = await load_user(session_factory, user.id)
        assert (stored.email, stored.full_name, stored.is_verified) == (
            user.email,
            "Kept Name",
            True,
        )
        assert jobs.scheduled == []

    async def test_a_new_email_is_normalised_unverified_and_a_verification_is_scheduled(
        self, session_factory: SessionFactory, db_session: AsyncSession, jobs: RecordingScheduler
    ) -> None:
        user = await create_user(db_session, is_verified=True)
        user_email = user.email
        updated = await update_me(
            session_factory, user, ProfileChanges(email="  Moved.Here@Example.ORG "), jobs
        )

        assert (updated.email, updated.is_verified) == ("moved.here@example.org", False)
        stored = await load_user(session_factory, user.id)
        assert (stored.email, stored.is_verified) == ("moved.here@example.org", False)
        verification, notice = jobs.scheduled
        assert (verification.job, verification.kwargs) == (
            email_verification_service.deliver_email_verification,
            {"user_id": user.id},
        )
        # The address the account left is told where it went.
        assert notice.job is deliver_email_change_notice
        assert (notice.kwargs["previous_email"], notice.kwargs["new_email"]) == (
            user_email,
            "moved.here@example.org",
        )

    async def test_the_scheduled_job_mails_the_new_address_a_link_that_verifies_it(
        self,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        jobs: RecordingScheduler,
        sent_mail: list[EmailMessage],
    ) -> None:
        user = await create_user(db_session, is_verified=True)
        previous = user.email
        await update_me(
            session_factory, user, ProfileChanges(email="new.address@example.com"), jobs
        )
        assert sent_mail == [], "the mail goes out after the response, not during it"

        await jobs.run_all()

        # The link to the new address, and a notice to the old one.
        assert [message["To"] for message in sent_mail] == ["new.address@example.com", previous]
        verified = await verify_email(session_factory, action_token(sent_mail[0], VERIFY_PATH))
        assert (verified.email, verified.is_verified) == ("new.address@example.com", True)

    @pytest.mark.parametrize("spelling", ["same@example.com", "  SAME@Example.com  "])
    async def test_the_same_email_in_any_spelling_changes_nothing(
        self,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        jobs: RecordingScheduler,
        spelling: str,
    ) -> None:
        user = await create_user(db_session, email="same@example.com", is_verified=True)
        await update_me(session_factory, user, ProfileChanges(email=spelling), jobs)

        stored = await load_user(session_factory, user.id)
        assert (stored.email, stored.is_verified) == ("same@example.com", True)
        assert jobs.scheduled == []

    async def test_an_email_taken_in_another_letter_case_conflicts(
        self, session_factory: SessionFactory, db_session: AsyncSession, jobs: RecordingScheduler
    ) -> None:
        await create_user(db_session, email="taken@example.com")
        user = await create_user(db_session, is_verified=True, full_name="Unchanged")
        with pytest.raises(ConflictError) as caught:
            await update_me(
                session_factory,
                user,
                ProfileChanges(email="Taken@EXAMPLE.com", full_name="Changed"),
                jobs,
            )

        assert caught.value.reason is ErrorReason.EMAIL_TAKEN
        stored = await load_user(session_factory, user.id)
        assert (stored.email, stored.is_verified, stored.full_name) == (
            user.email,
            True,
            "Unchanged",
        )
        assert jobs.scheduled == []

    @pytest.mark.parametrize(
        ("changes", "fields"),
        [
            pytest.param(ProfileChanges(email="not-an-email"), ["email"], id="bad-email"),
            pytest.param(ProfileChanges(email="   "), ["email"], id="blank-email"),
            pytest.param(
                ProfileChanges(email=f"{'a' * 320}@example.com"), ["email"], id="long-email"
            ),
            pytest.param(ProfileChanges(full_name="x" * 256), ["full_name"], id="long-name"),
            pytest.param(
                ProfileChanges(full_name="Bell\x07Ringer"), ["full_name"], id="control-character"
            ),
            pytest.param(
                ProfileChanges(full_name="x" * 256, email="nope"),
                ["full_name", "email"],
                id="both",
            ),
        ],
    )
    async def test_bad_input_names_the_fields_and_changes_nothing(
        self,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        jobs: RecordingScheduler,
        changes: ProfileChanges,
        fields: list[str],
    ) -> None:
        user = await create_user(db_session, full_name="Unchanged", is_verified=True)
        with pytest.raises(InputValidationError) as caught:
            await update_me(session_factory, user, changes, jobs)

        assert field_names(caught.value) == fields
        stored = await load_user(session_factory, user.id)
        assert (stored.email, stored.full_name, stored.is_verified) == (
            user.email,
            "Unchanged",
            True,
        )
        assert jobs.scheduled == []


class TestSaveUserOrConflict:
    async def test_an_email_taken_after_the_check_becomes_a_conflict(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        # The check passed, then another request took the address: the write itself fails.
        await create_user(db_session, email="raced@example.com")
        user = await create_user(db_session)
        async with session_factory() as session:
            loaded = await session.get(User, user.id)
            assert loaded is not None
            with pytest.raises(ConflictError, match=MESSAGES[ErrorReason.EMAIL_TAKEN]):
                await accounts_service.save_user_or_conflict(
                    session=session, user=loaded, values={"email": "raced@example.com"}
                )

            # The session was rolled back and serves the next statement.
            assert await session.scalar(select(func.count()).select_from(User)) == 2
        assert (await load_user(session_factory, user.id)).email == user.email


async def change_password(
    session_factory: SessionFactory,
    user: User,
    *,
    new_password: str = NEW_PASSWORD,
    current_password: str = USER_PASSWORD,
) -> Viewer:
    """Change ``user``'s password from a new session of theirs; the viewer that did it."""
    async with session_factory() as session:
        viewer = await viewer_for(session, user)
        await accounts_service.change_password(
            session=session,
            settings=SUITE_SETTINGS,
            viewer=viewer,
            change=PasswordChange(current_password=current_password, new_password=new_password),
        )
    return viewer


async def refused_change(
    session_factory: SessionFactory,
    user: User,
    *,
    new_password: str = NEW_PASSWORD,
    current_password: str = USER_PASSWORD,
) -> InputValidationError:
    with pytest.raises(InputValidationError) as caught:
        await change_password(
            session_factory, user, new_password=new_password, current_password=current_password
        )
    return caught.value


class TestChangePassword:
    async def test_sets_the_new_password_and_signs_out_every_other_session(
        self, session_factory: SessionFactory, db_session: AsyncSession, test_user: User
    ) -> None:
        others = [await create_auth_session(db_session, test_user) for _ in range(2)]
        viewer = await change_password(session_factory, test_user)

        assert await password_is(session_factory, test_user.id, NEW_PASSWORD)
        assert not await password_is(session_factory, test_user.id, USER_PASSWORD)
        assert not await revoked(session_factory, viewer.auth_session.id)
        for other in others:
            assert await revoked(session_factory, other.id)

    async def test_a_change_that_lost_a_race_is_refused_and_ends_nothing(
        self,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        test_user: User,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        other = await create_auth_session(db_session, test_user)
        winning_hash = password_hasher().hash(STRONG_PASSWORD)

        async def checked_while_another_change_lands(password: str, hashed: str) -> VerifyResult:
            result = await verify_password(password, hashed)
            async with session_factory() as winner:
                changed = await winner.get(User, test_user.id)
                assert changed is not None
                changed.password_hash = winning_hash
                await winner.commit()
            return result

        monkeypatch.setattr(accounts_service, "verify_password", checked_while_another_change_lands)

        refused = await refused_change(session_factory, test_user)

        assert field_names(refused) == ["current_password"]
        assert await password_is(session_factory, test_user.id, STRONG_PASSWORD)
        assert not await revoked(session_factory, other.id)

    async def test_other_users_sessions_are_untouched(
        self, session_factory: SessionFactory, db_session: AsyncSession, test_user: User
    ) -> None:
        bystander = await create_auth_session(db_session, await create_user(db_session))
        await change_password(session_factory, test_user)

        assert not await revoked(session_factory, bystander.id)

    async def test_wrong_current_password_is_refused_on_current_password(
        self, session_factory: SessionFactory, db_session: AsyncSession, test_user: User
    ) -> None:
        other = await create_auth_session(db_session, test_user)
        refused = await refused_change(
            session_factory, test_user, current_password="Not" + USER_PASSWORD
        )

        assert field_names(refused) == ["current_password"]
        assert refused.message == "Current password is incorrect"
        assert await password_is(session_factory, test_user.id, USER_PASSWORD)
        assert not await revoked(session_factory, other.id)

    @pytest.mark.parametrize(
        ("new_password", "message"),
        [
            pytest.param("short", "at least 12 characters", id="too-short"),
            pytest.param("p" * 129, "at most 128 characters", id="too-long"),
            pytest.param("password1234", "too common", id="common"),
            pytest.param("testuser@example.com", "same as the email", id="the-email"),
        ],
    )
    async def test_weak_new_password_is_refused_on_new_password(
        self,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        test_user: User,
        new_password: str,
        message: str,
    ) -> None:
        other = await create_auth_session(db_session, test_user)
        refused = await refused_change(session_factory, test_user, new_password=new_password)

        assert field_names(refused) == ["new_password"]
        assert message in refused.message
        assert await password_is(session_factory, test_user.id, USER_PASSWORD)
        assert not await revoked(session_factory, other.id)

    async def test_a_password_built_from_the_users_name_is_refused(
        self, session_factory: SessionFactory, db_session: AsyncSession
    ) -> None:
        user = await create_user(db_session, full_name="Zebulon Quarterfield")
        refused = await refused_change(session_factory, user, new_password="ZebulonQuarterfield")

        assert field_names(refused) == ["new_password"]


class TestRequestPasswordReset:
    @pytest.mark.parametrize("email", ["", "   ", "not-an-email", "a@b@example.com"])
    def test_bad_email_is_refused_and_nothing_is_scheduled(
        self, jobs: RecordingScheduler, email: str
    ) -> None:
        with pytest.raises(InputValidationError) as caught:
            accounts_service.request_password_reset(email=email, jobs=jobs)

        assert field_names(caught.value) == ["email"]
        assert jobs.scheduled == []

    @pytest.mark.parametrize(
        "email", ["testuser@example.com", "nobody@example.com"], ids=["known", "unknown"]
    )
    async def test_any_address_schedules_the_delivery_and_nothing_is_sent_yet(
        self,
        jobs: RecordingScheduler,
        test_user: User,
        sent_mail: list[EmailMessage],
        email: str,
    ) -> None:
        accounts_service.request_password_reset(email=f"  {email.upper()} ", jobs=jobs)

        assert [(entry.job, entry.kwargs) for entry in jobs.scheduled] == [
            (accounts_service.deliver_password_reset, {"email": email})
        ]
        assert sent_mail == []


class TestDeliverPasswordReset:
    async def test_unknown_address_gets_no_mail_and_no_token(
        self,
        jobs: RecordingScheduler,
        session_factory: SessionFactory,
        sent_mail: list[EmailMessage],
        test_user: User,
    ) -> None:
        accounts_service.request_password_reset(email="nobody@example.com", jobs=jobs)

        await jobs.run_all()

        assert sent_mail == []
        assert await count_stored_rows(session_factory, ActionToken) == 0

    async def test_inactive_account_gets_no_mail(
        self,
        jobs: RecordingScheduler,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        sent_mail: list[EmailMessage],
    ) -> None:
        user = await create_user(db_session, is_active=False)
        accounts_service.request_password_reset(email=user.email, jobs=jobs)

        await jobs.run_all()

        assert sent_mail == []
        assert await count_stored_rows(session_factory, ActionToken) == 0

    async def test_known_address_gets_one_mail_whose_link_resets_the_password(
        self,
        jobs: RecordingScheduler,
        session_factory: SessionFactory,
        sent_mail: list[EmailMessage],
        test_user: User,
    ) -> None:
        accounts_service.request_password_reset(email=test_user.email, jobs=jobs)

        await jobs.run_all()

        assert len(sent_mail) == 1
        message = sent_mail[0]
        assert message["To"] == test_user.email
        assert message["Subject"] == "Reset your password"
        async with session_factory() as session:
            await accounts_service.reset_password(
                session=session,
                reset=PasswordReset(
                    token=action_token(message, RESET_PATH), new_password=NEW_PASSWORD
                ),
            )
        assert await password_is(session_factory, test_user.id, NEW_PASSWORD)

    async def test_stores_only_the_digest_of_a_token_that_expires_after_the_setting(
        self,
        settings: Settings,
        session_factory: SessionFactory,
        email_service: EmailService,
        sent_mail: list[EmailMessage],
        test_user: User,
    ) -> None:
        async with session_factory() as session:
            context = JobContext(session=session, settings=settings, email=email_service)
            with freeze_time(NOW):
                await accounts_service.deliver_password_reset(context, email=test_user.email)

        token = action_token(sent_mail[0], RESET_PATH)
        async with session_factory() as other:
            row = (await other.scalars(select(ActionToken))).one()
        assert row.token_hash == tokens.hash_opaque_token(token)
        assert token not in row.token_hash
        assert (row.user_id, row.purpose, row.email) == (test_user.id, RESET, test_user.email)
        assert row.created_at == NOW
        assert row.expires_at == NOW + timedelta(
            seconds=settings.password_reset_token_expire_seconds
        )
        assert row.used_at is None


async def mailed_reset_token(
    *,
    session_factory: SessionFactory,
    settings: Settings,
    email_service: EmailService,
    sent_mail: list[EmailMessage],
    user: User,
) -> str:
    async with session_factory() as session:
        context = JobContext(session=session, settings=settings, email=email_service)
        await accounts_service.deliver_password_reset(context, email=user.email)
    return action_token(sent_mail[-1], RESET_PATH)


async def reset(session_factory: SessionFactory, token: str, password: str = NEW_PASSWORD) -> None:
    async with session_factory() as session:
        await accounts_service.reset_password(
            session=session, reset=PasswordReset(token=token, new_password=password)
        )


class TestResetPassword:
    @pytest_asyncio.fixture
    async def mailed(
        self,
        session_factory: SessionFactory,
        settings: Settings,
        email_service: EmailService,
        sent_mail: list[EmailMessage],
    ) -> MailReset:
        async def mail(user: User) -> str:
            return await mailed_reset_token(
                session_factory=session_factory,
                settings=settings,
                email_service=email_service,
                sent_mail=sent_mail,
                user=user,
            )

        return mail

    async def test_an_account_deactivated_while_the_password_was_hashed_is_not_reset(
        self,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        mailed: MailReset,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        user = await create_user(db_session)
        token = await mailed(user)
        real_hash = accounts_service.hash_password

        async def hashed_while_deactivated(password: str) -> str:
            async with session_factory() as admin:
                target = await admin.get(User, user.id)
                assert target is not None
                target.is_active = False
                await admin.commit()
            return await real_hash(password)

        monkeypatch.setattr(accounts_service, "hash_password", hashed_while_deactivated)

        with pytest.raises(InputValidationError) as caught:
            await reset(session_factory, token)

        assert [problem.field for problem in caught.value.fields] == ["token"]
        assert await password_is(session_factory, user.id, USER_PASSWORD)

    async def test_sets_the_password_verifies_the_email_and_signs_out_everywhere(
        self,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        mailed: MailReset,
    ) -> None:
        user = await create_user(db_session, is_verified=False)
        sessions = [await create_auth_session(db_session, user) for _ in range(2)]
        token = await mailed(user)

        await reset(session_factory, token)

        assert await password_is(session_factory, user.id, NEW_PASSWORD)
        assert not await password_is(session_factory, user.id, USER_PASSWORD)
        assert (await load_user(session_factory, user.id)).is_verified is True
        for auth_session in sessions:
            assert await revoked(session_factory, auth_session.id)

    async def test_a_link_works_once(
        self, session_factory: SessionFactory, test_user: User, mailed: MailReset
    ) -> None:
        token = await mailed(test_user)
        await reset(session_factory, token)

        with pytest.raises(InputValidationError) as caught:
            await reset(session_factory, token, password=STRONG_PASSWORD)

        assert field_names(caught.value) == ["token"]
        assert caught.value.message == INVALID_ACTION_TOKEN
        assert await password_is(session_factory, test_user.id, NEW_PASSWORD)

    @pytest.mark.parametrize(
        ("seconds_before_expiry", "accepted"),
        [
            pytest.param(1, True, id="last-second"),
            pytest.param(0, False, id="at-expiry"),
            pytest.param(-3600, False, id="long-after"),
        ],
    )
    async def test_a_link_expires_after_the_configured_lifetime(
        self,
        session_factory: SessionFactory,
        settings: Settings,
        test_user: User,
        mailed: MailReset,
        *,
        seconds_before_expiry: int,
        accepted: bool,
    ) -> None:
        with freeze_time(NOW):
            token = await mailed(test_user)
        lifetime = settings.password_reset_token_expire_seconds

        with freeze_time(NOW + timedelta(seconds=lifetime - seconds_before_expiry)):
            if accepted:
                await reset(session_factory, token)
            else:
                with pytest.raises(InputValidationError) as caught:
                    await reset(session_factory, token)
                assert field_names(caught.value) == ["token"]

        assert await password_is(session_factory, test_user.id, NEW_PASSWORD) is accepted

    async def test_a_newer_link_spends_the_earlier_ones(
        self, session_factory: SessionFactory, test_user: User, mailed: MailReset
    ) -> None:
        earlier = await mailed(test_user)
        latest = await mailed(test_user)

        with pytest.raises(InputValidationError, match=INVALID_ACTION_TOKEN):
            await reset(session_factory, earlier)
        await reset(session_factory, latest)

        assert await password_is(session_factory, test_user.id, NEW_PASSWORD)

    async def test_a_weak_password_is_refused_on_new_password_and_the_link_still_works(
        self, session_factory: SessionFactory, test_user: User, mailed: MailReset
    ) -> None:
        token = await mailed(test_user)

        with pytest.raises(InputValidationError) as caught:
            await reset(session_factory, token, password="password1234")

        assert field_names(caught.value) == ["new_password"]
        assert await password_is(session_factory, test_user.id, USER_PASSWORD)
        await reset(session_factory, token)
        assert await password_is(session_factory, test_user.id, NEW_PASSWORD)

    async def test_a_link_sent_to_an_address_the_user_has_left_is_invalid(
        self,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        test_user: User,
        mailed: MailReset,
    ) -> None:
        token = await mailed(test_user)
        test_user.email = "moved@example.com"
        await db_session.commit()

        with pytest.raises(InputValidationError) as caught:
            await reset(session_factory, token)

        assert field_names(caught.value) == ["token"]
        assert await password_is(session_factory, test_user.id, USER_PASSWORD)

    async def test_a_deactivated_account_cannot_reset(
        self,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        test_user: User,
        mailed: MailReset,
    ) -> None:
        token = await mailed(test_user)
        test_user.is_active = False
        await db_session.commit()

        with pytest.raises(InputValidationError, match=INVALID_ACTION_TOKEN):
            await reset(session_factory, token)

        assert await password_is(session_factory, test_user.id, USER_PASSWORD)

    async def test_an_unknown_token_is_invalid(
        self, session_factory: SessionFactory, test_user: User
    ) -> None:
        with pytest.raises(InputValidationError) as caught:
            await reset(session_factory, tokens.new_opaque_token())

        assert field_names(caught.value) == ["token"]

    async def test_an_email_verification_token_does_not_reset(
        self, session_factory: SessionFactory, db_session: AsyncSession, test_user: User
    ) -> None:
        token, _ = await create_action_token(db_session, test_user, purpose=VERIFY)

        with pytest.raises(InputValidationError, match=INVALID_ACTION_TOKEN):
            await reset(session_factory, token)

        assert await password_is(session_factory, test_user.id, USER_PASSWORD)


class TestRequestEmailVerification:
    async def test_mails_a_link_at_once_that_verifies_the_address(
        self,
        session_factory: SessionFactory,
        settings: Settings,
        email_service: EmailService,
        sent_mail: list[EmailMessage],
        test_user: User,
    ) -> None:
        await request_email_verification(
            session_factory, test_user, settings=settings, email=email_service
        )

        assert [message["To"] for message in sent_mail] == [test_user.email]
        assert sent_mail[0]["Subject"] == "Confirm your email address"
        user = await verify_email(session_factory, action_token(sent_mail[0], VERIFY_PATH))
        assert user.is_verified is True

    async def test_an_already_verified_address_gets_no_mail(
        self,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        settings: Settings,
        email_service: EmailService,
        sent_mail: list[EmailMessage],
    ) -> None:
        user = await create_user(db_session, is_verified=True)
        await request_email_verification(
            session_factory, user, settings=settings, email=email_service
        )

        assert sent_mail == []
        assert await count_stored_rows(session_factory, ActionToken) == 0

    async def test_a_delivery_failure_is_raised_to_the_caller(
        self, session_factory: SessionFactory, settings: Settings, test_user: User
    ) -> None:
        backend = FailingEmailBackend()
        failing = EmailService(backend=backend, settings=settings)
        with pytest.raises(EmailDeliveryError):
            await request_email_verification(
                session_factory, test_user, settings=settings, email=failing
            )

        assert [message["To"] for message in backend.attempts] == [test_user.email]

    async def test_a_new_request_spends_the_earlier_link(
        self,
        session_factory: SessionFactory,
        settings: Settings,
        email_service: EmailService,
        sent_mail: list[EmailMessage],
        test_user: User,
    ) -> None:
        for _ in range(2):
            await request_email_verification(
                session_factory, test_user, settings=settings, email=email_service
            )
        earlier, latest = (action_token(message, VERIFY_PATH) for message in sent_mail)

        with pytest.raises(InputValidationError, match=INVALID_ACTION_TOKEN):
            await verify_email(session_factory, earlier)
        assert (await verify_email(session_factory, latest)).is_verified


class TestDeliverEmailVerification:
    async def run(
        self,
        session_factory: SessionFactory,
        settings: Settings,
        email_service: EmailService,
        user_id: uuid.UUID,
    ) -> None:
        async with session_factory() as session:
            context = JobContext(session=session, settings=settings, email=email_service)
            await email_verification_service.deliver_email_verification(context, user_id=user_id)

    async def test_mails_the_users_current_address(
        self,
        session_factory: SessionFactory,
        settings: Settings,
        email_service: EmailService,
        sent_mail: list[EmailMessage],
        test_user: User,
    ) -> None:
        with freeze_time(NOW):
            await self.run(session_factory, settings, email_service, test_user.id)

        assert [message["To"] for message in sent_mail] == [test_user.email]
        async with session_factory() as other:
            row = (await other.scalars(select(ActionToken))).one()
        assert (row.purpose, row.email) == (VERIFY, test_user.email)
        assert row.expires_at == NOW + timedelta(
            seconds=settings.email_verification_token_expire_seconds
        )

    async def test_a_user_verified_meanwhile_gets_no_mail(
        self,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        settings: Settings,
        email_service: EmailService,
        sent_mail: list[EmailMessage],
    ) -> None:
        user = await create_user(db_session, is_verified=True)

        await self.run(session_factory, settings, email_service, user.id)

        assert sent_mail == []

    async def test_a_user_deleted_meanwhile_gets_no_mail(
        self,
        session_factory: SessionFactory,
        settings: Settings,
        email_service: EmailService,
        sent_mail: list[EmailMessage],
    ) -> None:
        await self.run(session_factory, settings, email_service, uuid.uuid4())

        assert sent_mail == []
        assert await count_stored_rows(session_factory, ActionToken) == 0


class TestVerifyEmail:
    async def test_marks_the_user_verified_and_spends_the_link(
        self, session_factory: SessionFactory, db_session: AsyncSession, test_user: User
    ) -> None:
        with freeze_time(NOW):
            token, row = await create_action_token(db_session, test_user, purpose=VERIFY)
            user = await verify_email(session_factory, token)

        assert (user.id, user.is_verified) == (test_user.id, True)
        assert (await load_user(session_factory, test_user.id)).is_verified is True
        async with session_factory() as other:
            used_at = await other.scalar(
                select(ActionToken.used_at).where(ActionToken.id == row.id)
            )
        assert used_at == NOW

    async def test_a_used_link_is_invalid(
        self, session_factory: SessionFactory, db_session: AsyncSession, test_user: User
    ) -> None:
        token, _ = await create_action_token(db_session, test_user, purpose=VERIFY)
        await verify_email(session_factory, token)

        with pytest.raises(InputValidationError) as caught:
            await verify_email(session_factory, token)

        assert field_names(caught.value) == ["token"]
        assert caught.value.message == INVALID_ACTION_TOKEN

    async def test_an_expired_link_is_invalid(
        self,
        session_factory: SessionFactory,
        settings: Settings,
        email_service: EmailService,
        sent_mail: list[EmailMessage],
        test_user: User,
    ) -> None:
        with freeze_time(NOW):
            async with session_factory() as session:
                context = JobContext(session=session, settings=settings, email=email_service)
                await email_verification_service.deliver_email_verification(
                    context, user_id=test_user.id
                )
        token = action_token(sent_mail[0], VERIFY_PATH)
        lifetime = timedelta(seconds=settings.email_verification_token_expire_seconds)

        with freeze_time(NOW + lifetime), pytest.raises(InputValidationError) as caught:
            await verify_email(session_factory, token)

        assert field_names(caught.value) == ["token"]
        assert (await load_user(session_factory, test_user.id)).is_verified is False
        with freeze_time(NOW + lifetime - timedelta(seconds=1)):
            assert (await verify_email(session_factory, token)).id

    async def test_a_link_for_an_address_the_user_has_left_is_invalid(
        self, session_factory: SessionFactory, db_session: AsyncSession, test_user: User
    ) -> None:
        token, _ = await create_action_token(
            db_session, test_user, purpose=VERIFY, email="old.address@example.com"
        )

        with pytest.raises(InputValidationError, match=INVALID_ACTION_TOKEN):
            await verify_email(session_factory, token)

        assert (await load_user(session_factory, test_user.id)).is_verified is False

    async def test_a_password_reset_token_does_not_verify(
        self, session_factory: SessionFactory, db_session: AsyncSession, test_user: User
    ) -> None:
        token, _ = await create_action_token(db_session, test_user, purpose=RESET)

        with pytest.raises(InputValidationError, match=INVALID_ACTION_TOKEN):
            await verify_email(session_factory, token)

    async def test_an_unknown_token_is_invalid(
        self, session_factory: SessionFactory, test_user: User
    ) -> None:
        with pytest.raises(InputValidationError) as caught:
            await verify_email(session_factory, "made-up")

        assert field_names(caught.value) == ["token"]
