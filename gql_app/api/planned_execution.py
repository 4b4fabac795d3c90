"""graphql-core's executor, with a planned shortcut for plain fields.

Most of a page of results is plain fields: an attribute of a Strawberry type read as it is
(``email``, ``createdAt``, ``cursor``, ``node``). graphql-core gives each of them the whole
per-field machinery: a ``Path``, a ``GraphQLResolveInfo`` of fifteen members, the middleware
lookup, the resolver's call through Strawberry's wrapper, and two or three levels of
``complete_value``, about 3 µs a field; a page of 100 users is about 1,000 fields.

This executor decides once per grouped field set (the fields of one selection on one type,
which graphql-core memoizes by identity for a whole list of items) which fields are plain:

- a leaf or an object, or a list of objects, read with Strawberry's default resolver from an
  attribute (no resolver of its own, no permission classes or other field extensions, no
  exception handlers, no arguments, Strawberry's own ``get_result``), of an object type
  without ``is_type_of`` and without directives on the field other than @skip and @include;
- ``__typename``.

A plain leaf is read and coerced directly. A plain object (or each object of a plain list) has
its subfields collected and executed by this same planned path. Fields that are not plain go
to graphql-core's own ``execute_field``. A plain field whose value is not what the shortcut
handles (null where the type says non-null, ``Undefined``, an awaitable, an exception, a
coercion that fails or gives null, a list that is not a list or holds any of those) has the
value it read completed by graphql-core's ``complete_value`` exactly as ``execute_field``
completes a resolver's result, so it is never read twice, and its errors, their messages and
paths, and null propagation are exactly graphql-core's. Errors raised below a planned object
are handled by graphql-core's ``handle_field_error`` at the path and with the type graphql-core
would use, and awaitables are gathered the same way.

The shortcut is off when any middleware is installed (a schema extension with a ``resolve``
hook), since middleware wraps every resolver, plain or not. Incremental delivery (@defer and
@stream) runs on another executor; the schema does not use this one then.

graphql-core's executor methods are not public API: graphql-core and Strawberry are pinned
exactly in the lock files, and ``tests/api/test_planned_execution.py`` fails when either
version changes, asking for the differential tests and the benchmark to be run again. An
install with other versions (the package itself accepts a range) does not use this module:
``checked_versions_installed`` says so, and the app then runs graphql-core's executor alone.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, auto
from functools import cache
from importlib import metadata
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLField,
    GraphQLID,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    TypeNameMetaFieldDef,
    get_nullable_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.execution.executor import to_nodes
from graphql.pyutils import Path, Undefined, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

# The versions whose executor internals this module was written and tested against.
CHECKED_VERSIONS: Mapping[str, str] = {"graphql-core": "3.3.2", "strawberry-graphql": "0.341.2"}


def installed_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in CHECKED_VERSIONS}


@cache
def checked_versions_installed() -> bool:
    """Whether the installed graphql-core and Strawberry are the ones this was checked with."""
    return installed_versions() == CHECKED_VERSIONS


# Values that are never awaitable, exceptions or null: coerced without asking.
_PLAIN_VALUE_TYPES = frozenset({str, int, float, bool})
# graphql-core's own scalars give these values back unchanged (an exact str for String).
_UNCHANGED_BY_COERCION: dict[GraphQLNamedType, frozenset[type]] = {
    GraphQLString: frozenset({str}),
    GraphQLID: frozenset({str}),
    GraphQLBoolean: frozenset({bool}),
}
# The directives graphql-core has already applied when it collected the fields.
_COLLECTION_DIRECTIVES = frozenset({"skip", "include"})


class _Kind(Enum):
    LEAF = auto()
    OBJECT = auto()
    OBJECT_LIST = auto()
    TYPENAME = auto()


@dataclass(frozen=True, slots=True)
class _PlainField:
    """How to complete one plain field of one type, decided from the schema alone."""

    kind: _Kind
    field_def: GraphQLField
    attribute: str
    return_type: GraphQLOutputType
    non_null: bool
    coerce: Callable[[Any], Any] | None = None
    # Python types whose values the leaf's coercion gives back as they are (str for String).
    unchanged: frozenset[type] = frozenset()
    object_type: GraphQLObjectType | None = None
    # The type of a list's items, as graphql-core hands it to handle_field_error.
    item_type: GraphQLOutputType | None = None


# A field of the grouped set: its response name, its nodes, and its plan (None: graphql-core).
_Step = tuple[str, FieldDetailsList, _PlainField | None]

# Plans by field definition, for the life of the process (schemas are built once and kept).
_plans: dict[int, tuple[GraphQLField, _PlainField | None]] = {}
# What _coerced answers for a value it leaves to graphql-core.
_FALLBACK: Any = object()


def plain_field(field_def: GraphQLField) -> _PlainField | None:
    """The plan for a field definition, or None when graphql-core must run it."""
    cached = _plans.get(id(field_def))
    if cached is not None:
        return cached[1]
    plan = _plan(field_def)
    _plans[id(field_def)] = (field_def, plan)
    return plan


def _plan(field_def: GraphQLField) -> _PlainField | None:
    if field_def is TypeNameMetaFieldDef:
        return _PlainField(
            kind=_Kind.TYPENAME,
            field_def=field_def,
            attribute="",
            return_type=field_def.type,
            non_null=True,
        )
    attribute = _default_resolved_attribute(field_def)
    if attribute is None:
        return None
    return_type = field_def.type
    named = get_nullable_type(return_type)
    non_null = is_non_null_type(return_type)
    if is_leaf_type(named):
        return _PlainField(
            kind=_Kind.LEAF,
            field_def=field_def,
            attribute=attribute,
            return_type=return_type,
            non_null=non_null,
            coerce=named.coerce_output_value,
            unchanged=_UNCHANGED_BY_COERCION.get(named, frozenset()),
        )
    if is_object_type(named) and named.is_type_of is None:
        return _PlainField(
            kind=_Kind.OBJECT,
            field_def=field_def,
            attribute=attribute,
            return_type=return_type,
            non_null=non_null,
            object_type=named,
        )
    if is_list_type(named):
        item_type = named.of_type
        item = get_nullable_type(item_type)
        if is_object_type(item) and item.is_type_of is None:
            return _PlainField(
                kind=_Kind.OBJECT_LIST,
                field_def=field_def,
                attribute=attribute,
                return_type=return_type,
                non_null=non_null,
                object_type=item,
                item_type=item_type,
            )
    return None


def _default_resolved_attribute(field_def: GraphQLField) -> str | None:
    """The attribute a field reads, when Strawberry resolves it by reading just that."""
    if field_def.args or field_def.subscribe is not None:
        return None
    definition = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField):
        return None
    resolve = field_def.resolve
    # Strawberry gives a basic field (no resolver, no extensions, permission classes
    # included, no exception handlers) this resolver, which calls get_result with no info.
    if resolve is None or getattr(resolve, "__name__", "") != "_get_basic_result":
        return None
    if (
        not definition.is_basic_field
        or type(definition).get_result is not StrawberryField.get_result
        or definition.default_resolver is not getattr
    ):
        return None
    return definition.python_name


def _plain_nodes(field_details_list: FieldDetailsList) -> bool:
    for details in field_details_list:
        node = details.node
        if node.arguments:
            return False
        for directive in node.directives or ():
            if directive.name.value not in _COLLECTION_DIRECTIVES:
                return False
    return True


class PlannedExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, completing plain fields by plan."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        self._planned = manager is None or not manager.middlewares
        # By the grouped field set's identity, kept alive with it (as graphql-core does).
        self._steps: dict[int, tuple[GroupedFieldSet, Sequence[_Step] | None]] = {}

    def execute_fields(  # noqa: PLR0912 - one loop, its common case inline
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        steps = self._steps_for(parent_type, grouped_field_set)
        if steps is None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for step in steps:
                response_name, field_details_list, plan = step
                if plan is None:
                    result = self.execute_field(
                        parent_type,
                        source_value,
                        field_details_list,
                        Path(path, response_name, parent_type.name),
                        position_context,
                    )
                    if result is Undefined:
                        continue
                elif plan.kind is _Kind.LEAF:
                    # The most common field of all, inline: a string read as it is.
                    try:
                        value = getattr(source_value, plan.attribute)
                    except Exception as raw_error:
                        self._read_failed(step, parent_type, path, raw_error)
                        result = None
                    else:
                        if type(value) in plan.unchanged:
                            results[response_name] = value
                            continue
                        result = self._complete_leaf(
                            step, parent_type, value, path, position_context
                        )
                else:
                    result = self._complete_plain(
                        step, parent_type, source_value, path, position_context
                    )
                results[response_name] = result
                if is_awaitable(result):
                    awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results
        return self._gathered_fields(results, awaitable_fields)

    def _steps_for(
        self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet
    ) -> Sequence[_Step] | None:
        if not self._planned:
            return None
        cached = self._steps.get(id(grouped_field_set))
        if cached is not None:
            return cached[1]
        steps: list[_Step] = []
        for response_name, field_details_list in grouped_field_set.items():
            field_name = field_details_list[0].node.name.value
            field_def = self.schema.get_field(parent_type, field_name)
            plan = None
            if field_def is not None and _plain_nodes(field_details_list):
                plan = plain_field(field_def)
            steps.append((response_name, field_details_list, plan))
        planned = steps if any(plan is not None for _, _, plan in steps) else None
        self._steps[id(grouped_field_set)] = (grouped_field_set, planned)
        return planned

    def _complete_plain(
        self,
        step: _Step,
        parent_type: GraphQLObjectType,
        source: Any,
        path: Path | None,
        position_context: Any,
    ) -> Any:
        plan = step[2]
        assert plan is not None, "only planned steps are completed here"
        if plan.kind is _Kind.TYPENAME:
            return parent_type.name
        try:
            value = getattr(source, plan.attribute)
        except Exception as raw_error:
            self._read_failed(step, parent_type, path, raw_error)
            return None
        if value is None and not plan.non_null:
            return None
        if self._plain_composite(plan, value):
            return self._complete_composite(step, parent_type, value, path, position_context)
        return self._complete_read(step, parent_type, value, path, position_context)

    def _read_failed(
        self,
        step: _Step,
        parent_type: GraphQLObjectType,
        path: Path | None,
        raw_error: Exception,
    ) -> None:
        # As execute_field when a resolver raises: this field's error, at its path.
        response_name, field_details_list, plan = step
        assert plan is not None, "only planned steps are read"
        field_path = Path(path, response_name, parent_type.name)
        self.handle_field_error(raw_error, plan.return_type, field_details_list, field_path)

    def _complete_leaf(
        self,
        step: _Step,
        parent_type: GraphQLObjectType,
        value: Any,
        path: Path | None,
        position_context: Any,
    ) -> Any:
        plan = step[2]
        assert plan is not None, "only planned steps are completed here"
        if value is None and not plan.non_null:
            return None
        coerced = self._coerced(plan, value)
        if coerced is not _FALLBACK:
            return coerced
        return self._complete_read(step, parent_type, value, path, position_context)

    def _coerced(self, plan: _PlainField, value: Any) -> Any:
        """The leaf's output value, or _FALLBACK for anything but a plain success."""
        if type(value) not in _PLAIN_VALUE_TYPES and (
            value is None
            or value is Undefined
            or isinstance(value, Exception)
            or self.is_awaitable(value)
        ):
            return _FALLBACK
        assert plan.coerce is not None, "leaves are planned with their coercion"
        try:
            coerced = plan.coerce(value)
        except Exception:
            # Coerced again by graphql-core, which words the error (output coercion is pure).
            return _FALLBACK
        if coerced is None or coerced is Undefined:
            return _FALLBACK
        return coerced

    def _plain_composite(self, plan: _PlainField, value: Any) -> bool:
        if value is None or value is Undefined or isinstance(value, Exception):
            return False
        if self.is_awaitable(value):
            return False
        if plan.kind is _Kind.OBJECT_LIST:
            return type(value) is list and self._plain_items(value)
        return True

    def _complete_composite(
        self,
        step: _Step,
        parent_type: GraphQLObjectType,
        value: Any,
        path: Path | None,
        position_context: Any,
    ) -> Any:
        response_name, field_details_list, plan = step
        assert plan is not None, "only planned steps are completed here"
        field_path = Path(path, response_name, parent_type.name)
        # As graphql-core's execute_field: an error below is this field's, at its path.
        try:
            if plan.kind is _Kind.OBJECT_LIST:
                completed = self._complete_object_list(
                    plan, field_details_list, field_path, value, position_context
                )
            else:
                completed = self._complete_object(
                    plan, field_details_list, field_path, value, position_context
                )
            if self.is_awaitable(completed):
                return self._awaited(completed, plan.return_type, field_details_list, field_path)
        except Exception as raw_error:
            self.handle_field_error(raw_error, plan.return_type, field_details_list, field_path)
            return None
        return completed

    def _complete_read(
        self,
        step: _Step,
        parent_type: GraphQLObjectType,
        value: Any,
        path: Path | None,
        position_context: Any,
    ) -> Any:
        """graphql-core's completion of a value read by plan: execute_field's, after the
        resolver, so the value is never read twice."""
        response_name, field_details_list, plan = step
        assert plan is not None, "only planned steps are completed here"
        field_path = Path(path, response_name, parent_type.name)
        return_type = plan.return_type
        info = self.build_resolve_info(
            plan.field_def, to_nodes(field_details_list), parent_type, field_path
        )
        try:
            if self.is_awaitable(value):
                return self.complete_awaitable_value(
                    return_type, field_details_list, info, field_path, value, position_context
                )
            completed = self.complete_value(
                return_type, field_details_list, info, field_path, value, position_context
            )
            if self.is_awaitable(completed):
                return self._awaited(completed, return_type, field_details_list, field_path)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, field_path)
            return None
        return completed

    def _plain_items(self, items: list[Any]) -> bool:
        is_awaitable = self.is_awaitable
        return not any(
            item is None or item is Undefined or isinstance(item, Exception) or is_awaitable(item)
            for item in items
        )

    def _complete_object(
        self,
        plan: _PlainField,
        field_details_list: FieldDetailsList,
        path: Path,
        value: Any,
        position_context: Any,
    ) -> Any:
        # As graphql-core's complete_object_value, for a type without is_type_of.
        assert plan.object_type is not None, "objects are planned with their type"
        grouped_field_set, new_defer_usages, _ = self.collect_subfields(
            plan.object_type, field_details_list
        )
        return self.execute_collected_subfields(
            plan.object_type, value, path, grouped_field_set, new_defer_usages, position_context
        )

    def _complete_object_list(
        self,
        plan: _PlainField,
        field_details_list: FieldDetailsList,
        path: Path,
        items: list[Any],
        position_context: Any,
    ) -> Any:
        # As graphql-core's complete_iterable_value and complete_list_item_value.
        assert plan.item_type is not None, "lists are planned with their item type"
        item_type = plan.item_type
        is_awaitable = self.is_awaitable
        completed_results: list[Any] = []
        awaitable_indices: list[int] = []
        try:
            for index, item in enumerate(items):
                item_path = Path(path, index, None)
                try:
                    completed = self._complete_object(
                        plan, field_details_list, item_path, item, position_context
                    )
                    if is_awaitable(completed):
                        completed_results.append(
                            self._awaited(completed, item_type, field_details_list, item_path)
                        )
                        awaitable_indices.append(index)
                    else:
                        completed_results.append(completed)
                except Exception as raw_error:
                    self.handle_field_error(raw_error, item_type, field_details_list, item_path)
                    completed_results.append(None)
        except Exception:
            if awaitable_indices:
                self.settle_in_background([completed_results[i] for i in awaitable_indices])
            raise
        if not awaitable_indices:
            return completed_results
        return self._gathered_items(completed_results, awaitable_indices)

    async def _awaited(
        self,
        completed: Awaitable[Any],
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        path: Path,
    ) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None

    @staticmethod
    async def _gathered_fields(
        results: dict[str, Any], awaitable_fields: list[str]
    ) -> dict[str, Any]:
        if len(awaitable_fields) == 1:
            field = awaitable_fields[0]
            results[field] = await results[field]
        else:
            awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
            results.update(zip(awaitable_fields, awaited, strict=True))
        return results

    @staticmethod
    async def _gathered_items(completed: list[Any], awaitable_indices: list[int]) -> list[Any]:
        if len(awaitable_indices) == 1:
            index = awaitable_indices[0]
            completed[index] = await completed[index]
        else:
            awaited = await gather_with_cancel(*(completed[i] for i in awaitable_indices))
            for index, value in zip(awaitable_indices, awaited, strict=True):
                completed[index] = value
        return completed
