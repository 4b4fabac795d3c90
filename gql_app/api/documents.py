"""Each distinct GraphQL document is parsed and validated once, then reused.

Validation is most of what a small operation costs (it walks the document once per rule),
and clients send the same few documents over and over. The cache holds the outcome for a
document text, errors included, so a refused document is refused again without the work.
The document limits (tokens, directives, fields, depth, aliases, introspection) are part of
that outcome, so every request is still held to them. Each costs time linear in the document
(see document_shape), and validation as a whole runs within a time budget: a document that
takes longer is refused, and that refusal is not kept (it says more about the machine's load
than about the document).
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    ASTValidationRule,
    DirectiveNode,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    Visitor,
    parse,
    specified_rules,
    visit,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from gql_app.api.check_budget import CheckBudgetExceededError, time_budget
from gql_app.api.document_shape import ShapeLimits, shape_errors
from gql_app.api.error_codes import ErrorReason
from gql_app.config import Settings


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    max_tokens: int
    max_directives: int
    max_depth: int
    max_aliases: int
    introspection: bool
    max_fields: int
    max_fields_per_key: int
    check_budget_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> "DocumentLimits":
        return cls(
            max_tokens=settings.graphql_max_tokens,
            max_directives=settings.graphql_max_directives,
            max_depth=settings.graphql_max_depth,
            max_aliases=settings.graphql_max_aliases,
            introspection=settings.introspection_enabled,
            max_fields=settings.graphql_max_fields,
            max_fields_per_key=settings.graphql_max_fields_per_key,
            check_budget_seconds=settings.graphql_check_budget_ms / 1000,
        )

    @property
    def shape(self) -> ShapeLimits:
        return ShapeLimits(
            max_fields=self.max_fields,
            max_depth=self.max_depth,
            max_aliases=self.max_aliases,
            max_fields_per_key=self.max_fields_per_key,
        )

    def validation_rules(self) -> tuple[type[ASTValidationRule], ...]:
        if self.introspection:
            return tuple(specified_rules)
        return (*specified_rules, NoSchemaIntrospectionCustomRule)


class DocumentCache:
    """Parse and validation outcomes by document text, bounded and least-recently-used."""

    def __init__(self, *, limits: DocumentLimits, maxsize: int) -> None:
        self._limits = limits
        self._rules = limits.validation_rules()
        self._parsed = lru_cache(maxsize=maxsize)(self._parse)
        self._validated = lru_cache(maxsize=maxsize)(self._validate)

    @property
    def max_tokens(self) -> int:
        return self._limits.max_tokens

    def parse(self, query: str) -> DocumentNode | None:
        """The parsed document, or None when the text does not parse."""
        return self._parsed(query)

    def validate(self, schema: GraphQLSchema, query: str) -> list[GraphQLError]:
        try:
            return list(self._validated(schema, query))
        except CheckBudgetExceededError:
            budget_ms = round(self._limits.check_budget_seconds * 1000)
            return [
                GraphQLError(
                    f"The document could not be checked within {budget_ms} ms",
                    extensions={"reason": ErrorReason.CHECK_TIME_EXCEEDED},
                )
            ]

    def accepts(self, schema: GraphQLSchema, query: str) -> bool:
        """Whether the document parses and validates, within every limit."""
        return self.parse(query) is not None and not self.validate(schema, query)

    def _parse(self, query: str) -> DocumentNode | None:
        try:
            return parse(query, max_tokens=self._limits.max_tokens)
        except GraphQLError:
            return None

    def _validate(self, schema: GraphQLSchema, query: str) -> Sequence[GraphQLError]:
        document = self.parse(query)
        assert document is not None, "only documents that parsed are validated"
        with time_budget(self._limits.check_budget_seconds):
            # Counted first: validation would report each of thousands of unknown directives.
            if count_directives(document) > self._limits.max_directives:
                return (
                    GraphQLError(
                        f"The document uses more than {self._limits.max_directives} directives",
                        extensions={"reason": ErrorReason.TOO_MANY_DIRECTIVES},
                    ),
                )
            # Sized before validation, whose overlap rule compares merged fields pairwise.
            too_large = shape_errors(document, self._limits.shape)
            if too_large:
                return tuple(too_large)
            return tuple(validate_document(schema, document, self._rules))


class _DirectiveCounter(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
        self.count += 1


def count_directives(document: DocumentNode) -> int:
    counter = _DirectiveCounter()
    visit(document, counter)
    return counter.count


class CachedDocuments(SchemaExtension):
    """Answers Strawberry's parse and validate steps from a shared DocumentCache."""

    def __init__(self, *, cache: DocumentCache) -> None:
        self._cache = cache

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        # A text that does not parse is left to Strawberry, which parses it again under
        # the same token limit and reports the error as a parse failure.
        context.parse_options["max_tokens"] = self._cache.max_tokens
        if context.graphql_document is None and context.query:
            context.graphql_document = self._cache.parse(context.query)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.query and context.pre_execution_errors is None:
            # Setting the errors (even none) tells Strawberry validation has been done.
            context.pre_execution_errors = self._cache.validate(
                context.schema._schema, context.query
            )
        yield
