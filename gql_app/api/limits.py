"""Caps on what one GraphQL document may ask for, beyond Strawberry's built-in limiters."""

from collections.abc import Iterator
from typing import Any

from graphql import DirectiveNode, DocumentNode, GraphQLError, Visitor, visit
from strawberry.extensions import SchemaExtension


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


class MaxDirectivesLimiter(SchemaExtension):
    """Refuse documents with more directives than any real client sends, with one error.

    Checked before validation, which would otherwise report every repeated unknown
    directive separately and do work proportional to the attacker's document.
    """

    def __init__(self, *, max_directives: int) -> None:
        self.max_directives = max_directives

    def on_validate(self) -> Iterator[None]:
        document = self.execution_context.graphql_document
        if document is not None and count_directives(document) > self.max_directives:
            self.execution_context.pre_execution_errors = [
                GraphQLError(
                    f"The document uses more than {self.max_directives} directives",
                    extensions={"code": "GRAPHQL_VALIDATION_FAILED"},
                )
            ]
        yield
