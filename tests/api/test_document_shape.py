"""Document limits cost time linear in the document, however its fragments are combined.

Work is counted, not timed: the number of Python and C function calls made while a document
is parsed and checked is the same on every machine, so the bounds below are deterministic.
"""

import itertools
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from graphql import get_introspection_query, parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gql_app.api.document_shape import ShapeLimits, shape_errors
from gql_app.api.documents import DocumentCache, DocumentLimits
from gql_app.api.schema import schema

LIMITS = DocumentLimits(
    max_tokens=2000,
    max_directives=10,
    max_depth=10,
    max_aliases=15,
    introspection=True,
    max_fields=1000,
    max_fields_per_key=20,
    # The bounds here are about the algorithms; the budget must not cut a count short.
    check_budget_seconds=60,
)
SHAPE = LIMITS.shape
# Calls a check may make for any document within the token limit: four times what the
# largest accepted documents cost, and a millionth of what the fan-out below cost before.
WORK_BOUND = 600_000
PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fan_out(levels: int, spreads: int) -> str:
    """The reported document: fragment A spreads B ``spreads`` times, B spreads C, ..."""
    letters = [f"F{level}" for level in range(levels + 1)]
    fragments = " ".join(
        f"fragment {name} on Query {{ {f' ...{below}' * spreads} }}"
        for name, below in itertools.pairwise(letters)
    )
    return (
        f"query {{ ...{letters[0]} }} {fragments} fragment {letters[-1]} on Query {{ __typename }}"
    )


def calls_made(work: Callable[[], Any]) -> int:
    count = 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal count
        if event in {"call", "c_call"}:
            count += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        work()
    finally:
        sys.setprofile(previous)
    return count


def check(document: str, limits: DocumentLimits = LIMITS) -> list[str]:
    """Parse and check as a request does; the errors' reasons (or messages)."""
    cache = DocumentCache(limits=limits, maxsize=2)
    if cache.parse(document) is None:
        return ["does not parse"]
    return [
        str((error.extensions or {}).get("reason") or error.message)
        for error in cache.validate(schema._schema, document)
    ]


def check_work(document: str) -> int:
    return calls_made(lambda: check(document))


def reasons(document: str, limits: ShapeLimits = SHAPE) -> list[str]:
    return [
        str((error.extensions or {})["reason"]) for error in shape_errors(parse(document), limits)
    ]


class TestTheReportedDocument:
    def test_the_fragment_fan_out_is_refused_for_its_expanded_size(self) -> None:
        assert check(fan_out(levels=8, spreads=30)) == ["TOO_MANY_FIELDS"]

    def test_refusing_it_costs_about_what_parsing_it_does(self) -> None:
        document = fan_out(levels=8, spreads=30)
        parsing = calls_made(lambda: parse(document, max_tokens=2000))

        assert check_work(document) < 3 * parsing

    @pytest.mark.parametrize("levels", [2, 4, 8])
    def test_work_grows_with_the_text_not_with_the_expansion(self, levels: int) -> None:
        # 30**2 to 30**8 fields spread out; the text grows by one fragment per level.
        assert check_work(fan_out(levels=levels, spreads=30)) < 40_000 * levels


class TestExpandedSize:
    def test_each_spread_counts_its_fragment_again(self) -> None:
        fragment = "fragment F on User { id email }"
        spread = " ".join("...F" for _ in range(6))
        document = f"{{ me {{ {spread} }} }} {fragment}"

        # me, and six times id and email.
        assert reasons(document, replace(SHAPE, max_fields=13)) == []
        assert reasons(document, replace(SHAPE, max_fields=12)) == ["TOO_MANY_FIELDS"]

    def test_fields_in_inline_fragments_and_nested_selections_count(self) -> None:
        document = "{ me { ... on User { id ... on User { email } } } users { totalCount } }"

        assert reasons(document, replace(SHAPE, max_fields=5)) == []
        assert reasons(document, replace(SHAPE, max_fields=4)) == ["TOO_MANY_FIELDS"]

    def test_every_operation_of_the_document_counts(self) -> None:
        document = "query A { me { id } } query B { me { id } }"

        assert reasons(document, replace(SHAPE, max_fields=3)) == ["TOO_MANY_FIELDS"]


class TestFragmentGraphs:
    def test_a_cycle_is_refused_and_named(self) -> None:
        document = "{ me { ...A } } fragment A on User { id ...B } fragment B on User { ...A }"

        errors = shape_errors(parse(document), SHAPE)

        assert [error.message for error in errors] == [
            "Fragments spread themselves: 'A' -> 'B' -> 'A'"
        ]

    def test_a_fragment_spreading_itself_is_a_cycle(self) -> None:
        assert reasons("{ me { ...A } } fragment A on User { ...A }") == ["FRAGMENT_CYCLE"]

    def test_a_long_chain_of_fragments_is_measured_without_recursion(self) -> None:
        chain = " ".join(f"fragment F{i} on User {{ f{i}: id ...F{i + 1} }}" for i in range(400))
        document = f"{{ me {{ ...F0 }} }} {chain} fragment F400 on User {{ id }}"

        assert reasons(document) == ["TOO_MANY_ALIASES"]

    def test_unknown_fragments_are_left_to_validation(self) -> None:
        assert reasons("{ me { ...Missing } }") == []
        assert check("{ me { ...Missing } }") == ["Unknown fragment 'Missing'."]

    def test_a_fragment_no_operation_spreads_is_refused_before_validation(self) -> None:
        # Validation would compare its 300 fields pairwise before noticing it is unused.
        document = "{ me { id } } fragment Unused on User { " + "id " * 300 + "}"

        assert check(document) == ["Fragment 'Unused' is never used."]
        assert check_work(document) < 200_000

    def test_fragments_shared_by_several_places_are_sized_once(self) -> None:
        shared = "fragment S on User { id email fullName }"
        users = "users { edges { node { ...S } } }"
        document = f"{{ me {{ ...S }} {users} }} {shared}"

        assert reasons(document) == []


class TestMergedMeasures:
    def test_depth_counts_the_fields_above_each_place(self) -> None:
        document = "{ users { edges { node { id } } } }"

        assert reasons(document, replace(SHAPE, max_depth=3)) == []
        assert reasons(document, replace(SHAPE, max_depth=2)) == ["TOO_DEEP"]

    def test_depth_follows_spreads_and_inline_fragments(self) -> None:
        document = (
            "{ ...Q } fragment Q on Query { users { ... on UserConnection { edges { cursor } } } }"
        )

        assert reasons(document, replace(SHAPE, max_depth=2)) == []
        assert reasons(document, replace(SHAPE, max_depth=1)) == ["TOO_DEEP"]

    def test_introspection_nesting_does_not_count(self) -> None:
        document = get_introspection_query(descriptions=True, directive_is_repeatable=True)

        assert reasons(document, replace(SHAPE, max_depth=1)) == []
        assert check(document) == []

    def test_aliases_count_once_per_place_they_are_spread_to(self) -> None:
        fragment = "fragment F on User { a: id b: email }"
        document = f"{{ me {{ ...F ...F }} users {{ edges {{ node {{ ...F }} }} }} }} {fragment}"

        assert reasons(document, replace(SHAPE, max_aliases=4)) == []
        assert reasons(document, replace(SHAPE, max_aliases=3)) == ["TOO_MANY_ALIASES"]

    def test_fields_merged_under_one_key_are_counted_across_fragments(self) -> None:
        fragments = " ".join(f"fragment F{i} on User {{ id }}" for i in range(5))
        spreads = " ".join(f"...F{i}" for i in range(5))
        document = f"{{ me {{ id ... on User {{ id }} {spreads} }} }} {fragments}"

        assert reasons(document, replace(SHAPE, max_fields_per_key=7)) == []
        assert reasons(document, replace(SHAPE, max_fields_per_key=6)) == [
            "TOO_MANY_REPEATED_FIELDS"
        ]

    def test_fields_merged_from_sibling_selections_are_counted_together(self) -> None:
        document = "{ " + " ".join("me { id }" for _ in range(4)) + " }"

        assert reasons(document, replace(SHAPE, max_fields_per_key=3)) == [
            "TOO_MANY_REPEATED_FIELDS"
        ]

    def test_each_limit_is_reported_once(self) -> None:
        document = "{ " + " ".join(f"a{i}: me {{ id id id }}" for i in range(3)) + " }"

        assert reasons(
            document, ShapeLimits(max_fields=100, max_depth=0, max_aliases=2, max_fields_per_key=2)
        ) == ["TOO_DEEP", "TOO_MANY_ALIASES", "TOO_MANY_REPEATED_FIELDS"]

    def test_what_validation_spends_most_on_is_refused_before_it_runs(self) -> None:
        # 300 copies of one field: the overlap rule would compare 45,000 pairs.
        document = "{ " + "me { id } " * 300 + "}"

        assert check(document) == ["TOO_MANY_REPEATED_FIELDS"]
        assert check_work(document) < 200_000


USER_LEAVES = ["id", "email", "fullName", "isActive", "__typename"]
NAMES = st.sampled_from(["a", "b", "c", "x1", "y2"])
REPEATS = st.sampled_from([1, 1, 2, 3, 10, 40])


@st.composite
def fragment_graph_documents(draw: st.DrawFn) -> str:
    """Fragments on User spreading each other, wide and deep, with leaves and aliases."""
    count = draw(st.integers(min_value=2, max_value=10))
    definitions = []
    for index in range(count):
        # Each fragment spreads the next, so none is unused (validation refuses those early).
        selections = [f"...F{index + 1}"] if index + 1 < count else []
        for _ in range(draw(st.integers(min_value=1, max_value=4))):
            kind = draw(st.sampled_from(["leaf", "alias", "spread", "spread", "inline"]))
            later = list(range(index + 1, count))
            if kind == "spread" and later:
                selection = f"...F{draw(st.sampled_from(later))}"
            elif kind == "alias":
                selection = f"{draw(NAMES)}: {draw(st.sampled_from(USER_LEAVES))}"
            elif kind == "inline" and later:
                selection = f"... on User {{ ...F{draw(st.sampled_from(later))} id }}"
            else:
                selection = draw(st.sampled_from(USER_LEAVES))
            selections.extend([selection] * draw(REPEATS))
        definitions.append(f"fragment F{index} on User {{ {' '.join(selections)} }}")
    places = draw(
        st.sampled_from(["me { ...F0 }", "users { edges { node { ...F0 } } } me { ...F0 }"])
    )
    return f"{{ {places} }} {' '.join(definitions)}"


@st.composite
def mixed_documents(draw: st.DrawFn) -> str:
    """Nested inline fragments, repeated and aliased selections and fan-out, mixed."""
    depth = draw(st.integers(min_value=0, max_value=30))
    inner = " ".join(draw(st.lists(st.sampled_from(USER_LEAVES), min_size=1, max_size=5)))
    for _ in range(depth):
        wrapper = draw(st.sampled_from(["... on User {{ {} }}", "{} ... on User {{ {} }}"]))
        inner = wrapper.format(inner, inner) if wrapper.count("{}") == 2 else wrapper.format(inner)
        if len(inner) > 800:
            break
    repeated = draw(st.integers(min_value=1, max_value=30))
    alias = draw(st.booleans())
    fields = " ".join(
        f"{'m' + str(i) + ': ' if alias and i < 20 else ''}me {{ {inner} }}"
        for i in range(repeated)
    )
    fan = draw(st.integers(min_value=0, max_value=6))
    spreads = draw(st.integers(min_value=1, max_value=40))
    if fan:
        fragments = " ".join(
            f"fragment G{level} on Query {{ {' '.join([f'...G{level + 1}'] * spreads)} }}"
            for level in range(fan)
        )
        return f"{{ {fields} ...G0 }} {fragments} fragment G{fan} on Query {{ me {{ id }} }}"
    return f"{{ {fields} }}"


@pytest.mark.slow
class TestBoundedWork:
    @PROPERTY_SETTINGS
    @given(levels=st.integers(min_value=1, max_value=12), spreads=st.integers(1, 60))
    def test_fan_out_of_any_width_and_depth(self, levels: int, spreads: int) -> None:
        assert check_work(fan_out(levels=levels, spreads=spreads)) <= WORK_BOUND

    @PROPERTY_SETTINGS
    @given(document=fragment_graph_documents())
    def test_fragment_graphs(self, document: str) -> None:
        assert check_work(document) <= WORK_BOUND

    @PROPERTY_SETTINGS
    @given(document=mixed_documents())
    def test_mixed_documents(self, document: str) -> None:
        assert check_work(document) <= WORK_BOUND

    def test_the_largest_accepted_documents_stay_well_within_the_bound(self) -> None:
        user = "id email fullName isActive isSuperuser isVerified createdAt updatedAt"
        largest = "{ " + f"users {{ edges {{ node {{ {user} }} }} }} " * 20 + "}"

        assert check(largest) == []
        assert check_work(largest) <= WORK_BOUND / 4
