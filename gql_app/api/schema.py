from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionContext

from gql_app.api.errors import ErrorMapping
from gql_app.api.resolvers.account import AccountMutation
from gql_app.api.resolvers.admin import AdminMutation
from gql_app.api.resolvers.auth import AuthMutation, AuthQuery
from gql_app.api.resolvers.sessions import SessionsMutation, SessionsQuery
from gql_app.api.resolvers.users import UsersQuery


@strawberry.type(description="Read operations.")
class Query(AuthQuery, SessionsQuery, UsersQuery):
    pass


@strawberry.type(description="Write operations.")
class Mutation(AuthMutation, SessionsMutation, AccountMutation, AdminMutation):
    pass


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # ErrorMapping logs what is unexpected; client mistakes are not server errors.
        return


def build_schema(**kwargs: Any) -> Schema:
    return Schema(query=Query, mutation=Mutation, extensions=[ErrorMapping], **kwargs)


schema = build_schema()
