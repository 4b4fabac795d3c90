"""How large a document is once its fragments are spread, measured without re-walking them.

A few hundred tokens of fragments that spread each other thirty times over, eight levels
deep, stand for 30**8 fields. A limit that follows every spread path again (as Strawberry's
depth and alias limiters do) spends that many steps before refusing anything. Here each
fragment is sized once and its size reused wherever it is spread, so the expanded size costs
one pass over the document; only when it is small are the other measures taken, on the
expansion itself, which is then small too.

The measures follow how a document executes: fields under the same result key at one place of
the result are merged, and a fragment spread twice at one place counts once. Validation's
overlap rule compares every pair of fields merged under one key, so that number is limited
too, and with it the one part of validation whose cost grows faster than the document.

Every walk here keeps its own stack: nesting and fragment chains never recurse in Python.
"""

from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

from gql_app.api.error_codes import ErrorReason

Definition = OperationDefinitionNode | FragmentDefinitionNode


@dataclass(frozen=True, slots=True)
class ShapeLimits:
    max_fields: int
    max_depth: int
    max_aliases: int
    max_fields_per_key: int


@dataclass(frozen=True, slots=True)
class _Contents:
    """What one definition holds itself, and which fragments it spreads how often."""

    fields: int
    spreads: Counter[str]


def shape_errors(document: DocumentNode, limits: ShapeLimits) -> list[GraphQLError]:
    """Why the document is too large to validate or run, or [] when it is within limits.

    Unknown fragments are left to validation, which names them.
    """
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    operations = [
        definition
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    ]
    contents = {name: _contents(fragment) for name, fragment in fragments.items()}
    cycle = _fragment_cycle(contents)
    if cycle is not None:
        names = " -> ".join(f"'{name}'" for name in cycle)
        return [_error(f"Fragments spread themselves: {names}", ErrorReason.FRAGMENT_CYCLE)]
    unused = _unused_fragments(operations, contents)
    if unused:
        # Validation would refuse them too, but would first compare their fields pairwise,
        # and nothing below measures a fragment that no operation spreads.
        return [GraphQLError(f"Fragment '{name}' is never used.") for name in unused]
    sizes = _expanded_sizes(contents, cap=limits.max_fields)
    fields = 0
    for operation in operations:
        own = _contents(operation)
        fields += own.fields + sum(
            count * sizes.get(name, 0) for name, count in own.spreads.items()
        )
        if fields > limits.max_fields:
            return [
                _error(
                    f"The document selects more than {limits.max_fields} fields "
                    "with its fragments spread",
                    ErrorReason.TOO_MANY_FIELDS,
                )
            ]
    return _merged_errors(operations, fragments, limits)


def _error(message: str, reason: ErrorReason) -> GraphQLError:
    return GraphQLError(message, extensions={"reason": reason})


def _selection_sets(definition: Definition) -> Iterator[SelectionSetNode]:
    """Every selection set inside a definition, without entering spread fragments."""
    stack = [definition.selection_set]
    while stack:
        selection_set = stack.pop()
        yield selection_set
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
                stack.append(selection.selection_set)


def _contents(definition: Definition) -> _Contents:
    fields = 0
    spreads: Counter[str] = Counter()
    for selection_set in _selection_sets(definition):
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                fields += 1
            elif isinstance(selection, FragmentSpreadNode):
                spreads[selection.name.value] += 1
    return _Contents(fields=fields, spreads=spreads)


def _fragment_cycle(contents: Mapping[str, _Contents]) -> list[str] | None:
    """A chain of fragments that leads back to its start, if the spreads make one."""
    finished: set[str] = set()
    for start in contents:
        if start in finished:
            continue
        path = [start]
        pending = [iter(contents[start].spreads)]
        while pending:
            name = next(pending[-1], None)
            if name is None:
                pending.pop()
                finished.add(path.pop())
            elif name in path:
                return [*path[path.index(name) :], name]
            elif name in contents and name not in finished:
                path.append(name)
                pending.append(iter(contents[name].spreads))
    return None


def _unused_fragments(
    operations: list[OperationDefinitionNode], contents: Mapping[str, _Contents]
) -> list[str]:
    pending = [name for operation in operations for name in _contents(operation).spreads]
    reached: set[str] = set()
    while pending:
        name = pending.pop()
        if name in contents and name not in reached:
            reached.add(name)
            pending.extend(contents[name].spreads)
    return [name for name in contents if name not in reached]


def _expanded_sizes(contents: Mapping[str, _Contents], *, cap: int) -> dict[str, int]:
    """Fields per fragment with every spread written out, each fragment sized once.

    Sizes stop growing past ``cap``: beyond it the exact number does not matter, and 30**8
    need not be computed to be refused.
    """
    sizes: dict[str, int] = {}
    for start in contents:
        stack = [start]
        while stack:
            name = stack[-1]
            if name in sizes:
                stack.pop()
                continue
            waiting = [
                spread
                for spread in contents[name].spreads
                if spread in contents and spread not in sizes
            ]
            if waiting:
                stack.extend(waiting)
                continue
            stack.pop()
            own = contents[name]
            size = own.fields + sum(
                count * sizes.get(spread, 0) for spread, count in own.spreads.items()
            )
            sizes[name] = min(size, cap + 1)
    return sizes


@dataclass
class _MergedTotals:
    deepest: int = 0
    aliases: int = 0
    widest_key: int = 0


def _merged_errors(
    operations: list[OperationDefinitionNode],
    fragments: Mapping[str, FragmentDefinitionNode],
    limits: ShapeLimits,
) -> list[GraphQLError]:
    totals = _MergedTotals()
    for operation in operations:
        _measure_merged(operation, fragments, totals)
    errors = []
    if totals.deepest > limits.max_depth:
        errors.append(
            _error(
                f"The document exceeds the maximum depth of {limits.max_depth}",
                ErrorReason.TOO_DEEP,
            )
        )
    if totals.aliases > limits.max_aliases:
        errors.append(
            _error(
                f"{totals.aliases} aliases found; at most {limits.max_aliases} are allowed",
                ErrorReason.TOO_MANY_ALIASES,
            )
        )
    if totals.widest_key > limits.max_fields_per_key:
        errors.append(
            _error(
                f"{totals.widest_key} fields answer under one result key; at most "
                f"{limits.max_fields_per_key} may",
                ErrorReason.TOO_MANY_REPEATED_FIELDS,
            )
        )
    return errors


def _measure_merged(
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    totals: _MergedTotals,
) -> None:
    """Walk the operation as it executes: one place of the result at a time.

    A place is the selection sets merged there. Its depth counts the fields above it; below
    an introspection field nothing counts (that nesting follows the type system), as in
    Strawberry's depth limiter. None marks such places.
    """
    places: list[tuple[list[SelectionSetNode], int | None]] = [([operation.selection_set], 0)]
    while places:
        selection_sets, depth = places.pop()
        by_key: defaultdict[str, list[FieldNode]] = defaultdict(list)
        spread_here: set[str] = set()
        while selection_sets:
            for selection in selection_sets.pop().selections:
                if isinstance(selection, FieldNode):
                    by_key[(selection.alias or selection.name).value].append(selection)
                    totals.aliases += selection.alias is not None
                elif isinstance(selection, InlineFragmentNode):
                    selection_sets.append(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    if name in fragments and name not in spread_here:
                        spread_here.add(name)
                        selection_sets.append(fragments[name].selection_set)
        for fields in by_key.values():
            totals.widest_key = max(totals.widest_key, len(fields))
            below = [field.selection_set for field in fields if field.selection_set]
            if not below:
                continue
            counted = None if depth is None or is_introspection(fields[0]) else depth + 1
            if counted is not None:
                totals.deepest = max(totals.deepest, counted)
            places.append((below, counted))


def is_introspection(field: FieldNode) -> bool:
    return field.name.value.startswith("__")
