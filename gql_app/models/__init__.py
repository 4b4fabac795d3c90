from gql_app.models.action_token import ActionToken, ActionTokenPurpose
from gql_app.models.auth_session import AuthSession
from gql_app.models.base import Base
from gql_app.models.mfa import MfaChallenge, RecoveryCode, TotpFactor
from gql_app.models.passkey import Passkey, PasskeyChallenge
from gql_app.models.refresh_token import RefreshToken
from gql_app.models.security_event import SecurityEvent
from gql_app.models.signing_key import SigningKey
from gql_app.models.user import User

__all__ = [
    "ActionToken",
    "ActionTokenPurpose",
    "AuthSession",
    "Base",
    "MfaChallenge",
    "Passkey",
    "PasskeyChallenge",
    "RecoveryCode",
    "RefreshToken",
    "SecurityEvent",
    "SigningKey",
    "TotpFactor",
    "User",
]
