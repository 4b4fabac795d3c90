"""Parse and validation outcomes are kept per document text, with every limit still applied."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from graphql import get_introspection_query

from gql_app.api import documents
from gql_app.api.check_budget import CheckBudgetExceededError
from gql_app.api.documents import DocumentCache, DocumentLimits
from gql_app.api.schema import schema
from gql_app.config import Settings
from tests.graphql import GraphQLClient

LIMITS = DocumentLimits(
    max_tokens=200,
    max_directives=3,
    max_depth=5,
    max_aliases=2,
    introspection=False,
    max_fields=50,
    max_fields_per_key=5,
    check_budget_seconds=5,
)
ME = "{ me { id email } }"


@pytest.fixture
def cache() -> DocumentCache:
    return DocumentCache(limits=LIMITS, maxsize=2)


class TestParse:
    def test_a_repeated_text_is_parsed_once(self, cache: DocumentCache) -> None:
        assert cache.parse(ME) is cache.parse(ME)

    def test_a_text_that_does_not_parse_gives_none(self, cache: DocumentCache) -> None:
        assert cache.parse("{ me { ") is None

    def test_a_text_over_the_token_limit_does_not_parse(self, cache: DocumentCache) -> None:
        assert cache.parse("{ " + "__typename " * 300 + "}") is None

    def test_the_least_recently_used_text_is_forgotten(self, cache: DocumentCache) -> None:
        first = cache.parse(ME)
        cache.parse("{ __typename }")
        cache.parse("{ users { totalCount } }")

        assert cache.parse(ME) is not first


class TestValidate:
    def test_a_valid_document_has_no_errors(self, cache: DocumentCache) -> None:
        assert cache.validate(schema._schema, ME) == []

    def test_errors_are_kept_and_handed_out_as_a_fresh_list(self, cache: DocumentCache) -> None:
        first = cache.validate(schema._schema, "{ nope }")
        first.clear()

        again = cache.validate(schema._schema, "{ nope }")

        assert [error.message for error in again] == ["Cannot query field 'nope' on type 'Query'."]

    @pytest.mark.parametrize(
        ("document", "message"),
        [
            pytest.param("{ a: __typename b: __typename c: __typename }", "aliases", id="aliases"),
            pytest.param("{ users { edges { node { sessions { id } } } } }", "", id="unknown"),
            pytest.param(
                "{ __typename @include(if: true) @include(if: true) @skip(if: false)"
                " @skip(if: false) }",
                "directives",
                id="directives",
            ),
            pytest.param("{ __schema { types { name } } }", "introspection", id="introspection"),
        ],
    )
    def test_limits_are_part_of_the_outcome(
        self, cache: DocumentCache, document: str, message: str
    ) -> None:
        for _ in range(2):
            errors = cache.validate(schema._schema, document)

            assert errors
            assert message in " ".join(error.message for error in errors).lower()

    def test_depth_is_limited(self) -> None:
        shallow = DocumentCache(limits=replace(LIMITS, max_depth=2), maxsize=2)

        errors = shallow.validate(schema._schema, "{ users { edges { node { id } } } }")

        assert ["depth" in error.message for error in errors] == [True]


class TestCheckBudget:
    def test_a_check_past_its_budget_is_refused_with_a_reason(self) -> None:
        # Introspection's document takes milliseconds to check: a thousand times the budget.
        limits = replace(LIMITS, max_tokens=2000, max_fields=1000, check_budget_seconds=1e-6)
        cache = DocumentCache(limits=limits, maxsize=2)

        errors = cache.validate(schema._schema, get_introspection_query())

        assert [(error.extensions or {}).get("reason") for error in errors] == [
            "CHECK_TIME_EXCEEDED"
        ]

    def test_a_refusal_for_time_is_not_kept(
        self, cache: DocumentCache, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        slow_once = [True]

        @contextmanager
        def budget(seconds: float) -> Iterator[None]:
            if slow_once.pop() if slow_once else False:
                raise CheckBudgetExceededError
            yield

        monkeypatch.setattr(documents, "time_budget", budget)

        refused = cache.validate(schema._schema, ME)
        again = cache.validate(schema._schema, ME)

        assert [(error.extensions or {}).get("reason") for error in refused] == [
            "CHECK_TIME_EXCEEDED"
        ]
        assert again == []


class TestThroughTheApi:
    async def test_the_same_mistake_is_answered_the_same_way_twice(
        self, gql: GraphQLClient
    ) -> None:
        answers = [await gql("{ me { nope } }") for _ in range(2)]

        assert answers[0].errors == answers[1].errors
        assert answers[0].error_codes == ["GRAPHQL_VALIDATION_FAILED"]

    def test_limits_come_from_the_settings(self, settings: Settings) -> None:
        limits = DocumentLimits.from_settings(settings)

        assert (
            limits.max_tokens,
            limits.max_directives,
            limits.max_depth,
            limits.max_fields,
            limits.max_fields_per_key,
            limits.check_budget_seconds * 1000,
        ) == (
            settings.graphql_max_tokens,
            settings.graphql_max_directives,
            settings.graphql_max_depth,
            settings.graphql_max_fields,
            settings.graphql_max_fields_per_key,
            settings.graphql_check_budget_ms,
        )
        assert limits.introspection is settings.introspection_enabled
