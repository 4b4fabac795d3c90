"""What other services see of the signing keys (/.well-known/…), what the API refuses to
trust, and what a server does with its keys when it starts."""

import asyncio
import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from gql_app import main as main_module
from gql_app.config import Settings
from gql_app.db import SessionFactory
from gql_app.main import create_app
from gql_app.models import SigningKey, User
from gql_app.security.signing_keys import PRIVATE_JWK_MEMBERS, KeyDecryptionError
from gql_app.services import signing_keys as keys_service
from tests.api.test_app import file_settings
from tests.api.test_outages import (  # noqa: F401 - database_down is a fixture
    REFUSING_DATABASE,
    app_with,
    database_down,
)
from tests.conftest import LogRecords
from tests.factories import USER_PASSWORD
from tests.graphql import LOGIN, GraphQLClient

JWKS = "/.well-known/jwks.json"
DISCOVERY = "/.well-known/openid-configuration"
ME = "{ me { email } }"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def login_token(gql: GraphQLClient, user: User) -> str:
    response = await gql(LOGIN, {"input": {"email": user.email, "password": USER_PASSWORD}})
    token: str = response.data["login"]["accessToken"]
    return token


async def stored_keys(session: AsyncSession) -> list[SigningKey]:
    return list((await session.scalars(select(SigningKey))).all())


class TestJwks:
    async def test_publishes_the_key_that_signs_tokens_and_no_private_part(
        self, client: AsyncClient, gql: GraphQLClient, test_user: User
    ) -> None:
        token = await login_token(gql, test_user)

        response = await client.get(JWKS)

        assert response.status_code == 200
        assert response.headers["content-type"] == "application/jwk-set+json"
        [published] = response.json()["keys"]
        assert published["kid"] == jwt.get_unverified_header(token)["kid"]
        assert (published["kty"], published["crv"], published["alg"], published["use"]) == (
            "EC",
            "P-256",
            "ES256",
            "sig",
        )
        assert not PRIVATE_JWK_MEMBERS & published.keys()
        # What a service elsewhere does with it, and nothing more.
        claims = jwt.decode(
            token, jwt.PyJWK(published).key, algorithms=["ES256"], audience="gql-app"
        )
        assert claims["sub"] == str(test_user.id)

    async def test_every_state_that_verifies_is_published_and_none_other(
        self, client: AsyncClient, db_session: AsyncSession, settings: Settings
    ) -> None:
        await keys_service.ensure_signing_key(session=db_session, settings=settings)
        previous = await keys_service.rotate_signing_key(session=db_session, settings=settings)
        await keys_service.activate_signing_key(session=db_session, kid=previous.kid)
        retired = await keys_service.rotate_signing_key(session=db_session, settings=settings)
        await keys_service.retire_signing_key(
            session=db_session, settings=settings, kid=retired.kid
        )
        pending = await keys_service.rotate_signing_key(session=db_session, settings=settings)
        await db_session.commit()
        states = {s.kid: s.state for s in await keys_service.list_signing_keys(session=db_session)}

        published = [key["kid"] for key in (await client.get(JWKS)).json()["keys"]]

        assert len(states) == 4
        assert set(published) == {kid for kid in states if kid != retired.kid}
        assert pending.kid in published

    async def test_cached_publicly_for_less_than_the_publish_delay_and_revalidated_by_etag(
        self, client: AsyncClient, gql: GraphQLClient, test_user: User, settings: Settings
    ) -> None:
        await login_token(gql, test_user)

        first = await client.get(JWKS)
        again = await client.get(JWKS, headers={"If-None-Match": first.headers["etag"]})

        assert first.headers["cache-control"] == "public, max-age=600"
        assert settings.signing_key_publish_seconds > 600
        assert (again.status_code, again.content) == (304, b"")
        assert again.headers["etag"] == first.headers["etag"]
        assert (await client.get(JWKS, headers={"If-None-Match": '"stale"'})).status_code == 200

    async def test_a_new_key_changes_the_etag(
        self, client: AsyncClient, db_session: AsyncSession, settings: Settings, app: FastAPI
    ) -> None:
        await keys_service.ensure_signing_key(session=db_session, settings=settings)
        await db_session.commit()
        before = (await client.get(JWKS)).headers["etag"]
        await keys_service.rotate_signing_key(session=db_session, settings=settings)
        await db_session.commit()
        app.state.key_ring.forget()

        after = await client.get(JWKS, headers={"If-None-Match": before})

        assert after.status_code == 200
        assert len(after.json()["keys"]) == 2

    async def test_hmac_keys_are_never_published(
        self,
        settings: Settings,
        async_test_db: tuple[AsyncEngine, SessionFactory],
        test_user: User,
    ) -> None:
        app = app_with(settings, async_test_db, jwt_algorithm="HS256")
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
            token = await login_token(GraphQLClient(http), test_user)
            response = await http.get(JWKS)

        assert jwt.get_unverified_header(token)["alg"] == "HS256"
        assert response.json() == {"keys": []}

    async def test_served_in_production_too(
        self,
        settings: Settings,
        async_test_db: tuple[AsyncEngine, SessionFactory],
        db_session: AsyncSession,
    ) -> None:
        await keys_service.ensure_signing_key(session=db_session, settings=settings)
        await db_session.commit()
        app = app_with(
            settings, async_test_db, environment="production", password_hashing_cost="standard"
        )
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
            jwks = await http.get(JWKS)
            discovery = await http.get(DISCOVERY)

        assert len(jwks.json()["keys"]) == 1
        assert discovery.status_code == 200

    async def test_a_database_outage_is_answered_with_a_typed_error(
        self,
        database_down: AsyncClient,  # noqa: F811 - the fixture
    ) -> None:
        # The first finds the database down; the second is answered at once, for it.
        for _ in range(2):
            response = await database_down.get(JWKS)

            assert response.status_code == 503
            assert response.headers["retry-after"] == "5"
            [error] = response.json()["errors"]
            assert error["extensions"] == {
                "code": "SERVICE_UNAVAILABLE",
                "reason": "DATABASE_UNAVAILABLE",
                "retryAfter": 5,
            }


class TestDiscovery:
    async def test_names_the_issuer_and_the_key_set_and_nothing_it_does_not_do(
        self, client: AsyncClient, settings: Settings
    ) -> None:
        response = await client.get(DISCOVERY)

        assert response.status_code == 200
        assert response.json() == {
            "issuer": settings.jwt_issuer,
            "jwks_uri": f"http://test{JWKS}",
        }
        # Its address came from the request: no shared cache may keep it for others.
        assert response.headers["cache-control"] == "private, max-age=600"

    async def test_an_issuer_that_is_a_url_is_where_the_key_set_is(
        self, settings: Settings, async_test_db: tuple[AsyncEngine, SessionFactory]
    ) -> None:
        # Behind a proxy the request's own address may not be the public one.
        app = app_with(settings, async_test_db, jwt_issuer="https://auth.example.com/")
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
            response = await http.get(DISCOVERY)
            document = response.json()

        assert document == {
            "issuer": "https://auth.example.com/",
            "jwks_uri": f"https://auth.example.com{JWKS}",
        }
        assert response.headers["cache-control"] == "public, max-age=600"


def forged_hmac(token: str, secret: bytes) -> str:
    """The token's claims under an HS256 header naming the same kid, keyed with ``secret``."""
    header = jwt.get_unverified_header(token)
    payload = token.split(".")[1]
    forged_header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": header["kid"]}).encode())
    signature = hmac.new(secret, f"{forged_header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{forged_header}.{payload}.{b64(signature)}"


class TestTokensTheApiRefuses:
    """Each is refused like any invalid token: UNAUTHENTICATED, TOKEN_INVALID."""

    @pytest.fixture
    async def token(self, gql: GraphQLClient, test_user: User) -> str:
        return await login_token(gql, test_user)

    @pytest.fixture
    async def public_jwk(self, client: AsyncClient, token: str) -> dict[str, Any]:
        [key] = (await client.get(JWKS)).json()["keys"]
        return dict(key)

    async def refused(self, gql: GraphQLClient, token: str) -> None:
        response = await gql(ME, headers={"Authorization": f"Bearer {token}"})
        assert response.data is None
        [error] = response.errors
        assert (error["extensions"]["code"], error["extensions"]["reason"]) == (
            "UNAUTHENTICATED",
            "TOKEN_INVALID",
        )

    async def test_the_genuine_token_is_accepted(self, gql: GraphQLClient, token: str) -> None:
        response = await gql(ME, headers={"Authorization": f"Bearer {token}"})

        assert response.data == {"me": {"email": "testuser@example.com"}}

    async def test_a_tampered_signature(self, gql: GraphQLClient, token: str) -> None:
        header, payload, signature = token.split(".")
        flipped = b64(bytes(b ^ 1 for b in base64.urlsafe_b64decode(signature + "==")))

        await self.refused(gql, f"{header}.{payload}.{flipped}")

    @pytest.mark.parametrize("secret_form", ["pem", "jwk"])
    async def test_an_hmac_keyed_with_the_published_public_key(
        self, gql: GraphQLClient, token: str, public_jwk: dict[str, Any], secret_form: str
    ) -> None:
        public = jwt.PyJWK(public_jwk).key
        secret = (
            public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            if secret_form == "pem"
            else json.dumps(public_jwk).encode()
        )

        await self.refused(gql, forged_hmac(token, secret))

    async def test_alg_none(self, gql: GraphQLClient, token: str) -> None:
        claims = jwt.decode(token, options={"verify_signature": False})
        kid = jwt.get_unverified_header(token)["kid"]

        await self.refused(gql, jwt.encode(claims, None, algorithm="none", headers={"kid": kid}))

    async def test_an_unknown_kid(self, gql: GraphQLClient, token: str) -> None:
        claims = jwt.decode(token, options={"verify_signature": False})
        stranger = ec.generate_private_key(ec.SECP256R1())

        await self.refused(
            gql, jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": "not-ours"})
        )

    async def test_a_token_without_a_kid(self, gql: GraphQLClient, token: str) -> None:
        claims = jwt.decode(token, options={"verify_signature": False})
        stranger = ec.generate_private_key(ec.SECP256R1())

        await self.refused(gql, jwt.encode(claims, stranger, algorithm="ES256"))


class TestGenuineTokensNoLongerAccepted:
    """Refused, but as TOKEN_EXPIRED: the client refreshes, as on expiry, instead of
    sending its user to sign in again."""

    @pytest.fixture
    async def token(self, gql: GraphQLClient, test_user: User) -> str:
        return await login_token(gql, test_user)

    async def answer(self, gql: GraphQLClient, token: str) -> tuple[str, str]:
        response = await gql(ME, headers={"Authorization": f"Bearer {token}"})
        assert response.data is None
        [error] = response.errors
        return error["extensions"]["code"], error["extensions"]["reason"]

    async def test_a_token_of_a_retired_key(
        self,
        gql: GraphQLClient,
        token: str,
        db_session: AsyncSession,
        settings: Settings,
        app: FastAPI,
    ) -> None:
        old = jwt.get_unverified_header(token)["kid"]
        new = await keys_service.rotate_signing_key(session=db_session, settings=settings)
        await keys_service.activate_signing_key(session=db_session, kid=new.kid)
        await keys_service.retire_signing_key(
            session=db_session, settings=settings, kid=old, force=True
        )
        await db_session.commit()
        app.state.key_ring.forget()
        header, payload, signature = token.split(".")
        flipped = b64(bytes(b ^ 1 for b in base64.urlsafe_b64decode(signature + "==")))

        assert await self.answer(gql, token) == ("UNAUTHENTICATED", "TOKEN_EXPIRED")
        # A forgery naming the retired key is still just invalid.
        forged = f"{header}.{payload}.{flipped}"
        assert await self.answer(gql, forged) == ("UNAUTHENTICATED", "TOKEN_INVALID")

    async def test_a_token_issued_before_there_were_signing_keys(
        self, gql: GraphQLClient, token: str, settings: Settings
    ) -> None:
        # What this server issued until signing keys came: HS256 under SECRET_KEY, no kid.
        claims = jwt.decode(token, options={"verify_signature": False})
        legacy = jwt.encode(claims, settings.secret_key_value, algorithm="HS256")
        forged = jwt.encode(claims, "another-secret-that-is-long-enough-0123456789", "HS256")

        assert await self.answer(gql, legacy) == ("UNAUTHENTICATED", "TOKEN_EXPIRED")
        assert await self.answer(gql, forged) == ("UNAUTHENTICATED", "TOKEN_INVALID")


class TestRotationWithoutSigningAnyoneOut:
    async def test_tokens_of_the_old_and_new_key_both_work_until_retirement(
        self,
        gql: GraphQLClient,
        test_user: User,
        db_session: AsyncSession,
        settings: Settings,
        app: FastAPI,
    ) -> None:
        old_token = await login_token(gql, test_user)
        new = await keys_service.rotate_signing_key(session=db_session, settings=settings)
        await keys_service.activate_signing_key(session=db_session, kid=new.kid)
        await db_session.commit()
        app.state.key_ring.forget()

        new_token = await login_token(gql, test_user)

        assert jwt.get_unverified_header(new_token)["kid"] == new.kid
        for token in (old_token, new_token):
            response = await gql(ME, headers={"Authorization": f"Bearer {token}"})
            assert response.data == {"me": {"email": test_user.email}}


class TestStartup:
    async def test_creates_one_signing_key_however_often_it_starts(self, tmp_path: Path) -> None:
        settings = file_settings(tmp_path)
        for _ in range(2):
            app = create_app(settings)
            async with (
                app.router.lifespan_context(app),
                app.state.session_factory() as session,
            ):
                keys = await stored_keys(session)

            assert [(key.algorithm, key.retired_at) for key in keys] == [("ES256", None)]

    async def test_starts_while_the_database_is_down_and_says_so(
        self, settings: Settings, app_log: LogRecords
    ) -> None:
        app = create_app(settings.model_copy(update={"database_url": REFUSING_DATABASE}))
        async with app.router.lifespan_context(app):
            pass

        assert "signing keys not checked at startup: the database does not answer" in [
            record.getMessage() for record in app_log.records
        ]

    async def test_refuses_to_start_on_keys_it_cannot_decrypt(self, tmp_path: Path) -> None:
        app = create_app(file_settings(tmp_path))
        async with app.router.lifespan_context(app):
            pass
        other_secret = file_settings(tmp_path, secret_key=SecretStr("o" * 48))

        restarted = create_app(other_secret)
        with pytest.raises(KeyDecryptionError, match="SECRET_KEY or KEY_ENCRYPTION_KEY"):
            async with restarted.router.lifespan_context(restarted):
                pass

    async def test_rotates_when_due_if_asked_to(self, tmp_path: Path, app_log: LogRecords) -> None:
        settings = file_settings(tmp_path, signing_key_rotation_days=7)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            pass
        async with app.state.session_factory() as session:
            [key] = await stored_keys(session)
            key.activates_at = datetime.now(UTC) - timedelta(days=7)
            await session.commit()

        restarted = create_app(settings)
        async with restarted.router.lifespan_context(restarted):
            for _ in range(100):
                said = [r.getMessage() for r in app_log.records if "rotated:" in r.getMessage()]
                if said:
                    break
                await asyncio.sleep(0.05)

        async with restarted.state.session_factory() as session:
            states = [s.state for s in await keys_service.list_signing_keys(session=session)]
        assert len(said) == 1
        assert [state.value for state in states] == ["current", "next"]

    async def test_a_failed_rotation_round_is_logged_and_retried(
        self, tmp_path: Path, app_log: LogRecords, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(main_module, "KEY_ROTATION_CHECK_SECONDS", 0.01)
        app = create_app(file_settings(tmp_path, signing_key_rotation_days=7))
        async with app.router.lifespan_context(app):
            async with app.state.session_factory() as session:
                await session.execute(text("DROP TABLE signing_keys"))
                await session.commit()
            for _ in range(100):
                failed = [r for r in app_log.records if "rotation failed" in r.getMessage()]
                if len(failed) >= 2:
                    break
                await asyncio.sleep(0.02)

        assert len(failed) >= 2
        assert failed[0].getMessage() == "automatic signing key rotation failed; retrying later"
