import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from freezegun import freeze_time
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.api.error_codes import ErrorCode
from gql_app.api.errors import domain_error_code
from gql_app.config import Settings
from gql_app.crud import users as users_crud
from gql_app.db import SessionFactory
from gql_app.error_reasons import ErrorReason
from gql_app.errors import (
    AuthenticationError,
    ConflictError,
    InputValidationError,
    InvalidCredentialsError,
    PermissionDeniedError,
)
from gql_app.models import AuthSession, RefreshToken, User
from gql_app.security.passwords import (
    ARGON2_LANES,
    ARGON2_MEMORY_KIB,
    ARGON2_TIME_COST,
    VerifyResult,
    password_hasher,
    verify_password,
)
from gql_app.services import auth as auth_service
from gql_app.services.auth import Credentials, IssuedTokens, Registration
from gql_app.services.client_info import ClientInfo
from gql_app.services.key_ring import KeyRing
from gql_app.services.passkey_challenges import DatabaseChallengeStore
from tests.auth_factories import signed_access_token, verified_claims
from tests.factories import STRONG_PASSWORD, USER_PASSWORD, bcrypt_hashed, create_user
from tests.fixtures.database import count_rows
from tests.fixtures.errors import field_names
from tests.services.support import CollectingScheduler, RecordingScheduler

NOW = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)
NO_CLIENT = ClientInfo()


async def login(
    session: AsyncSession, settings: Settings, email: str, password: str = USER_PASSWORD
) -> IssuedTokens:
    return await auth_service.login(
        challenges=DatabaseChallengeStore(),
        session=session,
        settings=settings,
        keys=KeyRing(settings),
        credentials=Credentials(email=email, password=password),
        client=NO_CLIENT,
    )


class TestRegister:
    async def test_creates_an_ordinary_account_with_a_normalised_email(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await auth_service.register(
            jobs=CollectingScheduler(),
            session=db_session,
            data=Registration(
                email="  New.Person@Example.COM ",
                password=STRONG_PASSWORD,
                full_name="  Ada   Lovelace ",
            ),
        )

        async with session_factory() as other:
            stored = await other.get(User, user.id)
        assert stored is not None
        assert stored.email == "new.person@example.com"
        assert stored.full_name == "Ada Lovelace"
        assert (stored.is_active, stored.is_superuser, stored.is_verified) == (True, False, False)

    async def test_stores_an_argon2id_hash_of_the_password_not_the_password(
        self, db_session: AsyncSession
    ) -> None:
        user = await auth_service.register(
            jobs=CollectingScheduler(),
            session=db_session,
            data=Registration(email="hash@example.com", password=STRONG_PASSWORD),
        )

        assert user.password_hash.startswith("$argon2id$")
        assert STRONG_PASSWORD not in user.password_hash
        assert (await verify_password(STRONG_PASSWORD, user.password_hash)).valid is True

    async def test_commits_the_new_account(self, db_session: AsyncSession) -> None:
        await auth_service.register(
            jobs=CollectingScheduler(),
            session=db_session,
            data=Registration(email="kept@example.com", password=STRONG_PASSWORD),
        )

        await db_session.rollback()

        assert (
            await users_crud.get_by_email(session=db_session, email="kept@example.com") is not None
        )

    @pytest.mark.parametrize("full_name", [None, "", "   \t "])
    async def test_missing_or_blank_full_name_is_stored_as_none(
        self, db_session: AsyncSession, full_name: str | None
    ) -> None:
        user = await auth_service.register(
            jobs=CollectingScheduler(),
            session=db_session,
            data=Registration(
                email="noname@example.com", password=STRONG_PASSWORD, full_name=full_name
            ),
        )

        assert user.full_name is None

    @pytest.mark.parametrize(
        "email", ["taken@example.com", "Taken@Example.com", "TAKEN@EXAMPLE.COM"]
    )
    async def test_email_taken_in_any_letter_case_is_a_conflict(
        self, db_session: AsyncSession, email: str
    ) -> None:
        await create_user(db_session, email="taken@example.com")

        with pytest.raises(ConflictError) as caught:
            await auth_service.register(
                jobs=CollectingScheduler(),
                session=db_session,
                data=Registration(email=email, password=STRONG_PASSWORD),
            )

        assert caught.value.message == "An account with this email already exists"
        assert domain_error_code(caught.value) is ErrorCode.CONFLICT
        assert await count_rows(db_session, User) == 1

    @pytest.mark.parametrize(
        ("registration", "field", "message"),
        [
            pytest.param(
                Registration(email="not-an-email", password=STRONG_PASSWORD),
                "email",
                "Invalid email address",
                id="malformed-email",
            ),
            pytest.param(
                Registration(email="   ", password=STRONG_PASSWORD),
                "email",
                "Email is required",
                id="blank-email",
            ),
            pytest.param(
                Registration(email="short@example.com", password="vR7#kq9!Lm2"),
                "password",
                "at least 12 characters",
                id="password-11-chars",
            ),
            pytest.param(
                Registration(email="long@example.com", password="a1-" * 43),
                "password",
                "at most 128 characters",
                id="password-129-chars",
            ),
            pytest.param(
                Registration(email="common@example.com", password="password1234"),
                "password",
                "too common",
                id="common-password",
            ),
            pytest.param(
                Registration(
                    email="zygmunt.kowalczyk@example.com", password="zygmunt.kowalczyk@example.com"
                ),
                "password",
                "same as the email",
                id="password-is-the-email",
            ),
            pytest.param(
                Registration(
                    email="bq@example.com",
                    password="bartholomewquizzlewick",
                    full_name="Bartholomew Quizzlewick",
                ),
                "password",
                "from the account's email or name",
                id="password-is-the-full-name",
            ),
            pytest.param(
                Registration(
                    email="name@example.com", password=STRONG_PASSWORD, full_name="x" * 256
                ),
                "full_name",
                "at most 255 characters",
                id="full-name-256-chars",
            ),
            pytest.param(
                Registration(
                    email="ctl@example.com", password=STRONG_PASSWORD, full_name="Bell\x07"
                ),
                "full_name",
                "invalid characters",
                id="full-name-control-character",
            ),
        ],
    )
    async def test_invalid_input_names_the_offending_field(
        self, db_session: AsyncSession, registration: Registration, field: str, message: str
    ) -> None:
        with pytest.raises(InputValidationError) as caught:
            await auth_service.register(
                session=db_session, data=registration, jobs=CollectingScheduler()
            )

        assert field_names(caught.value) == [field]
        assert message in caught.value.fields[0].message
        assert await count_rows(db_session, User) == 0

    async def test_reports_every_problem_at_once(self, db_session: AsyncSession) -> None:
        with pytest.raises(InputValidationError) as caught:
            await auth_service.register(
                jobs=CollectingScheduler(),
                session=db_session,
                data=Registration(email="nope", password="short", full_name="y" * 300),
            )

        assert field_names(caught.value) == ["email", "full_name", "password"]
        assert caught.value.message == caught.value.fields[0].message
        assert await count_rows(db_session, User) == 0

    async def test_full_name_at_the_limit_is_accepted(self, db_session: AsyncSession) -> None:
        user = await auth_service.register(
            jobs=CollectingScheduler(),
            session=db_session,
            data=Registration(
                email="limit@example.com", password=STRONG_PASSWORD, full_name="z" * 255
            ),
        )

        assert user.full_name == "z" * 255


class TestCreateUserOrConflict:
    async def test_insert_losing_a_race_becomes_a_conflict_and_leaves_the_session_usable(
        self, db_session: AsyncSession
    ) -> None:
        await create_user(db_session, email="raced@example.com")

        with pytest.raises(ConflictError):
            await auth_service.create_user_or_conflict(
                session=db_session,
                data=users_crud.NewUser(email="raced@example.com", password_hash="h"),
            )

        assert await count_rows(db_session, User) == 1


class TestLogin:
    async def test_issues_tokens_for_the_user(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        issued = await login(db_session, settings, test_user.email)

        claims = await verified_claims(db_session, settings, issued.access_token)
        assert claims.user_id == test_user.id
        assert issued.user.id == test_user.id
        assert issued.expires_in == settings.access_token_expire_seconds
        assert len(issued.refresh_token) >= 43

    async def test_starts_a_session_that_stores_only_the_refresh_token_digest(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        test_user: User,
    ) -> None:
        with freeze_time(NOW):
            issued = await auth_service.login(
                challenges=DatabaseChallengeStore(),
                session=db_session,
                settings=settings,
                keys=KeyRing(settings),
                credentials=Credentials(email=test_user.email, password=USER_PASSWORD),
                client=ClientInfo(user_agent="pytest/1", ip_address="203.0.113.9"),
            )
            claims = await verified_claims(db_session, settings, issued.access_token)

        async with session_factory() as other:
            stored = (await other.scalars(select(AuthSession))).all()
            refresh_rows = (await other.scalars(select(RefreshToken))).all()
        assert len(stored) == 1
        auth_session = stored[0]
        assert auth_session.id == claims.session_id
        assert auth_session.user_id == test_user.id
        assert len(refresh_rows) == 1
        refresh_row = refresh_rows[0]
        assert refresh_row.session_id == auth_session.id
        assert refresh_row.token_hash == hashlib.sha256(issued.refresh_token.encode()).hexdigest()
        assert (refresh_row.created_at, refresh_row.rotated_at) == (NOW, None)
        assert issued.refresh_token not in (
            refresh_row.token_hash,
            auth_session.user_agent,
            auth_session.ip_address,
        )
        assert auth_session.created_at == NOW
        assert auth_session.last_used_at == NOW
        assert auth_session.expires_at == NOW + timedelta(
            seconds=settings.refresh_token_expire_seconds
        )
        assert (auth_session.user_agent, auth_session.ip_address) == ("pytest/1", "203.0.113.9")

    async def test_the_session_is_created_when_it_is_first_used_not_after(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        # Every reading of the clock is a second later than the one before, so a timestamp
        # taken at flush time instead of with the login's own "now" shows.
        with freeze_time(NOW, auto_tick_seconds=1, real_asyncio=True):
            issued = await login(db_session, settings, test_user.email)
            claims = await verified_claims(db_session, settings, issued.access_token)

        auth_session = await db_session.get_one(AuthSession, claims.session_id)
        assert auth_session.last_used_at is not None
        assert auth_session.created_at == auth_session.last_used_at > NOW

    async def test_oversized_client_details_are_cut_to_fit_rather_than_failing_the_login(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        test_user: User,
    ) -> None:
        await auth_service.login(
            challenges=DatabaseChallengeStore(),
            session=db_session,
            settings=settings,
            keys=KeyRing(settings),
            credentials=Credentials(email=test_user.email, password=USER_PASSWORD),
            client=ClientInfo(user_agent="A" * 600, ip_address="f" * 60),
        )

        async with session_factory() as other:
            stored = (await other.scalars(select(AuthSession))).one()
        assert stored.user_agent == "A" * 512
        assert stored.ip_address == "f" * 45

    async def test_email_is_matched_in_any_case_and_spacing(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        issued = await login(db_session, settings, "  TestUser@EXAMPLE.com ")

        assert issued.user.id == test_user.id

    async def test_each_login_starts_a_separate_session(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        first = await login(db_session, settings, test_user.email)
        second = await login(db_session, settings, test_user.email)

        assert first.refresh_token != second.refresh_token
        assert (await verified_claims(db_session, settings, first.access_token)).session_id != (
            await verified_claims(db_session, settings, second.access_token)
        ).session_id
        assert await count_rows(db_session, AuthSession) == 2

    async def test_wrong_password_is_rejected_without_a_session(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        with pytest.raises(InvalidCredentialsError) as caught:
            await login(db_session, settings, test_user.email, password="WrongPassword123!")

        assert caught.value.message == "Invalid credentials"
        assert await count_rows(db_session, AuthSession) == 0

    async def test_unknown_email_gets_the_same_answer_as_a_wrong_password(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        with pytest.raises(InvalidCredentialsError) as caught:
            await login(db_session, settings, "nobody@example.com")

        assert caught.value.message == "Invalid credentials"
        assert await count_rows(db_session, AuthSession) == 0

    async def test_inactive_account_is_refused_after_a_correct_password(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        user = await create_user(db_session, is_active=False)

        with pytest.raises(PermissionDeniedError) as caught:
            await login(db_session, settings, user.email)

        assert caught.value.message == "This account is disabled"
        assert await count_rows(db_session, AuthSession) == 0

    async def test_unverified_account_is_refused_when_verification_is_required(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        strict = settings.model_copy(update={"require_verified_email": True})
        user = await create_user(db_session, is_verified=False)

        with pytest.raises(PermissionDeniedError) as caught:
            await login(db_session, strict, user.email)

        assert caught.value.reason is ErrorReason.EMAIL_NOT_VERIFIED
        assert await count_rows(db_session, AuthSession) == 0

    async def test_verified_account_signs_in_when_verification_is_required(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        strict = settings.model_copy(update={"require_verified_email": True})
        user = await create_user(db_session, is_verified=True)

        issued = await login(db_session, strict, user.email)

        assert issued.user.id == user.id

    async def test_unverified_account_signs_in_by_default(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        assert settings.require_verified_email is False
        user = await create_user(db_session, is_verified=False)

        issued = await login(db_session, settings, user.email)

        assert issued.user.id == user.id

    async def test_unverified_account_with_a_wrong_password_gets_invalid_credentials(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        strict = settings.model_copy(update={"require_verified_email": True})
        user = await create_user(db_session, is_verified=False)

        with pytest.raises(InvalidCredentialsError):
            await login(db_session, strict, user.email, password="WrongPassword123!")

    async def test_inactive_account_with_a_wrong_password_does_not_reveal_it_is_disabled(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        user = await create_user(db_session, is_active=False)

        with pytest.raises(InvalidCredentialsError):
            await login(db_session, settings, user.email, password="WrongPassword123!")

    @pytest.mark.usefixtures("standard_password_hashing")
    async def test_legacy_bcrypt_hash_is_accepted_and_upgraded_to_argon2id(
        self, db_session: AsyncSession, session_factory: SessionFactory, settings: Settings
    ) -> None:
        user = await create_user(db_session, password_hash_value=bcrypt_hashed(USER_PASSWORD))

        issued = await login(db_session, settings, user.email)

        async with session_factory() as other:
            stored_hash = await other.scalar(select(User.password_hash).where(User.id == user.id))
        assert issued.user.id == user.id
        assert stored_hash is not None
        assert stored_hash.startswith("$argon2id$")
        assert password_hasher().verify(USER_PASSWORD, stored_hash) is True

    @pytest.mark.usefixtures("standard_password_hashing")
    async def test_argon2id_hash_with_other_parameters_is_replaced(
        self, db_session: AsyncSession, session_factory: SessionFactory, settings: Settings
    ) -> None:
        four_lanes = Argon2Hasher(time_cost=1, memory_cost=8 * 1024, parallelism=4)
        user = await create_user(db_session, password_hash_value=four_lanes.hash(USER_PASSWORD))

        await login(db_session, settings, user.email)

        async with session_factory() as other:
            stored_hash = await other.scalar(select(User.password_hash).where(User.id == user.id))
        assert stored_hash is not None
        assert f"m={ARGON2_MEMORY_KIB},t={ARGON2_TIME_COST},p={ARGON2_LANES}$" in stored_hash
        assert password_hasher().verify(USER_PASSWORD, stored_hash) is True

    async def test_upgraded_account_can_still_sign_in(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        user = await create_user(db_session, password_hash_value=bcrypt_hashed(USER_PASSWORD))
        await login(db_session, settings, user.email)

        issued = await login(db_session, settings, user.email)

        assert issued.user.id == user.id

    async def test_wrong_password_leaves_a_bcrypt_hash_alone(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        legacy = bcrypt_hashed(USER_PASSWORD)
        user = await create_user(db_session, password_hash_value=legacy)

        with pytest.raises(InvalidCredentialsError):
            await login(db_session, settings, user.email, password="WrongPassword123!")

        stored_hash = await db_session.scalar(select(User.password_hash).where(User.id == user.id))
        assert stored_hash == legacy

    @pytest.mark.usefixtures("standard_password_hashing")
    async def test_current_argon2id_hash_is_not_rewritten(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        before = test_user.password_hash

        await login(db_session, settings, test_user.email)

        stored_hash = await db_session.scalar(
            select(User.password_hash).where(User.id == test_user.id)
        )
        assert stored_hash == before

    # Regression: bcrypt 5 raises ValueError for passwords over 72 bytes.
    async def test_long_password_against_a_bcrypt_hash_is_just_invalid_credentials(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        user = await create_user(db_session, password_hash_value=bcrypt_hashed(USER_PASSWORD))

        with pytest.raises(InvalidCredentialsError):
            await login(db_session, settings, user.email, password="x" * 100)

    @pytest.mark.parametrize(
        ("email", "password", "field", "message"),
        [
            pytest.param("not-an-email", USER_PASSWORD, "email", "Invalid email", id="bad-email"),
            pytest.param("", USER_PASSWORD, "email", "Email is required", id="empty-email"),
            pytest.param(
                "testuser@example.com", "", "password", "Password is required", id="empty-password"
            ),
            pytest.param(
                "testuser@example.com",
                "p" * 129,
                "password",
                "at most 128 characters",
                id="password-too-long",
            ),
        ],
    )
    async def test_invalid_input_is_refused_before_any_lookup(
        self,
        db_session: AsyncSession,
        settings: Settings,
        test_user: User,
        *,
        email: str,
        password: str,
        field: str,
        message: str,
    ) -> None:
        with pytest.raises(InputValidationError) as caught:
            await login(db_session, settings, email, password=password)

        assert field_names(caught.value) == [field]
        assert message in caught.value.message

    async def test_no_transaction_is_open_while_the_password_is_checked(
        self,
        db_session: AsyncSession,
        settings: Settings,
        test_user: User,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        seen: list[bool] = []

        async def checking(password: str, hashed: str) -> VerifyResult:
            seen.append(db_session.in_transaction())
            return await verify_password(password, hashed)

        monkeypatch.setattr(auth_service, "verify_password", checking)

        await login(db_session, settings, test_user.email)

        assert seen == [False]

    @pytest.mark.parametrize("meanwhile", ["password changed", "account deleted"])
    async def test_an_account_changed_while_its_password_was_checked_signs_nobody_in(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        test_user: User,
        *,
        monkeypatch: pytest.MonkeyPatch,
        meanwhile: str,
    ) -> None:
        async def checked_while_another_request_writes(password: str, hashed: str) -> VerifyResult:
            result = await verify_password(password, hashed)
            async with session_factory() as other:
                account = await other.get(User, test_user.id)
                assert account is not None
                if meanwhile == "account deleted":
                    await other.delete(account)
                else:
                    account.password_hash = password_hasher().hash(STRONG_PASSWORD)
                await other.commit()
            return result

        monkeypatch.setattr(auth_service, "verify_password", checked_while_another_request_writes)

        with pytest.raises(InvalidCredentialsError):
            await login(db_session, settings, test_user.email)

        async with session_factory() as fresh:
            assert await count_rows(fresh, AuthSession) == 0

    async def test_short_password_is_checked_not_refused_as_input(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        # Length rules apply when a password is chosen, not when an old one is typed.
        with pytest.raises(InvalidCredentialsError):
            await login(db_session, settings, test_user.email, password="short")


class TestAuthenticate:
    async def test_valid_token_resolves_the_user_and_session(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        issued = await login(db_session, settings, test_user.email)

        viewer = await auth_service.authenticate(
            session=db_session,
            settings=settings,
            keys=KeyRing(settings),
            access_token=issued.access_token,
        )

        claims = await verified_claims(db_session, settings, issued.access_token)
        assert viewer.user.id == test_user.id
        assert viewer.auth_session.id == claims.session_id

    async def test_revoked_session_is_refused(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        issued = await login(db_session, settings, test_user.email)
        viewer = await auth_service.authenticate(
            session=db_session,
            settings=settings,
            keys=KeyRing(settings),
            access_token=issued.access_token,
        )
        viewer.auth_session.revoked_at = datetime.now(UTC)
        await db_session.commit()

        with pytest.raises(AuthenticationError, match=r"^Session has ended$"):
            await auth_service.authenticate(
                session=db_session,
                settings=settings,
                keys=KeyRing(settings),
                access_token=issued.access_token,
            )

    async def test_session_expiring_before_its_access_token_is_refused(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        short_sessions = settings.model_copy(
            update={"refresh_token_expire_seconds": 60, "access_token_expire_seconds": 600}
        )
        with freeze_time(NOW):
            issued = await login(db_session, short_sessions, test_user.email)

        with freeze_time(NOW + timedelta(seconds=59)):
            viewer = await auth_service.authenticate(
                session=db_session,
                settings=short_sessions,
                keys=KeyRing(short_sessions),
                access_token=issued.access_token,
            )
        assert viewer.user.id == test_user.id

        with (
            freeze_time(NOW + timedelta(seconds=61)),
            pytest.raises(AuthenticationError, match=r"^Session has ended$"),
        ):
            await auth_service.authenticate(
                session=db_session,
                settings=short_sessions,
                keys=KeyRing(short_sessions),
                access_token=issued.access_token,
            )

    async def test_expired_access_token_is_refused(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        with freeze_time(NOW):
            issued = await login(db_session, settings, test_user.email)

        with (
            freeze_time(NOW + timedelta(seconds=settings.access_token_expire_seconds + 1)),
            pytest.raises(AuthenticationError, match=r"^Access token has expired$"),
        ):
            await auth_service.authenticate(
                session=db_session,
                settings=settings,
                keys=KeyRing(settings),
                access_token=issued.access_token,
            )

    async def test_token_naming_another_users_session_is_refused(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        intruder = await create_user(db_session)
        victim_login = await login(db_session, settings, test_user.email)
        victim_session_id = (
            await verified_claims(db_session, settings, victim_login.access_token)
        ).session_id
        forged = await signed_access_token(
            db_session, settings, user_id=intruder.id, session_id=victim_session_id
        )

        with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
            await auth_service.authenticate(
                session=db_session, settings=settings, keys=KeyRing(settings), access_token=forged
            )

    async def test_unknown_session_is_refused(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        token = await signed_access_token(
            db_session, settings, user_id=test_user.id, session_id=uuid.uuid4()
        )

        with pytest.raises(AuthenticationError, match=r"^Session has ended$"):
            await auth_service.authenticate(
                session=db_session, settings=settings, keys=KeyRing(settings), access_token=token
            )

    async def test_session_of_a_deactivated_user_is_forbidden(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        issued = await login(db_session, settings, test_user.email)
        test_user.is_active = False
        await db_session.commit()

        with pytest.raises(PermissionDeniedError, match=r"^This account is disabled$"):
            await auth_service.authenticate(
                session=db_session,
                settings=settings,
                keys=KeyRing(settings),
                access_token=issued.access_token,
            )

    async def test_garbage_token_is_refused(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
            await auth_service.authenticate(
                session=db_session,
                settings=settings,
                keys=KeyRing(settings),
                access_token="not.a.jwt",
            )


class TestRegisterConcealingExisting:
    async def test_an_address_in_use_answers_with_an_account_that_is_never_stored(
        self, db_session: AsyncSession, session_factory: SessionFactory, test_user: User
    ) -> None:
        scheduler = CollectingScheduler()

        answered = await auth_service.register(
            jobs=scheduler,
            session=db_session,
            data=Registration(email=test_user.email, password=STRONG_PASSWORD),
            conceal_existing=True,
        )

        assert answered.id != test_user.id
        assert (answered.email, answered.is_verified) == (test_user.email, False)
        # Hashed like a new registration: the same work, so the same time.
        assert (await verify_password(STRONG_PASSWORD, answered.password_hash)).valid is True
        async with session_factory() as other:
            assert await other.get(User, answered.id) is None
        [notice] = scheduler.scheduled
        assert notice.job is auth_service.deliver_registration_attempt_notice
        assert notice.kwargs == {"email": test_user.email}

    @pytest.mark.parametrize("active", [True, False])
    async def test_the_notice_goes_to_an_active_owner_only(
        self,
        db_session: AsyncSession,
        jobs: RecordingScheduler,
        sent_mail: list[EmailMessage],
        active: bool,
    ) -> None:
        owner = await create_user(db_session, email="owner@example.com", is_active=active)
        for email in (owner.email, "nobody@example.com"):
            jobs.schedule(auth_service.deliver_registration_attempt_notice, email=email)

        await jobs.run_all()

        assert [message["To"] for message in sent_mail] == ([owner.email] if active else [])
