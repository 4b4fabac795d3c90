from gql_app.models.auth_session import AuthSession
from gql_app.models.base import Base
from gql_app.models.user import User

__all__ = ["AuthSession", "Base", "User"]
