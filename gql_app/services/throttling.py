"""Which attempts count against which rate limit; the resolvers go through here.

Every call counts, also each of many aliased fields in one document: the checks run
per field, not per HTTP request. Over a limit, RateLimitedError says how long to wait.

Login has two limits, and both count every attempt before the password is looked at, so
parallel guesses cannot all pass the check before any of them is counted. One is per client
IP; the other per account, keyed on the normalised email whether or not an account uses it:
during a lockout a correct password is refused too, and an unknown address is refused
exactly like a known one.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.errors import FieldError
from gql_app.security.rate_limit import RateLimiter, email_key, ip_key
from gql_app.services import auth as auth_service
from gql_app.services.auth import ClientInfo, Credentials, IssuedTokens
from gql_app.services.validation import normalize_email


async def login(
    *,
    session: AsyncSession,
    settings: Settings,
    credentials: Credentials,
    client: ClientInfo,
    limiter: RateLimiter,
) -> IssuedTokens:
    limits = limiter.limits
    await limiter.hit(limits.login_attempts_per_ip, ip_key(client.ip_address))
    email = normalize_email(credentials.email)
    # An invalid address has no account to protect; the login refuses it as input.
    account = None if isinstance(email, FieldError) else email_key(email)
    if account is not None:
        await limiter.hit(limits.login_attempts_per_account, account)
    return await auth_service.login(
        session=session, settings=settings, credentials=credentials, client=client
    )


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
