from collections.abc import Callable
from functools import cache, partial

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from gql_app.api.documents import CachedDocuments, DocumentCache, DocumentLimits
from gql_app.api.errors import ErrorMapping
from gql_app.api.planned_execution import PlannedExecutionContext, checked_versions_installed
from gql_app.api.request_log import OperationOutcome
from gql_app.api.resolvers.account import AccountMutation
from gql_app.api.resolvers.admin import AdminMutation
from gql_app.api.resolvers.auth import AuthMutation, AuthQuery
from gql_app.api.resolvers.mfa import MfaMutation, MfaQuery
from gql_app.api.resolvers.passkeys import PasskeysMutation, PasskeysQuery
from gql_app.api.resolvers.personal_data import PersonalDataMutation
from gql_app.api.resolvers.security_events import SecurityEventsQuery
from gql_app.api.resolvers.sessions import SessionsMutation, SessionsQuery
from gql_app.api.resolvers.users import UsersQuery
from gql_app.config import Settings


@strawberry.type(description="Read operations.")
class Query(AuthQuery, SessionsQuery, UsersQuery, MfaQuery, PasskeysQuery, SecurityEventsQuery):
    pass


@strawberry.type(description="Write operations.")
class Mutation(
    AuthMutation,
    SessionsMutation,
    AccountMutation,
    AdminMutation,
    MfaMutation,
    PasskeysMutation,
    PersonalDataMutation,
):
    pass


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # ErrorMapping logs what is unexpected; client mistakes are not server errors.
        return


def schema_for(settings: Settings) -> tuple[Schema, DocumentCache]:
    """The schema an app serves, and the cache of the documents it has checked.

    Both follow from a few settings and requests only read them, so every app of the process
    built with the same ones shares them: a server builds one app, the test suite a thousand.
    """
    return _built(
        DocumentLimits.from_settings(settings),
        settings.graphql_document_cache_size,
        hide_suggestions=not settings.suggestions_enabled,
        planned=checked_versions_installed(),
    )


@cache
def _built(
    limits: DocumentLimits, cache_size: int, *, hide_suggestions: bool, planned: bool
) -> tuple[Schema, DocumentCache]:
    documents = DocumentCache(limits=limits, maxsize=cache_size)
    # One factory per extension: Strawberry builds fresh instances for every request.
    extensions: list[Callable[[], SchemaExtension]] = [
        # First in, last out: it reads the outcome after ErrorMapping has coded the errors.
        OperationOutcome,
        partial(ErrorMapping, hide_suggestions=hide_suggestions),
        partial(CachedDocuments, cache=documents),
    ]
    schema = Schema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        # Without it, Strawberry's own: graphql-core's executor for every field.
        execution_context_class=PlannedExecutionContext if planned else None,
    )
    return schema, documents


# The published contract (schema.graphql) is exported from this one; the extensions
# above do not change the SDL.
schema = Schema(query=Query, mutation=Mutation, extensions=[ErrorMapping])
