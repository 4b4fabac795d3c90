"""Adding and managing one's passkeys through GraphQL, with a software authenticator as the
browser: the options a browser is given, the checks of what it sends back, the limits."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.models import Passkey, PasskeyChallenge, User
from tests.factories import USER_PASSWORD, create_user
from tests.graphql import GraphQLClient, login_tokens
from tests.passkey_flows import (
    DELETE_PASSKEY,
    MY_PASSKEYS,
    ORIGIN,
    RENAME_PASSKEY,
    RP_ID,
    START_PASSKEY_REGISTRATION,
    add_passkey,
    authenticator,
    data_of,
    finish_registration,
    passkey_sign_in,
    reason_of,
    start_registration,
)
from tests.webauthn_authenticator import b64url, from_b64url

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
REAUTH_MAX_AGE = timedelta(seconds=600)
MAX_PASSKEYS = 10


@pytest.fixture
def clock(app: FastAPI) -> Iterator[FrozenDateTimeFactory]:
    """Time stands still at T0 until the test moves it (see tests/api/test_mfa.py)."""
    with freeze_time(T0, real_asyncio=True) as frozen:
        yield frozen


pytestmark = pytest.mark.usefixtures("clock")


async def token_of(gql: GraphQLClient, user: User) -> str:
    return (await login_tokens(gql, email=user.email, password=USER_PASSWORD)).access


async def stored_passkeys(db_session: AsyncSession) -> int:
    return (await db_session.execute(select(func.count()).select_from(Passkey))).scalar_one()


class TestRegistrationOptions:
    async def test_are_webauthn_creation_options_for_a_discoverable_credential(
        self, gql: GraphQLClient, test_user: User, settings: Settings
    ) -> None:
        ceremony = await start_registration(gql, await token_of(gql, test_user))

        options = ceremony["options"]
        assert options["rp"] == {"id": RP_ID, "name": settings.webauthn_rp_name}
        # The user handle is the account's id: nothing about the person.
        assert options["user"] == {
            "id": b64url(test_user.id.bytes),
            "name": test_user.email,
            "displayName": test_user.email,
        }
        assert len(from_b64url(options["challenge"])) == 32
        assert {"type": "public-key", "alg": -7} in options["pubKeyCredParams"]
        assert options["authenticatorSelection"] == {
            "residentKey": "required",
            "requireResidentKey": True,
            "userVerification": "preferred",
        }
        assert options["attestation"] == "none"
        assert options["excludeCredentials"] == []
        assert options["timeout"] == 300_000
        assert ceremony["challengeId"]

    async def test_exclude_the_accounts_passkeys_so_no_authenticator_registers_twice(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        token = await token_of(gql, test_user)
        device = authenticator()
        await add_passkey(gql, token, device)

        options = (await start_registration(gql, token))["options"]

        stored = device.credentials[0]
        assert options["excludeCredentials"] == [
            {"id": b64url(stored.credential_id), "type": "public-key", "transports": ["internal"]}
        ]

    async def test_ask_for_user_verification_when_the_setting_requires_it(
        self, app: FastAPI, gql: GraphQLClient, test_user: User
    ) -> None:
        app.state.settings.webauthn_user_verification = "required"

        options = (await start_registration(gql, await token_of(gql, test_user)))["options"]

        assert options["authenticatorSelection"]["userVerification"] == "required"

    async def test_need_a_signed_in_session(self, gql: GraphQLClient) -> None:
        response = await gql(START_PASSKEY_REGISTRATION)

        assert reason_of(response, "UNAUTHENTICATED") == "TOKEN_MISSING"

    async def test_need_a_recent_sign_in(
        self, gql: GraphQLClient, test_user: User, clock: FrozenDateTimeFactory
    ) -> None:
        token = await token_of(gql, test_user)
        clock.tick(REAUTH_MAX_AGE + timedelta(seconds=1))

        response = await gql(START_PASSKEY_REGISTRATION, token=token)

        assert reason_of(response, "FORBIDDEN") == "REAUTHENTICATION_REQUIRED"

    async def test_stop_at_ten_passkeys(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        token = await token_of(gql, test_user)
        for _ in range(MAX_PASSKEYS):
            await add_passkey(gql, token, authenticator())

        response = await gql(START_PASSKEY_REGISTRATION, token=token)

        assert reason_of(response, "CONFLICT") == "TOO_MANY_PASSKEYS"
        assert await stored_passkeys(db_session) == MAX_PASSKEYS

    async def test_stop_at_ten_also_when_ceremonies_were_started_before(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        token = await token_of(gql, test_user)
        for _ in range(MAX_PASSKEYS - 1):
            await add_passkey(gql, token, authenticator())
        first, second = [await start_registration(gql, token) for _ in range(2)]
        data_of(
            await finish_registration(
                gql, token, first["challengeId"], authenticator().create(first["options"])
            ),
            "finishPasskeyRegistration",
        )

        response = await finish_registration(
            gql, token, second["challengeId"], authenticator().create(second["options"])
        )

        assert reason_of(response, "CONFLICT") == "TOO_MANY_PASSKEYS"
        assert await stored_passkeys(db_session) == MAX_PASSKEYS


class TestFinishingARegistration:
    async def test_keeps_the_passkey_and_lists_it(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        token = await token_of(gql, test_user)

        passkey = await add_passkey(gql, token, authenticator(), name="  Work   laptop ")

        assert passkey == {
            "id": passkey["id"],
            "name": "Work laptop",
            "createdAt": T0.isoformat(),
            "lastUsedAt": None,
            "backedUp": True,
            "transports": ["internal"],
        }
        assert data_of(await gql(MY_PASSKEYS, token=token), "myPasskeys") == [passkey]

    async def test_names_an_unnamed_passkey_and_shows_a_device_bound_one_as_not_backed_up(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        device = authenticator(backup_eligible=False, backed_up=False)

        passkey = await add_passkey(gql, await token_of(gql, test_user), device)

        assert (passkey["name"], passkey["backedUp"]) == ("Passkey", False)

    async def test_keeps_what_verifying_the_signatures_needs(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        device = authenticator()
        await add_passkey(gql, await token_of(gql, test_user), device)

        stored = (await db_session.execute(select(Passkey))).scalar_one()
        assert stored.user_id == test_user.id
        assert stored.credential_id == device.credentials[0].credential_id
        assert stored.sign_count == 0
        assert (stored.backup_eligible, stored.backed_up) == (True, True)
        assert stored.aaguid == str(uuid.UUID(int=0))

    @pytest.mark.parametrize(
        "made",
        [{"origin": "https://evil.example"}, {"rp_id": "evil.example"}],
        ids=["another-origin", "another-rp-id"],
    )
    async def test_refuses_a_credential_made_for_another_site(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession, made: dict[str, Any]
    ) -> None:
        token = await token_of(gql, test_user)
        ceremony = await start_registration(gql, token)
        credential = authenticator().create(ceremony["options"], **made)

        response = await finish_registration(gql, token, ceremony["challengeId"], credential)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_VERIFICATION_FAILED"
        assert await stored_passkeys(db_session) == 0

    async def test_refuses_a_credential_id_longer_than_webauthn_allows(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        token = await token_of(gql, test_user)
        ceremony = await start_registration(gql, token)
        credential = authenticator().create(ceremony["options"], credential_id=b"x" * 1024)

        response = await finish_registration(gql, token, ceremony["challengeId"], credential)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_VERIFICATION_FAILED"
        assert await stored_passkeys(db_session) == 0

    async def test_refuses_a_credential_made_for_another_challenge(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        token = await token_of(gql, test_user)
        first = await start_registration(gql, token)
        second = await start_registration(gql, token)
        credential = authenticator().create(first["options"])

        response = await finish_registration(gql, token, second["challengeId"], credential)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_VERIFICATION_FAILED"

    async def test_takes_each_challenge_once(self, gql: GraphQLClient, test_user: User) -> None:
        token = await token_of(gql, test_user)
        device = authenticator()
        ceremony = await start_registration(gql, token)
        credential = device.create(ceremony["options"])
        data_of(
            await finish_registration(gql, token, ceremony["challengeId"], credential),
            "finishPasskeyRegistration",
        )
        replayed = authenticator().create(ceremony["options"])

        response = await finish_registration(gql, token, ceremony["challengeId"], replayed)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_CHALLENGE_INVALID"

    async def test_refuses_a_challenge_past_its_five_minutes(
        self, gql: GraphQLClient, test_user: User, clock: FrozenDateTimeFactory
    ) -> None:
        token = await token_of(gql, test_user)
        ceremony = await start_registration(gql, token)
        credential = authenticator().create(ceremony["options"])
        clock.tick(timedelta(seconds=300))

        response = await finish_registration(gql, token, ceremony["challengeId"], credential)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_CHALLENGE_INVALID"

    async def test_refuses_another_accounts_challenge(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        other = await create_user(db_session, email="other@example.com", password=USER_PASSWORD)
        theirs = await start_registration(gql, await token_of(gql, other))
        credential = authenticator().create(theirs["options"])

        response = await finish_registration(
            gql, await token_of(gql, test_user), theirs["challengeId"], credential
        )

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_CHALLENGE_INVALID"

    async def test_refuses_a_sign_in_challenge(self, gql: GraphQLClient, test_user: User) -> None:
        token = await token_of(gql, test_user)
        registration = await start_registration(gql, token)
        sign_in = data_of(
            await gql("mutation { startPasskeySignIn { challengeId } }"), "startPasskeySignIn"
        )
        credential = authenticator().create(registration["options"])

        response = await finish_registration(gql, token, sign_in["challengeId"], credential)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_CHALLENGE_INVALID"

    async def test_refuses_an_authenticator_that_did_not_verify_the_user_when_required(
        self, app: FastAPI, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        app.state.settings.webauthn_user_verification = "required"
        token = await token_of(gql, test_user)
        ceremony = await start_registration(gql, token)
        credential = authenticator(user_verifying=False).create(ceremony["options"])

        response = await finish_registration(gql, token, ceremony["challengeId"], credential)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_VERIFICATION_FAILED"
        assert await stored_passkeys(db_session) == 0

    async def test_accepts_one_without_user_verification_when_it_is_only_preferred(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        device = authenticator(user_verifying=False)

        passkey = await add_passkey(gql, await token_of(gql, test_user), device)

        assert passkey["name"] == "Passkey"

    async def test_refuses_a_credential_registered_already(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        other = await create_user(db_session, email="other@example.com", password=USER_PASSWORD)
        taken = authenticator()
        await add_passkey(gql, await token_of(gql, other), taken)
        token = await token_of(gql, test_user)
        ceremony = await start_registration(gql, token)
        credential = authenticator().create(
            ceremony["options"], credential_id=taken.credentials[0].credential_id
        )

        response = await finish_registration(gql, token, ceremony["challengeId"], credential)

        assert reason_of(response, "CONFLICT") == "PASSKEY_ALREADY_REGISTERED"
        assert await stored_passkeys(db_session) == 1

    @pytest.mark.parametrize(
        "credential",
        [
            "not an object",
            42,
            None,
            [],
            {},
            {"id": "x", "rawId": "x", "type": "public-key", "response": {}},
            {
                "id": "x",
                "rawId": "x",
                "type": "public-key",
                "response": {"clientDataJSON": "x", "attestationObject": "!!"},
            },
        ],
        ids=["string", "number", "null", "list", "empty", "no-response-fields", "bad-base64"],
    )
    async def test_answers_a_malformed_credential_as_bad_input_and_keeps_the_challenge(
        self, gql: GraphQLClient, test_user: User, credential: object
    ) -> None:
        token = await token_of(gql, test_user)
        ceremony = await start_registration(gql, token)

        response = await finish_registration(gql, token, ceremony["challengeId"], credential)

        if credential is None:
            # null for a non-null input field: GraphQL refuses the document itself.
            assert response.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
        else:
            assert response.error_fields() == ["credential"]
        # Nothing was spent: the real answer still goes through.
        valid = authenticator().create(ceremony["options"])
        registered = await finish_registration(gql, token, ceremony["challengeId"], valid)
        assert data_of(registered, "finishPasskeyRegistration")["name"] == "Passkey"

    async def test_refuses_a_name_too_long_before_spending_the_challenge(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        token = await token_of(gql, test_user)
        ceremony = await start_registration(gql, token)
        credential = authenticator().create(ceremony["options"])

        too_long = await finish_registration(
            gql, token, ceremony["challengeId"], credential, name="x" * 65
        )

        assert too_long.error_fields() == ["name"]
        registered = await finish_registration(gql, token, ceremony["challengeId"], credential)
        assert data_of(registered, "finishPasskeyRegistration")["name"] == "Passkey"

    async def test_leaves_no_challenge_behind(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        await add_passkey(gql, await token_of(gql, test_user), authenticator())

        count = select(func.count()).select_from(PasskeyChallenge)
        assert (await db_session.execute(count)).scalar_one() == 0


async def passkey_of(gql: GraphQLClient, user: User) -> tuple[str, dict[str, Any]]:
    token = await token_of(gql, user)
    return token, await add_passkey(gql, token, authenticator())


class TestRenaming:
    async def test_gives_the_passkey_a_new_name(self, gql: GraphQLClient, test_user: User) -> None:
        token, passkey = await passkey_of(gql, test_user)

        response = await gql(RENAME_PASSKEY, {"id": passkey["id"], "name": "Phone"}, token=token)

        assert data_of(response, "renamePasskey") == {**passkey, "name": "Phone"}

    @pytest.mark.parametrize(
        ("name", "code"),
        [("   ", "REQUIRED"), ("x" * 65, "TOO_LONG"), ("a\u0000b", "INVALID_CHARACTERS")],
    )
    async def test_refuses_a_name_that_is_not_one(
        self, gql: GraphQLClient, test_user: User, name: str, code: str
    ) -> None:
        token, passkey = await passkey_of(gql, test_user)

        response = await gql(RENAME_PASSKEY, {"id": passkey["id"], "name": name}, token=token)

        fields = response.single_error("BAD_USER_INPUT")["extensions"]["fields"]
        assert [(entry["field"], entry["code"]) for entry in fields] == [("name", code)]

    async def test_needs_a_recent_sign_in(
        self, gql: GraphQLClient, test_user: User, clock: FrozenDateTimeFactory
    ) -> None:
        token, passkey = await passkey_of(gql, test_user)
        clock.tick(REAUTH_MAX_AGE + timedelta(seconds=1))

        response = await gql(RENAME_PASSKEY, {"id": passkey["id"], "name": "Phone"}, token=token)

        assert reason_of(response, "FORBIDDEN") == "REAUTHENTICATION_REQUIRED"


class TestDeleting:
    async def test_removes_the_passkey_which_signs_in_no_more(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        token = await token_of(gql, test_user)
        device = authenticator()
        passkey = await add_passkey(gql, token, device)

        response = await gql(DELETE_PASSKEY, {"id": passkey["id"]}, token=token)

        assert data_of(response, "deletePasskey") is True
        assert data_of(await gql(MY_PASSKEYS, token=token), "myPasskeys") == []
        refused = await passkey_sign_in(gql, device)
        assert reason_of(refused, "UNAUTHENTICATED") == "PASSKEY_NOT_RECOGNISED"

    async def test_needs_a_recent_sign_in(
        self, gql: GraphQLClient, test_user: User, clock: FrozenDateTimeFactory
    ) -> None:
        token, passkey = await passkey_of(gql, test_user)
        clock.tick(REAUTH_MAX_AGE + timedelta(seconds=1))

        response = await gql(DELETE_PASSKEY, {"id": passkey["id"]}, token=token)

        assert reason_of(response, "FORBIDDEN") == "REAUTHENTICATION_REQUIRED"


class TestAnAdminReset:
    async def test_removes_the_accounts_passkeys(
        self, gql: GraphQLClient, test_user: User, superuser_token: str
    ) -> None:
        token = await token_of(gql, test_user)
        device = authenticator()
        await add_passkey(gql, token, device)

        reset = await gql(
            "mutation R($id: ID!) { resetUserMfa(id: $id) { id } }",
            {"id": str(test_user.id)},
            token=superuser_token,
        )

        assert data_of(reset, "resetUserMfa") == {"id": str(test_user.id)}
        refused = await passkey_sign_in(gql, device)
        assert reason_of(refused, "UNAUTHENTICATED") == "PASSKEY_NOT_RECOGNISED"


class TestAnotherAccountsPasskey:
    @pytest.mark.parametrize(
        ("operation", "variables"),
        [(RENAME_PASSKEY, {"name": "Mine now"}), (DELETE_PASSKEY, {})],
        ids=["rename", "delete"],
    )
    async def test_is_not_found_and_stays_as_it_was(
        self,
        gql: GraphQLClient,
        test_user: User,
        db_session: AsyncSession,
        operation: str,
        variables: dict[str, str],
    ) -> None:
        other = await create_user(db_session, email="other@example.com", password=USER_PASSWORD)
        their_token, theirs = await passkey_of(gql, other)

        response = await gql(
            operation, {"id": theirs["id"], **variables}, token=await token_of(gql, test_user)
        )

        assert reason_of(response, "NOT_FOUND") == "PASSKEY_NOT_FOUND"
        assert data_of(await gql(MY_PASSKEYS, token=their_token), "myPasskeys") == [theirs]

    @pytest.mark.parametrize("passkey_id", ["not-a-uuid", "6f1c2a52-3f0e-4a51-9d39-0c7e1d2b9a10"])
    async def test_an_id_of_no_passkey_is_not_found_either(
        self, gql: GraphQLClient, test_user: User, passkey_id: str
    ) -> None:
        response = await gql(
            DELETE_PASSKEY, {"id": passkey_id}, token=await token_of(gql, test_user)
        )

        assert reason_of(response, "NOT_FOUND") == "PASSKEY_NOT_FOUND"


def test_the_suite_runs_ceremonies_on_the_frontends_origin(settings: Settings) -> None:
    # The helpers' ORIGIN is what these settings accept, and only because of FRONTEND_BASE_URL.
    assert settings.accepts_passkey_origin(ORIGIN)
    assert not settings.accepts_passkey_origin("http://localhost:3001")
