from dataclasses import dataclass

from gql_app.models import AuthSession, User


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who makes the request: the user and the session their access token names."""

    user: User
    auth_session: AuthSession
