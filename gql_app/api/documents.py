"""Each distinct GraphQL document is parsed and validated once, then reused.

Validation is most of what a small operation costs (it walks the document once per rule),
and clients send the same few documents over and over. The cache holds the outcome for a
document text, errors included, so a refused document is refused again without the work.
The document limits (tokens, directives, depth, aliases, introspection) are part of that
outcome, so every request is still held to them.
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
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.schema import validate_document

from gql_app.config import Settings


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    max_tokens: int
    max_directives: int
    max_depth: int
    max_aliases: int
    introspection: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> "DocumentLimits":
        return cls(
            max_tokens=settings.graphql_max_tokens,
            max_directives=settings.graphql_max_directives,
            max_depth=settings.graphql_max_depth,
            max_aliases=settings.graphql_max_aliases,
            introspection=settings.introspection_enabled,
        )

    def validation_rules(self) -> tuple[type[ASTValidationRule], ...]:
        limiters = [
            QueryDepthLimiter(max_depth=self.max_depth),
            MaxAliasesLimiter(max_alias_count=self.max_aliases),
        ]
        if not self.introspection:
            limiters.append(DisableIntrospection())
        return (*specified_rules, *(rule for x in limiters for rule in x.validation_rules))


class DocumentCache:
    """Parse and validation outcomes by document text, bounded and least-recently-used."""

    @classmethod
    def from_settings(cls, settings: Settings) -> "DocumentCache":
        return cls(
            limits=DocumentLimits.from_settings(settings),
            maxsize=settings.graphql_document_cache_size,
        )

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
        return list(self._validated(schema, query))

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
        # Counted first: validation would report each of thousands of unknown directives.
        if count_directives(document) > self._limits.max_directives:
            return (
                GraphQLError(
                    f"The document uses more than {self._limits.max_directives} directives"
                ),
            )
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
