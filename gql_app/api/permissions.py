from typing import Any

from graphql import GraphQLErrorExtensions
from strawberry.permission import BasePermission

from gql_app.api.context import Info
from gql_app.api.error_codes import ErrorCode, ErrorReason
from gql_app.errors import PermissionDeniedError
from gql_app.services.recent_authentication import proves_multiple_factors


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
        if not viewer.user.is_superuser:
            return False
        second_factor = proves_multiple_factors(viewer.auth_session.auth_methods)
        if info.context.settings.require_mfa_for_superusers and not second_factor:
            raise PermissionDeniedError(ErrorReason.MFA_REQUIRED_FOR_ROLE)
        return True
