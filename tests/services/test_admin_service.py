"""Superusers managing accounts (services/admin.py): create, update, delete, the last superuser."""

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.db import SessionFactory
from gql_app.error_reasons import ErrorReason
from gql_app.errors import (
    MESSAGES,
    ConflictError,
    InputValidationError,
    NotFoundError,
    PermissionDeniedError,
)
from gql_app.models import ActionToken, AuthSession, RefreshToken, User
from gql_app.security.passwords import verify_password
from gql_app.services import admin as admin_service
from gql_app.services.admin import AccountChanges, NewAccount
from tests.auth_factories import create_action_token, create_auth_session, create_refresh_token
from tests.factories import STRONG_PASSWORD, USER_PASSWORD, create_user
from tests.fixtures.database import count_stored_rows, find_user, load_user, revoked
from tests.fixtures.errors import field_names
from tests.services.support import CollectingScheduler, viewer_for

NEW_PASSWORD = "a brand new passphrase, 2030"


class TestCreateUser:
    async def test_creates_the_account_with_every_flag_given(
        self, request_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await admin_service.create_user(
            jobs=CollectingScheduler(),
            session=request_session,
            data=NewAccount(
                email="  Staff.Member@Example.COM ",
                password=STRONG_PASSWORD,
                full_name="  Staff   Member ",
                is_active=False,
                is_superuser=True,
                is_verified=True,
            ),
        )

        saved = await load_user(session_factory, user.id)
        assert (saved.email, saved.full_name) == ("staff.member@example.com", "Staff Member")
        assert (saved.is_active, saved.is_superuser, saved.is_verified) == (False, True, True)
        assert saved.password_hash.startswith("$argon2id$")
        assert (await verify_password(STRONG_PASSWORD, saved.password_hash)).valid

    async def test_defaults_to_an_active_unverified_ordinary_account(
        self, request_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await admin_service.create_user(
            jobs=CollectingScheduler(),
            session=request_session,
            data=NewAccount(email="plain@example.com", password=STRONG_PASSWORD),
        )

        saved = await load_user(session_factory, user.id)
        assert (saved.is_active, saved.is_superuser, saved.is_verified) == (True, False, False)
        assert saved.full_name is None

    async def test_an_email_taken_in_another_case_conflicts(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        test_user: User,
    ) -> None:
        with pytest.raises(ConflictError) as caught:
            await admin_service.create_user(
                jobs=CollectingScheduler(),
                session=request_session,
                data=NewAccount(email="TestUser@Example.com", password=STRONG_PASSWORD),
            )

        assert caught.value.reason is ErrorReason.EMAIL_TAKEN
        assert await count_stored_rows(session_factory, User) == 1

    async def test_bad_input_names_every_offending_field(
        self, request_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        with pytest.raises(InputValidationError) as caught:
            await admin_service.create_user(
                jobs=CollectingScheduler(),
                session=request_session,
                data=NewAccount(email="not-an-email", password="short", full_name="x" * 256),
            )

        assert field_names(caught.value) == ["email", "full_name", "password"]
        assert await count_stored_rows(session_factory, User) == 0


class TestUpdateUser:
    async def test_an_account_deleted_while_its_password_was_hashed_is_not_found(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        user = await create_user(db_session)
        real_hash = admin_service.hash_password

        async def hashed_while_deleted(password: str) -> str:
            async with session_factory() as other:
                await other.delete(await other.get(User, user.id))
                await other.commit()
            return await real_hash(password)

        monkeypatch.setattr(admin_service, "hash_password", hashed_while_deleted)

        with pytest.raises(NotFoundError):
            await admin_service.update_user(
                session=request_session,
                user_id=str(user.id),
                changes=AccountChanges(password=STRONG_PASSWORD),
            )

    async def test_changes_the_name_and_flags(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
    ) -> None:
        user = await create_user(db_session, full_name="Before")

        updated = await admin_service.update_user(
            session=request_session,
            user_id=str(user.id),
            changes=AccountChanges(full_name=" After  Name ", is_superuser=True, is_verified=True),
        )

        assert updated.id == user.id
        saved = await load_user(session_factory, user.id)
        assert saved.full_name == "After Name"
        assert (saved.is_active, saved.is_superuser, saved.is_verified) == (True, True, True)

    async def test_an_empty_full_name_clears_it(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
    ) -> None:
        user = await create_user(db_session, full_name="Someone")

        await admin_service.update_user(
            session=request_session, user_id=str(user.id), changes=AccountChanges(full_name="")
        )

        assert (await load_user(session_factory, user.id)).full_name is None

    async def test_no_changes_leave_the_account_and_its_sessions_alone(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
    ) -> None:
        user = await create_user(db_session, full_name="Kept", is_verified=True)
        auth_session = await create_auth_session(db_session, user)

        await admin_service.update_user(
            session=request_session, user_id=str(user.id), changes=AccountChanges()
        )

        saved = await load_user(session_factory, user.id)
        assert (saved.email, saved.full_name, saved.is_verified) == (user.email, "Kept", True)
        assert not await revoked(session_factory, auth_session.id)

    async def test_a_new_email_is_normalised_and_unverified(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
    ) -> None:
        user = await create_user(db_session, is_verified=True)

        await admin_service.update_user(
            session=request_session,
            user_id=str(user.id),
            changes=AccountChanges(email=" Renamed@Example.COM"),
        )

        saved = await load_user(session_factory, user.id)
        assert (saved.email, saved.is_verified) == ("renamed@example.com", False)

    async def test_a_new_email_stays_verified_when_the_admin_says_so(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
    ) -> None:
        user = await create_user(db_session, is_verified=False)

        await admin_service.update_user(
            session=request_session,
            user_id=str(user.id),
            changes=AccountChanges(email="vouched@example.com", is_verified=True),
        )

        saved = await load_user(session_factory, user.id)
        assert (saved.email, saved.is_verified) == ("vouched@example.com", True)

    async def test_the_same_email_in_another_spelling_keeps_the_verification(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
    ) -> None:
        user = await create_user(db_session, email="same@example.com", is_verified=True)

        await admin_service.update_user(
            session=request_session,
            user_id=str(user.id),
            changes=AccountChanges(email="SAME@example.com "),
        )

        saved = await load_user(session_factory, user.id)
        assert (saved.email, saved.is_verified) == ("same@example.com", True)

    async def test_an_email_taken_in_another_case_conflicts(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        test_user: User,
    ) -> None:
        user = await create_user(db_session, full_name="Unchanged")

        with pytest.raises(ConflictError, match=MESSAGES[ErrorReason.EMAIL_TAKEN]):
            await admin_service.update_user(
                session=request_session,
                user_id=str(user.id),
                changes=AccountChanges(email="TESTUSER@example.com", full_name="Changed"),
            )

        saved = await load_user(session_factory, user.id)
        assert (saved.email, saved.full_name) == (user.email, "Unchanged")

    async def test_a_new_password_is_hashed_and_signs_the_user_out_everywhere(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
    ) -> None:
        user = await create_user(db_session)
        sessions = [await create_auth_session(db_session, user) for _ in range(2)]
        bystander = await create_auth_session(db_session, await create_user(db_session))

        await admin_service.update_user(
            session=request_session,
            user_id=str(user.id),
            changes=AccountChanges(password=NEW_PASSWORD),
        )

        saved = await load_user(session_factory, user.id)
        assert (await verify_password(NEW_PASSWORD, saved.password_hash)).valid
        assert not (await verify_password(USER_PASSWORD, saved.password_hash)).valid
        for auth_session in sessions:
            assert await revoked(session_factory, auth_session.id)
        assert not await revoked(session_factory, bystander.id)

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            pytest.param(AccountChanges(password="short"), "at least 12", id="too-short"),
            pytest.param(AccountChanges(password="password1234"), "too common", id="common"),
            pytest.param(
                AccountChanges(
                    email="fresh.address@example.com", password="fresh.address@example.com"
                ),
                "same as the email",
                id="the-new-email",
            ),
        ],
    )
    async def test_a_weak_password_is_refused_on_password(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        changes: AccountChanges,
        message: str,
    ) -> None:
        user = await create_user(db_session)
        auth_session = await create_auth_session(db_session, user)

        with pytest.raises(InputValidationError) as caught:
            await admin_service.update_user(
                session=request_session, user_id=str(user.id), changes=changes
            )

        assert field_names(caught.value) == ["password"]
        assert message in caught.value.message
        saved = await load_user(session_factory, user.id)
        assert (saved.email, saved.password_hash) == (user.email, user.password_hash)
        assert not await revoked(session_factory, auth_session.id)

    @pytest.mark.parametrize(
        ("changes", "fields"),
        [
            pytest.param(AccountChanges(email="nope"), ["email"], id="bad-email"),
            pytest.param(AccountChanges(full_name="x" * 256), ["full_name"], id="long-name"),
            pytest.param(
                AccountChanges(email="nope", full_name="x" * 256, password=NEW_PASSWORD),
                ["email", "full_name"],
                id="both",
            ),
        ],
    )
    async def test_bad_input_names_the_fields_and_changes_nothing(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        changes: AccountChanges,
        fields: list[str],
    ) -> None:
        user = await create_user(db_session, full_name="Unchanged")

        with pytest.raises(InputValidationError) as caught:
            await admin_service.update_user(
                session=request_session, user_id=str(user.id), changes=changes
            )

        assert sorted(field_names(caught.value)) == sorted(fields)
        saved = await load_user(session_factory, user.id)
        assert (saved.email, saved.full_name, saved.password_hash) == (
            user.email,
            "Unchanged",
            user.password_hash,
        )

    async def test_deactivating_signs_the_user_out_everywhere(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
    ) -> None:
        user = await create_user(db_session)
        sessions = [await create_auth_session(db_session, user) for _ in range(2)]

        await admin_service.update_user(
            session=request_session, user_id=str(user.id), changes=AccountChanges(is_active=False)
        )

        assert (await load_user(session_factory, user.id)).is_active is False
        for auth_session in sessions:
            assert await revoked(session_factory, auth_session.id)

    async def test_other_changes_keep_the_users_sessions(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
    ) -> None:
        user = await create_user(db_session)
        auth_session = await create_auth_session(db_session, user)

        await admin_service.update_user(
            session=request_session,
            user_id=str(user.id),
            changes=AccountChanges(
                email="elsewhere@example.com",
                full_name="New Name",
                is_active=True,
                is_superuser=True,
                is_verified=True,
            ),
        )

        assert not await revoked(session_factory, auth_session.id)

    @pytest.mark.parametrize(
        "changes",
        [
            pytest.param(AccountChanges(is_superuser=False), id="demote"),
            pytest.param(AccountChanges(is_active=False), id="deactivate"),
            pytest.param(AccountChanges(is_superuser=False, is_active=False), id="both"),
        ],
    )
    async def test_the_last_active_superuser_cannot_lose_power(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        test_superuser: User,
        changes: AccountChanges,
    ) -> None:
        # An inactive superuser does not count as another one.
        await create_user(db_session, is_superuser=True, is_active=False)
        auth_session = await create_auth_session(db_session, test_superuser)

        with pytest.raises(ConflictError) as caught:
            await admin_service.update_user(
                session=request_session, user_id=str(test_superuser.id), changes=changes
            )

        assert caught.value.reason is ErrorReason.LAST_SUPERUSER
        saved = await load_user(session_factory, test_superuser.id)
        assert (saved.is_active, saved.is_superuser) == (True, True)
        assert not await revoked(session_factory, auth_session.id)

    @pytest.mark.parametrize(
        "changes",
        [
            pytest.param(AccountChanges(is_superuser=False), id="demote"),
            pytest.param(AccountChanges(is_active=False), id="deactivate"),
        ],
    )
    async def test_a_superuser_may_lose_power_while_another_active_one_remains(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        test_superuser: User,
        changes: AccountChanges,
    ) -> None:
        other = await create_user(db_session, is_superuser=True)

        await admin_service.update_user(
            session=request_session, user_id=str(other.id), changes=changes
        )

        saved = await load_user(session_factory, other.id)
        assert not (saved.is_active and saved.is_superuser)

    async def test_the_last_active_superuser_may_change_other_things(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        test_superuser: User,
    ) -> None:
        await admin_service.update_user(
            session=request_session,
            user_id=str(test_superuser.id),
            changes=AccountChanges(full_name="Still In Charge", is_active=True, is_superuser=True),
        )

        assert (await load_user(session_factory, test_superuser.id)).full_name == "Still In Charge"

    async def test_an_inactive_superuser_may_be_demoted_when_no_active_one_is_left(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
    ) -> None:
        dormant = await create_user(db_session, is_superuser=True, is_active=False)

        await admin_service.update_user(
            session=request_session,
            user_id=str(dormant.id),
            changes=AccountChanges(is_superuser=False),
        )

        assert (await load_user(session_factory, dormant.id)).is_superuser is False

    @pytest.mark.parametrize("user_id", ["", "not-a-uuid", "42"])
    async def test_a_malformed_id_is_refused_on_id(
        self, request_session: AsyncSession, user_id: str
    ) -> None:
        with pytest.raises(InputValidationError) as caught:
            await admin_service.update_user(
                session=request_session, user_id=user_id, changes=AccountChanges(full_name="X")
            )

        assert field_names(caught.value) == ["id"]
        assert caught.value.message == "Invalid user id"

    async def test_an_unknown_user_is_not_found(
        self, request_session: AsyncSession, test_user: User
    ) -> None:
        with pytest.raises(NotFoundError, match=r"^User not found$"):
            await admin_service.update_user(
                session=request_session,
                user_id=str(uuid.uuid4()),
                changes=AccountChanges(full_name="X"),
            )


class TestDeleteUser:
    async def test_deletes_the_user_with_its_sessions_and_tokens(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        test_superuser: User,
    ) -> None:
        doomed = await create_user(db_session)
        auth_session = await create_auth_session(db_session, doomed)
        await create_refresh_token(db_session, auth_session)
        await create_action_token(db_session, doomed)
        viewer = await viewer_for(request_session, test_superuser)

        await admin_service.delete_user(
            session=request_session, viewer=viewer, user_id=str(doomed.id)
        )

        assert await find_user(session_factory, doomed.id) is None
        assert await count_stored_rows(session_factory, User) == 1
        # The viewer's own session is all that is left.
        assert await count_stored_rows(session_factory, AuthSession) == 1
        assert await count_stored_rows(session_factory, RefreshToken) == 0
        assert await count_stored_rows(session_factory, ActionToken) == 0

    async def test_another_active_superuser_may_be_deleted(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        test_superuser: User,
    ) -> None:
        other = await create_user(db_session, is_superuser=True)
        viewer = await viewer_for(request_session, test_superuser)

        await admin_service.delete_user(
            session=request_session, viewer=viewer, user_id=str(other.id)
        )

        assert await find_user(session_factory, other.id) is None

    async def test_deleting_oneself_is_forbidden(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        test_superuser: User,
    ) -> None:
        # Forbidden even while another active superuser would remain.
        await create_user(db_session, is_superuser=True)
        viewer = await viewer_for(request_session, test_superuser)

        with pytest.raises(PermissionDeniedError) as caught:
            await admin_service.delete_user(
                session=request_session, viewer=viewer, user_id=str(test_superuser.id)
            )

        assert caught.value.message == "You cannot delete your own account"
        assert await find_user(session_factory, test_superuser.id) is not None

    async def test_the_last_active_superuser_cannot_be_deleted(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        test_superuser: User,
    ) -> None:
        # A viewer who is no longer an active superuser (deactivated meanwhile) is no
        # replacement; the service answers the same whoever asks.
        former = await create_user(db_session, is_superuser=True, is_active=False)
        viewer = await viewer_for(request_session, former)

        with pytest.raises(ConflictError) as caught:
            await admin_service.delete_user(
                session=request_session, viewer=viewer, user_id=str(test_superuser.id)
            )

        assert caught.value.reason is ErrorReason.LAST_SUPERUSER
        assert await find_user(session_factory, test_superuser.id) is not None

    async def test_an_inactive_superuser_may_be_deleted(
        self,
        request_session: AsyncSession,
        session_factory: SessionFactory,
        db_session: AsyncSession,
        test_superuser: User,
    ) -> None:
        dormant = await create_user(db_session, is_superuser=True, is_active=False)
        viewer = await viewer_for(request_session, test_superuser)

        await admin_service.delete_user(
            session=request_session, viewer=viewer, user_id=str(dormant.id)
        )

        assert await find_user(session_factory, dormant.id) is None

    @pytest.mark.parametrize("user_id", ["", "not-a-uuid"])
    async def test_a_malformed_id_is_refused_on_id(
        self, request_session: AsyncSession, test_superuser: User, user_id: str
    ) -> None:
        viewer = await viewer_for(request_session, test_superuser)

        with pytest.raises(InputValidationError) as caught:
            await admin_service.delete_user(session=request_session, viewer=viewer, user_id=user_id)

        assert field_names(caught.value) == ["id"]

    async def test_an_unknown_user_is_not_found(
        self, request_session: AsyncSession, session_factory: SessionFactory, test_superuser: User
    ) -> None:
        viewer = await viewer_for(request_session, test_superuser)

        with pytest.raises(NotFoundError, match=r"^User not found$"):
            await admin_service.delete_user(
                session=request_session, viewer=viewer, user_id=str(uuid.uuid4())
            )

        assert await count_stored_rows(session_factory, User) == 1
