"""The product app plus plain FastAPI JSON routes that do what the resolvers do.

The baseline routes exist only in the benchmark. Each calls the same service functions as
its resolver (same token decode, same session and user lookup, same page query) and answers
the same fields in the same shape, so the ratio between the two measures the GraphQL layer.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.crud.users import UserFilter
from gql_app.db import get_session
from gql_app.main import create_app
from gql_app.models import User
from gql_app.services import auth as auth_service
from gql_app.services import users as users_service
from gql_app.services.viewer import Viewer


def user_fields(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "fullName": user.full_name,
        "isActive": user.is_active,
        "isSuperuser": user.is_superuser,
        "isVerified": user.is_verified,
        "createdAt": user.created_at.isoformat(),
        "updatedAt": user.updated_at.isoformat(),
    }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message}]}, status_code=status)


async def _viewer(request: Request, session: AsyncSession) -> Viewer:
    settings: Settings = request.app.state.settings
    token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    return await auth_service.authenticate(
        session=session, settings=settings, keys=request.app.state.key_ring, access_token=token
    )


def baseline_router() -> APIRouter:
    router = APIRouter(prefix="/baseline")

    @router.get("/me")
    async def me(
        request: Request, session: Annotated[AsyncSession, Depends(get_session)]
    ) -> JSONResponse:
        viewer = await _viewer(request, session)
        return JSONResponse({"data": {"me": user_fields(viewer.user)}})

    @router.get("/users")
    async def users(
        request: Request,
        session: Annotated[AsyncSession, Depends(get_session)],
        first: int = users_service.DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> JSONResponse:
        viewer = await _viewer(request, session)
        if not viewer.user.is_superuser:
            return _error(403, "Superuser privileges required")
        page = await users_service.list_users(
            session=session, first=first, after=after, user_filter=UserFilter()
        )
        edges = [{"cursor": edge.cursor, "node": user_fields(edge.user)} for edge in page.edges]
        page_info = {
            "hasNextPage": page.has_next_page,
            "endCursor": edges[-1]["cursor"] if edges else None,
        }
        return JSONResponse({"data": {"users": {"edges": edges, "pageInfo": page_info}}})

    return router


def create_bench_app() -> FastAPI:
    app = create_app()
    app.include_router(baseline_router())
    return app
