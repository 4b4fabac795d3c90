from dataclasses import dataclass, field

from gql_app.models import AuthSession, User
from gql_app.services.client_info import ClientInfo


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who makes the request: the user and the session their access token names."""

    user: User
    auth_session: AuthSession
    # Where the request comes from, for the security events it records.
    client: ClientInfo = field(default_factory=ClientInfo)
