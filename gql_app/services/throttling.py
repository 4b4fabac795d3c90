"""Which attempts count against which rate limit; the resolvers go through here.

Every call counts, also each of many aliased fields in one document: the checks run
per field, not per HTTP request. Over a limit, RateLimitedError says how long to wait.

Login has two limits. One is per client IP and counts every attempt. The other is the
account lockout: it limits failed sign-ins per address, keyed on the normalised email whether
or not an account uses it. An attempt takes its place in that limit before the password is
looked at, so parallel guesses cannot all pass the check before any of them is counted; once
the password has proved right, the place is given back. Only a right password gives it back:
a wrong one and an unknown address alike keep it (so their answers stay alike, also when
the address is locked out), and so does an attempt that never got an answer (a timeout, a
crash). During a lockout a correct password is refused too: it is never looked at.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.errors import (
    DomainError,
    FieldError,
    InputValidationError,
    InvalidCredentialsError,
    MfaRequiredError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
    WrongSecondFactorError,
)
from gql_app.models import User
from gql_app.security.passkeys import PasskeyOptions
from gql_app.security.rate_limit import RateLimiter, email_key, ip_key
from gql_app.services import accounts as accounts_service
from gql_app.services import auth as auth_service
from gql_app.services import email_verification as email_verification_service
from gql_app.services import mfa_sign_in, passkey_sign_in, personal_data, security_events
from gql_app.services.auth import Credentials, IssuedTokens, Registration
from gql_app.services.client_info import ClientInfo
from gql_app.services.jobs import JobScheduler
from gql_app.services.key_ring import KeyRing
from gql_app.services.mfa_sign_in import SecondFactor
from gql_app.services.passkey_challenges import PasskeyChallengeStore
from gql_app.services.passkey_sign_in import PasskeyAssertion
from gql_app.services.validation import normalize_email
from gql_app.services.viewer import Viewer


async def login(
    *,
    session: AsyncSession,
    settings: Settings,
    keys: KeyRing,
    challenges: PasskeyChallengeStore,
    credentials: Credentials,
    client: ClientInfo,
    limiter: RateLimiter,
) -> IssuedTokens:
    limits = limiter.limits
    await limiter.hit(limits.login_attempts_per_ip, ip_key(client.ip_address))
    email = normalize_email(credentials.email)
    if isinstance(email, FieldError):
        # An invalid address has no account to protect; the login refuses it as input.
        return await auth_service.login(
            session=session,
            settings=settings,
            keys=keys,
            challenges=challenges,
            credentials=credentials,
            client=client,
        )
    attempt = await limiter.hit(limits.login_attempts_per_account, email_key(email))
    try:
        issued = await auth_service.login(
            session=session,
            settings=settings,
            keys=keys,
            challenges=challenges,
            credentials=credentials,
            client=client,
        )
    except InvalidCredentialsError:
        await _record_if_locked_out(
            session=session, settings=settings, limiter=limiter, email=email, client=client
        )
        raise
    except (PermissionDeniedError, MfaRequiredError):
        # Raised only once the password has proved right (the account is disabled, its
        # address not verified, or a second factor is due): not a guess, and the answer
        # already says as much. A wrong second factor counts on its own (complete_login).
        await limiter.give_back(attempt)
        raise
    await limiter.give_back(attempt)
    return issued


async def _record_if_locked_out(
    *,
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    email: str,
    client: ClientInfo,
) -> None:
    """After a failed attempt kept its place: when it took the last one, the address is now
    locked out, and the account's trail says so (once a lockout, not on every refusal)."""
    try:
        await limiter.check(limiter.limits.login_attempts_per_account, email_key(email))
    except RateLimitedError:
        await security_events.record_lockout(
            session=session, settings=settings, email=email, client=client
        )
    except ServiceUnavailableError:
        # The failure was answered already; an outage of the counters adds nothing to it.
        return


async def registration_attempt(*, limiter: RateLimiter, client: ClientInfo) -> None:
    await limiter.hit(limiter.limits.registrations_per_ip, ip_key(client.ip_address))


async def password_reset_request(*, limiter: RateLimiter, client: ClientInfo, email: str) -> None:
    limits = limiter.limits
    await limiter.hit(limits.password_resets_per_ip, ip_key(client.ip_address))
    normalized = normalize_email(email)
    if not isinstance(normalized, FieldError):
        # Counted for every address alike, so the answer still says nothing about accounts.
        await limiter.hit(limits.password_resets_per_email, email_key(normalized))


async def refresh_attempt(*, limiter: RateLimiter, client: ClientInfo) -> None:
    await limiter.hit(limiter.limits.refreshes_per_ip, ip_key(client.ip_address))


async def email_verification_attempt(*, limiter: RateLimiter, client: ClientInfo) -> None:
    await limiter.hit(limiter.limits.email_verifications_per_ip, ip_key(client.ip_address))


# The limited use cases: each counts the attempt, then does the work, so a resolver makes
# one call and cannot forget the limit.


async def register(
    *,
    session: AsyncSession,
    data: Registration,
    jobs: JobScheduler,
    client: ClientInfo,
    limiter: RateLimiter,
    conceal_existing: bool = False,
) -> User:
    await registration_attempt(limiter=limiter, client=client)
    return await auth_service.register(
        session=session, data=data, jobs=jobs, conceal_existing=conceal_existing
    )


async def request_password_reset(
    *, email: str, jobs: JobScheduler, client: ClientInfo, limiter: RateLimiter
) -> None:
    await password_reset_request(limiter=limiter, client=client, email=email)
    accounts_service.request_password_reset(email=email, jobs=jobs)


async def refresh(
    *,
    session: AsyncSession,
    settings: Settings,
    keys: KeyRing,
    refresh_token: str,
    client: ClientInfo,
    limiter: RateLimiter,
) -> IssuedTokens:
    await refresh_attempt(limiter=limiter, client=client)
    return await auth_service.refresh(
        session=session, settings=settings, keys=keys, refresh_token=refresh_token, client=client
    )


async def verify_email(
    *, session: AsyncSession, token: str, client: ClientInfo, limiter: RateLimiter
) -> User:
    await email_verification_attempt(limiter=limiter, client=client)
    return await email_verification_service.verify_email(
        session=session, token=token, client=client
    )


async def complete_login(
    *,
    session: AsyncSession,
    settings: Settings,
    keys: KeyRing,
    challenges: PasskeyChallengeStore,
    challenge: str,
    factor: SecondFactor,
    client: ClientInfo,
    limiter: RateLimiter,
) -> IssuedTokens:
    """As ``login`` does for passwords: a place in the account's lockout is taken before
    the factor is checked (so a locked account checks none, and parallel guesses queue
    for places), and given back unless the factor was wrong."""
    limits = limiter.limits
    await limiter.hit(limits.login_attempts_per_ip, ip_key(client.ip_address))
    email = await mfa_sign_in.challenged_account_email(session=session, challenge=challenge)
    attempt = None
    if email is not None:
        attempt = await limiter.hit(limits.login_attempts_per_account, email_key(email))
    try:
        issued = await mfa_sign_in.complete_login(
            session=session,
            settings=settings,
            keys=keys,
            challenges=challenges,
            challenge=challenge,
            factor=factor,
            client=client,
        )
    except WrongSecondFactorError as wrong:
        await _record_if_locked_out(
            session=session, settings=settings, limiter=limiter, email=wrong.email, client=client
        )
        raise
    except DomainError:
        if attempt is not None:
            await limiter.give_back(attempt)
        raise
    if attempt is not None:
        await limiter.give_back(attempt)
    return issued


async def reauthenticate(
    *,
    session: AsyncSession,
    settings: Settings,
    challenges: PasskeyChallengeStore,
    viewer: Viewer,
    password: str | None,
    factor: SecondFactor | None,
    client: ClientInfo,
    limiter: RateLimiter,
) -> None:
    """Limited like a sign-in: per client address, and a place in the account's lockout
    taken before the password or factor is checked, kept only when it was wrong."""
    async with _proof_of_the_viewer(
        session=session,
        settings=settings,
        viewer=viewer,
        client=client,
        limiter=limiter,
        wrong=(InvalidCredentialsError, WrongSecondFactorError),
    ):
        await mfa_sign_in.reauthenticate(
            session=session,
            settings=settings,
            challenges=challenges,
            viewer=viewer,
            password=password,
            factor=factor,
        )


@asynccontextmanager
async def _proof_of_the_viewer(
    *,
    session: AsyncSession,
    settings: Settings,
    viewer: Viewer,
    client: ClientInfo,
    limiter: RateLimiter,
    wrong: tuple[type[DomainError], ...],
) -> AsyncIterator[None]:
    """A signed-in session proving its password or factor again, counted as a sign-in is:
    per client address, and a place in the account's lockout taken first and kept only
    when the proof was ``wrong``."""
    limits = limiter.limits
    email = viewer.user.email
    await limiter.hit(limits.login_attempts_per_ip, ip_key(client.ip_address))
    attempt = await limiter.hit(limits.login_attempts_per_account, email_key(email))
    try:
        yield
    except wrong:
        await _record_if_locked_out(
            session=session, settings=settings, limiter=limiter, email=email, client=client
        )
        raise
    except DomainError:
        await limiter.give_back(attempt)
        raise
    await limiter.give_back(attempt)


async def start_passkey_sign_in(
    *,
    session: AsyncSession,
    settings: Settings,
    challenges: PasskeyChallengeStore,
    client: ClientInfo,
    limiter: RateLimiter,
) -> PasskeyOptions:
    """Counted as a sign-in attempt of the client's address: each start keeps a challenge."""
    await limiter.hit(limiter.limits.login_attempts_per_ip, ip_key(client.ip_address))
    return await passkey_sign_in.start_passkey_sign_in(
        session=session, settings=settings, challenges=challenges
    )


async def finish_passkey_sign_in(
    *,
    session: AsyncSession,
    settings: Settings,
    keys: KeyRing,
    challenges: PasskeyChallengeStore,
    assertion: PasskeyAssertion,
    client: ClientInfo,
    limiter: RateLimiter,
) -> IssuedTokens:
    """Counted per client address. No place in an account's lockout: a signature cannot be
    guessed, and the account is known only once it has been checked."""
    await limiter.hit(limiter.limits.login_attempts_per_ip, ip_key(client.ip_address))
    return await passkey_sign_in.finish_passkey_sign_in(
        session=session,
        settings=settings,
        keys=keys,
        challenges=challenges,
        assertion=assertion,
        client=client,
    )


async def delete_me(
    *,
    session: AsyncSession,
    settings: Settings,
    viewer: Viewer,
    password: str,
    jobs: JobScheduler,
    client: ClientInfo,
    limiter: RateLimiter,
) -> None:
    """Limited as reauthenticate is: a session guessing its account's password to delete it
    meets the account's lockout. The confirmation goes to the address the account had."""
    async with _proof_of_the_viewer(
        session=session,
        settings=settings,
        viewer=viewer,
        client=client,
        limiter=limiter,
        wrong=(InputValidationError,),
    ):
        deleted_email = await personal_data.delete_me(
            session=session, settings=settings, viewer=viewer, password=password
        )
    if deleted_email is not None:
        jobs.schedule(personal_data.deliver_account_deleted_notice, email=deleted_email)
