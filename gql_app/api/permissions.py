from typing import Any

from graphql import GraphQLErrorExtensions
from strawberry.permission import BasePermission

from gql_app.api.context import Info
from gql_app.api.error_codes import ErrorCode, ErrorReason


class IsAuthenticated(BasePermission):
    message = "Authentication required"
    error_extensions: GraphQLErrorExtensions | None = {  # noqa: RUF012 - typed as in BasePermission
        "code": ErrorCode.UNAUTHENTICATED,
        "reason": ErrorReason.TOKEN_MISSING,
    }

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        # Raises a typed AuthenticationError with the precise reason when the token is unusable.
        await info.context.viewer()
        return True


class IsSuperuser(BasePermission):
    message = "Superuser privileges required"
    error_extensions: GraphQLErrorExtensions | None = {  # noqa: RUF012 - typed as in BasePermission
        "code": ErrorCode.FORBIDDEN,
        "reason": ErrorReason.SUPERUSER_REQUIRED,
    }

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = await info.context.viewer()
        return viewer.user.is_superuser
