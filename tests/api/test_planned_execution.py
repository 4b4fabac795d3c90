"""The planned executor answers every document exactly as graphql-core's own executor does.

``PlannedExecutionContext`` completes plain fields itself and gives everything else back to
graphql-core; these tests run the same documents on a schema served by it and on the same
schema served by Strawberry's stock execution context, and compare the answers (data and
every error, with its message, locations, path and extensions). Each document also states
what its answer must be, so that both executors cannot pass by being wrong the same way.
"""

import asyncio
import gc
import logging
import re
import sys
import warnings
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from functools import cache
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, ClassVar, Generic, NewType, TypeVar, cast

import graphql
import pytest
import strawberry
from graphql import GraphQLObjectType
from graphql.execution.collect_fields import FieldDetailsList
from graphql.execution.executor import Executor
from graphql.pyutils import Path as ResponsePath
from graphql.pyutils import Undefined
from httpx import ASGITransport, AsyncClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from strawberry.dataloader import DataLoader
from strawberry.directive import DirectiveLocation, DirectiveValue
from strawberry.extensions import DisableValidation, SchemaExtension
from strawberry.permission import BasePermission
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionResult
from strawberry.types.field import StrawberryField

from gql_app.api import planned_execution
from gql_app.api.error_codes import ErrorCode, ErrorReason
from gql_app.api.errors import INTERNAL_ERROR_MESSAGE, ErrorMapping
from gql_app.api.lean_lane import LeanLane
from gql_app.api.planned_execution import CHECKED_VERSIONS, PlannedExecutionContext
from gql_app.api.schema import Schema, schema_for
from gql_app.config import Settings
from gql_app.db import SessionFactory
from gql_app.errors import NotFoundError, PermissionDeniedError
from gql_app.logging_config import current_request_id
from gql_app.main import create_app
from gql_app.models import User
from tests.conftest import LogRecords
from tests.factories import create_user
from tests.graphql import GraphQLClient

T = TypeVar("T")

PINNED = dict(CHECKED_VERSIONS)
REPIN = (
    "graphql-core/strawberry-graphql changed: re-run the executor differential tests "
    "(tests/api/test_planned_execution.py) and the benchmark (BENCHMARKS.md), then update "
    "the pinned versions here"
)
REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements"
# Masked errors carry the request's id; the tests run every document under this one.
REQUEST_ID = "planned-execution-test"
FORBIDDEN_MESSAGE = "Not for you"


# --- The schema under test ------------------------------------------------------------------


@strawberry.enum
class Color(Enum):
    RED = "red"
    GREEN = "green"


def _blank_is_null(value: str) -> str | None:
    return value or None


# A scalar whose coercion can answer null, which graphql-core refuses for any leaf.
Blank = NewType("Blank", str)
CONFIG = StrawberryConfig(
    scalar_map={Blank: strawberry.scalar(name="Blank", serialize=_blank_is_null, parse_value=str)}
)


class LoudField(StrawberryField):
    """A field class of its own: Strawberry calls its get_result, so it is not plain."""

    def get_result(self, source: Any, info: Any, args: list[Any], kwargs: Any) -> Any:
        return str(super().get_result(source, info, args, kwargs)).upper()


class Later(Generic[T]):
    """An awaitable that can be awaited any number of times, as a future can."""

    def __init__(self, value: T) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, T]:
        return self._resolved().__await__()

    async def _resolved(self) -> T:
        await asyncio.sleep(0)
        return self.value


class Forbidden(BasePermission):
    message = FORBIDDEN_MESSAGE
    error_extensions = {  # noqa: RUF012 - typed as in BasePermission
        "code": ErrorCode.FORBIDDEN,
        "reason": ErrorReason.SUPERUSER_REQUIRED,
    }

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


class DeniedByDomain(BasePermission):
    """Refuses as the app's permissions do when the viewer lacks a role: a domain error."""

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        raise PermissionDeniedError


def a_secret() -> str | None:
    return "secret"


@strawberry.type
class Scalars:
    text: str
    maybe_text: str | None
    count: int
    maybe_count: int | None
    ratio: float
    maybe_ratio: float | None
    flag: bool
    maybe_flag: bool | None
    ident: strawberry.ID
    maybe_ident: strawberry.ID | None
    moment: datetime
    maybe_moment: datetime | None
    color: Color
    maybe_color: Color | None
    payload: JSON
    maybe_payload: JSON | None


@strawberry.type
class Tag:
    name: str
    weight: int | None

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()

    @strawberry.field
    async def slow_name(self) -> str:
        await asyncio.sleep(0)
        return self.name

    @strawberry.field
    def where(self, info: strawberry.Info) -> str:
        """The path a resolver is given, with the type of each of its keys."""
        keys = []
        path: ResponsePath | None = info.path
        while path is not None:
            keys.append(f"{path.key}:{path.typename}")
            path = path.prev
        return "/".join(reversed(keys))


@strawberry.type
class Failures:
    """Resolvers that fail in each way a resolver can."""

    @strawberry.field
    def sync_raises(self) -> str | None:
        raise NotFoundError

    @strawberry.field
    async def async_raises(self) -> str | None:
        await asyncio.sleep(0)
        raise NotFoundError

    @strawberry.field
    def sync_null(self) -> str:
        return cast(str, None)

    @strawberry.field
    async def async_null(self) -> str:
        await asyncio.sleep(0)
        return cast(str, None)

    @strawberry.field
    def unexpected(self) -> str | None:
        raise RuntimeError("the disk is on fire")

    @strawberry.field
    async def async_value(self) -> str:
        await asyncio.sleep(0)
        return "fine"

    forbidden: str | None = strawberry.field(resolver=a_secret, permission_classes=[Forbidden])
    denied: str | None = strawberry.field(resolver=a_secret, permission_classes=[DeniedByDomain])


@strawberry.interface
class Node:
    id: strawberry.ID


@strawberry.type
class Person(Node):
    name: str
    email: str | None
    # Person has is_type_of (it implements Node): fields returning it are not plain.
    best_friend: "Person | None"
    friends: list["Person"]


@strawberry.type
class Place(Node):
    city: str


SearchResult = Annotated[Person | Tag, strawberry.union("SearchResult")]


class Context:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        # The fields graphql-core's execute_field ran, for the counting executors below.
        self.executed: list[str] = []
        self.people: DataLoader[str, Person | None] = DataLoader(load_fn=self._load_people)

    async def _load_people(self, keys: list[str]) -> list[Person | None]:
        self.batches.append(list(keys))
        return [PEOPLE.get(key) for key in keys]


Info = strawberry.Info[Context, None]


@strawberry.type
class Item:
    id: strawberry.ID
    label: str
    note: str | None
    primary_tag: Tag
    maybe_tag: Tag | None
    tags: list[Tag]
    maybe_tags: list[Tag | None] | None
    scalars: Scalars
    children: list["Item"]
    failures: Failures | None
    strict_failures: Failures
    loud_label: str = cast(str, LoudField())
    owner_id: strawberry.Private[str]

    @strawberry.field
    def upper_label(self) -> str:
        return self.label.upper()

    @strawberry.field
    async def slow_label(self) -> str:
        await asyncio.sleep(0)
        return self.label

    @strawberry.field
    def tags_named(self, prefix: str) -> list[Tag]:
        return [tag for tag in self.tags if tag.name.startswith(prefix)]

    @strawberry.field
    async def owner(self, info: Info) -> Person | None:
        return await info.context.people.load(self.owner_id)

    secret: str | None = strawberry.field(resolver=a_secret, permission_classes=[Forbidden])


@strawberry.type
class Anomalies:
    """Plain fields whose attributes are not what their types say (AnomalySource)."""

    missing: str
    bad_int: int | None
    strict_bad_int: int
    bad_color: Color | None
    blank: Blank | None
    exploding: str | None
    strict_exploding: str
    exploding_tag: Tag | None
    later: str
    maybe_later: str | None
    later_tag: Tag | None
    later_tags: list[Tag] | None
    error_value: str | None
    error_tag: Tag | None
    error_in_tags: list[Tag | None]
    gap_tags: list[Tag | None]
    hole_tags: list[Tag] | None
    strict_hole_tags: list[Tag]
    tuple_tags: list[Tag]
    not_iterable_tags: list[Tag] | None
    broken_tags: list[Tag] | None
    strict_broken_tags: list[Tag]
    broken_maybe_tags: list[Tag | None]
    mixed_tags: list[Tag] | None
    missing_tag: Tag
    text: str


@strawberry.type
class Sentinels:
    """Attributes holding graphql-core's Undefined, or making a new coroutine at each read."""

    text: str | None
    tag: Tag | None
    tags: list[Tag | None]
    fresh_later: str | None
    later_in_tags: list[Tag]


class TagSource:
    """A tag as Strawberry reads it, with whatever name it is given (None too)."""

    def __init__(self, name: str | None, weight: int | None = None) -> None:
        self.name = name
        self.weight = weight


class AnomalySource:
    missing = None
    bad_int = "abc"
    strict_bad_int = "abc"
    bad_color = "purple"
    blank = ""
    error_value = ValueError("an exception as a value")
    error_tag = ValueError("an exception as an object")
    error_in_tags = (Tag(name="kept", weight=1), ValueError("an exception in a list"))
    gap_tags = (Tag(name="before", weight=1), None, Tag(name="after", weight=2))
    hole_tags = (Tag(name="before", weight=1), None)
    strict_hole_tags = (Tag(name="before", weight=1), None)
    tuple_tags = (Tag(name="in-a-tuple", weight=None),)
    not_iterable_tags = 42
    broken_tags = (TagSource(None), TagSource(None))
    strict_broken_tags = (Tag(name="whole", weight=3), TagSource(None))
    broken_maybe_tags = (TagSource(None), Tag(name="whole", weight=3), TagSource(None))
    mixed_tags = (Tag(name="whole", weight=3), TagSource(None))
    missing_tag = None
    text = "plain"

    def __init__(self) -> None:
        # The shortcut completes lists (anything else goes to graphql-core): these are lists,
        # and tuple_tags stays the tuple graphql-core completes.
        for name in (
            "error_in_tags",
            "gap_tags",
            "hole_tags",
            "strict_hole_tags",
            "broken_tags",
            "strict_broken_tags",
            "broken_maybe_tags",
            "mixed_tags",
        ):
            setattr(self, name, list(getattr(self, name)))

    # How often each property below was read, by either executor.
    reads: ClassVar[Counter[str]] = Counter()

    @property
    def exploding(self) -> str:
        AnomalySource.reads["exploding"] += 1
        raise RuntimeError("a property that raises")

    @property
    def strict_exploding(self) -> str:
        raise RuntimeError("a property that raises")

    @property
    def exploding_tag(self) -> Tag:
        AnomalySource.reads["exploding_tag"] += 1
        raise RuntimeError("an object property that raises")

    @property
    def later(self) -> Later[str]:
        AnomalySource.reads["later"] += 1
        return Later("later")

    @property
    def maybe_later(self) -> Later[str | None]:
        return Later(None)

    @property
    def later_tag(self) -> Later[Tag]:
        return Later(Tag(name="awaited", weight=None))

    @property
    def later_tags(self) -> Later[list[Tag]]:
        return Later([Tag(name="awaited", weight=1), Tag(name="too", weight=2)])


class SentinelSource:
    text = Undefined
    tag = Undefined
    tags = [Tag(name="kept", weight=None), Undefined]  # noqa: RUF012 - read, never changed

    @property
    def fresh_later(self) -> Awaitable[str]:
        return self._later()

    @property
    def later_in_tags(self) -> list[Tag | Later[Tag]]:
        return [Tag(name="now", weight=None), Later(Tag(name="awaited", weight=None))]

    async def _later(self) -> str:
        await asyncio.sleep(0)
        return "later"


@strawberry.type
class Query:
    motd: str

    @strawberry.field
    def items(self) -> list[Item]:
        return ITEMS

    @strawberry.field
    def item(self, id: strawberry.ID) -> Item | None:
        return next((item for item in ITEMS if item.id == id), None)

    @strawberry.field
    def anomalies(self) -> Anomalies | None:
        return cast(Anomalies, AnomalySource())

    @strawberry.field
    def strict_anomalies(self) -> Anomalies:
        return cast(Anomalies, AnomalySource())

    @strawberry.field
    def node(self, id: strawberry.ID) -> Node | None:
        return NODES.get(id)

    @strawberry.field
    def nodes(self) -> list[Node]:
        return list(NODES.values())

    @strawberry.field
    def search(self) -> list[SearchResult]:
        return [PEOPLE["p2"], Tag(name="alpha", weight=1), PEOPLE["p1"]]

    @strawberry.field
    def sentinels(self) -> Sentinels | None:
        return cast(Sentinels, SentinelSource())


@strawberry.type
class Mutation:
    @strawberry.mutation
    def touch(self, id: strawberry.ID) -> Item | None:
        return next((item for item in ITEMS if item.id == id), None)

    @strawberry.mutation
    async def touch_later(self, id: strawberry.ID) -> Item:
        await asyncio.sleep(0)
        return next(item for item in ITEMS if item.id == id)


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self) -> AsyncGenerator[Item, None]:
        for item in ITEMS:
            yield item


@strawberry.directive(locations=[DirectiveLocation.FIELD], description="Upper-cases a string.")
def uppercase(value: DirectiveValue[str]) -> str:
    return value.upper()


class PassThrough(SchemaExtension):
    """Middleware that changes nothing: it wraps every resolver, plain or not."""

    def resolve(
        self, _next: Callable[..., Any], root: Any, info: Any, *args: Any, **kwargs: Any
    ) -> Any:
        return _next(root, info, *args, **kwargs)


PEOPLE: dict[str, Person] = {}
PEOPLE["p1"] = Person(
    id=strawberry.ID("p1"), name="Ada", email="ada@example.com", best_friend=None, friends=[]
)
PEOPLE["p2"] = Person(
    id=strawberry.ID("p2"),
    name="Grace",
    email=None,
    best_friend=PEOPLE["p1"],
    friends=[PEOPLE["p1"]],
)
NODES: dict[str, Node] = {
    **PEOPLE,
    "pl1": Place(id=strawberry.ID("pl1"), city="Paris"),
}

MOMENT = datetime(2024, 5, 17, 12, 30, 5, tzinfo=UTC)
FULL_SCALARS = Scalars(
    text="text",
    maybe_text="maybe",
    count=7,
    maybe_count=0,
    ratio=0.5,
    maybe_ratio=-1.25,
    flag=True,
    maybe_flag=False,
    ident=strawberry.ID("id-1"),
    maybe_ident=strawberry.ID("id-2"),
    moment=MOMENT,
    maybe_moment=MOMENT,
    color=Color.RED,
    maybe_color=Color.GREEN,
    payload=JSON({"nested": [1, "two", None, {"deep": True}]}),
    maybe_payload=JSON([]),
)
EMPTY_SCALARS = Scalars(
    text="",
    maybe_text=None,
    count=0,
    maybe_count=None,
    ratio=0.0,
    maybe_ratio=None,
    flag=False,
    maybe_flag=None,
    ident=strawberry.ID("0"),
    maybe_ident=None,
    moment=MOMENT,
    maybe_moment=None,
    color=Color.GREEN,
    maybe_color=None,
    payload=JSON(False),
    maybe_payload=None,
)


def item(
    id: str,
    label: str,
    *,
    owner: str,
    tags: list[Tag],
    maybe_tags: list[Tag | None] | None,
    children: list[Item] | None = None,
    scalars: Scalars = FULL_SCALARS,
) -> Item:
    return Item(
        id=strawberry.ID(id),
        label=label,
        note=None if children is None else f"{label} has children",
        primary_tag=tags[0] if tags else Tag(name="untagged", weight=None),
        maybe_tag=tags[-1] if tags else None,
        tags=tags,
        maybe_tags=maybe_tags,
        scalars=scalars,
        children=children or [],
        failures=Failures(),
        strict_failures=Failures(),
        loud_label=label,
        owner_id=owner,
    )


ALPHA = Tag(name="alpha", weight=1)
BETA = Tag(name="beta", weight=None)
BRAVO = Tag(name="bravo", weight=2)
ITEMS = [
    item(
        "i1",
        "first",
        owner="p1",
        tags=[ALPHA, BETA, BRAVO],
        maybe_tags=[ALPHA, None, BRAVO],
        children=[
            item("i1a", "first child", owner="p2", tags=[BETA], maybe_tags=None),
            item(
                "i1b",
                "second child",
                owner="p1",
                tags=[],
                maybe_tags=[None],
                children=[item("i1b1", "grandchild", owner="p2", tags=[ALPHA], maybe_tags=[])],
            ),
        ],
    ),
    item("i2", "second", owner="p2", tags=[], maybe_tags=None, scalars=EMPTY_SCALARS),
    item("i3", "third", owner="p1", tags=[BRAVO], maybe_tags=[BRAVO]),
]
ROOT = Query(motd="Hello")


def built(
    context_class: type[StrawberryGraphQLCoreExecutionContext],
    *extensions: type[SchemaExtension],
    directives: tuple[Any, ...] = (),
) -> Schema:
    # The app's Schema class: it leaves the logging of errors to ErrorMapping.
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Place],
        extensions=[ErrorMapping, *extensions],
        directives=directives,
        config=CONFIG,
        execution_context_class=context_class,
    )


class CountingPlanned(PlannedExecutionContext):
    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: ResponsePath,
        position_context: Any,
    ) -> Any:
        record(self.context_value, parent_type, field_details_list)
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )


class CountingStock(StrawberryGraphQLCoreExecutionContext):
    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: ResponsePath,
        position_context: Any,
    ) -> Any:
        record(self.context_value, parent_type, field_details_list)
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )


def record(context: Any, parent_type: GraphQLObjectType, details: FieldDetailsList) -> None:
    assert isinstance(context, Context)
    context.executed.append(f"{parent_type.name}.{details[0].node.name.value}")


PLANNED = built(PlannedExecutionContext)
STOCK = built(StrawberryGraphQLCoreExecutionContext)


async def run(
    schema: Schema, document: str, variables: dict[str, Any] | None = None
) -> tuple[ExecutionResult, Context]:
    context = Context()
    token = current_request_id.set(REQUEST_ID)
    try:
        result = await schema.execute(
            document, variable_values=variables, context_value=context, root_value=ROOT
        )
    finally:
        current_request_id.reset(token)
    return result, context


def answer(result: ExecutionResult) -> tuple[Any, list[Any]]:
    return result.data, [error.formatted for error in result.errors or []]


async def both(
    document: str,
    variables: dict[str, Any] | None = None,
    *,
    pair: tuple[Schema, Schema] | None = None,
) -> tuple[ExecutionResult, Context]:
    """The planned answer, once it is known to be the stock one."""
    planned_schema, stock_schema = pair or (PLANNED, STOCK)
    planned, planned_context = await run(planned_schema, document, variables)
    stock, stock_context = await run(stock_schema, document, variables)
    assert answer(planned) == answer(stock)
    # Resolvers ran the same way: the same DataLoader batches, in the same order.
    assert planned_context.batches == stock_context.batches
    return planned, planned_context


def at(data: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        data = data[int(key)] if key.isdigit() else data[key]
    return data


def error_summary(result: ExecutionResult) -> list[tuple[str, str]]:
    return [
        (".".join(str(key) for key in error.path or ()), str((error.extensions or {})["code"]))
        for error in result.errors or []
    ]


# --- The corpus -----------------------------------------------------------------------------

INTERNAL = ErrorCode.INTERNAL_SERVER_ERROR.value
FORBIDDEN = ErrorCode.FORBIDDEN.value
NOT_FOUND = ErrorCode.NOT_FOUND.value

ALL_SCALARS = """
  text maybeText count maybeCount ratio maybeRatio flag maybeFlag ident maybeIdent
  moment maybeMoment color maybeColor payload maybePayload
"""


@dataclass(frozen=True)
class Case:
    id: str
    document: str
    # The errors, in order: (path, extensions.code).
    errors: tuple[tuple[str, str], ...] = ()
    # Values at paths of data; ("", None) says data itself is null.
    expect: tuple[tuple[str, Any], ...] = ()
    variables: dict[str, Any] | None = None


CORPUS = [
    Case(
        "plain-leaves-of-every-scalar",
        f"{{ items {{ scalars {{ {ALL_SCALARS} }} }} }}",
        expect=(
            ("items.0.scalars.color", "RED"),
            ("items.0.scalars.maybeColor", "GREEN"),
            ("items.0.scalars.moment", "2024-05-17T12:30:05+00:00"),
            ("items.0.scalars.payload", {"nested": [1, "two", None, {"deep": True}]}),
            ("items.0.scalars.maybeRatio", -1.25),
            ("items.0.scalars.maybeCount", 0),
            ("items.0.scalars.maybeFlag", False),
            ("items.1.scalars.maybeText", None),
            ("items.1.scalars.maybeColor", None),
            ("items.1.scalars.payload", False),
            ("items.1.scalars.maybePayload", None),
            ("items.1.scalars.ident", "0"),
        ),
    ),
    Case(
        "plain-objects-and-lists-of-objects",
        "{ items { id primaryTag { name weight } maybeTag { name }"
        " tags { name weight } maybeTags { name } } }",
        expect=(
            ("items.0.primaryTag", {"name": "alpha", "weight": 1}),
            ("items.0.maybeTags.1", None),
            ("items.0.maybeTags.2.name", "bravo"),
            ("items.1.maybeTag", None),
            ("items.1.tags", []),
            ("items.1.maybeTags", None),
        ),
    ),
    Case(
        "nested-lists-of-objects-inside-objects",
        "{ items { label children { label tags { name } children { label maybeTags { name } }"
        " } } }",
        expect=(
            ("items.0.children.1.children.0.label", "grandchild"),
            ("items.0.children.1.children.0.maybeTags", []),
            ("items.0.children.0.tags.0.name", "beta"),
            ("items.2.children", []),
        ),
    ),
    Case(
        "aliases",
        "{ first: items { theId: id n: label again: label t: tags { x: name y: name } } }",
        expect=(
            (
                "first.0",
                {
                    "theId": "i1",
                    "n": "first",
                    "again": "first",
                    "t": [
                        {"x": "alpha", "y": "alpha"},
                        {"x": "beta", "y": "beta"},
                        {"x": "bravo", "y": "bravo"},
                    ],
                },
            ),
        ),
    ),
    Case(
        "the-same-field-twice-with-different-subselections",
        "{ items { primaryTag { name } primaryTag { weight } tags { name } tags { weight"
        " __typename } a: maybeTag { name } a: maybeTag { weight shout } } }",
        expect=(
            ("items.0.primaryTag", {"name": "alpha", "weight": 1}),
            ("items.0.tags.1", {"name": "beta", "weight": None, "__typename": "Tag"}),
            ("items.0.a", {"name": "bravo", "weight": 2, "shout": "BRAVO"}),
            ("items.1.a", None),
        ),
    ),
    Case(
        "named-and-inline-fragments",
        "query { items { ...ItemBits ... on Item { note tags { ...TagBits } } ... { loudLabel } }"
        " } fragment ItemBits on Item { id label primaryTag { ...TagBits } }"
        " fragment TagBits on Tag { name ... on Tag { weight } }",
        expect=(
            ("items.0.primaryTag", {"name": "alpha", "weight": 1}),
            ("items.0.note", "first has children"),
            ("items.0.loudLabel", "FIRST"),
            ("items.1.note", None),
        ),
    ),
    *(
        Case(
            f"skip-and-include-with-yes-{yes}-no-{no}",
            "query Q($yes: Boolean!, $no: Boolean!) { items { id @include(if: $yes)"
            " label @skip(if: $yes) note @include(if: $no)"
            " ... on Item @skip(if: $no) { primaryTag { name } }"
            " ...Tags @include(if: $yes) } }"
            " fragment Tags on Item { tags { name @skip(if: $no) weight } }",
            variables={"yes": yes, "no": no},
            expect=(
                (
                    "items.1",
                    {
                        **({"id": "i2"} if yes else {"label": "second"}),
                        **({"note": None} if no else {"primaryTag": {"name": "untagged"}}),
                        **({"tags": []} if yes else {}),
                    },
                ),
            ),
        )
        for yes, no in [(True, False), (False, True), (True, True), (False, False)]
    ),
    Case(
        "typename-everywhere",
        "{ __typename items { __typename primaryTag { __typename } tags { __typename } }"
        " anomalies { __typename } nodes { __typename } search { __typename } }",
        expect=(
            ("__typename", "Query"),
            ("items.0.__typename", "Item"),
            ("items.0.tags.0.__typename", "Tag"),
            ("anomalies.__typename", "Anomalies"),
            (
                "nodes",
                [{"__typename": "Person"}, {"__typename": "Person"}, {"__typename": "Place"}],
            ),
            ("search", [{"__typename": "Person"}, {"__typename": "Tag"}, {"__typename": "Person"}]),
        ),
    ),
    Case("a-plain-field-of-the-root", "{ motd __typename }", expect=(("motd", "Hello"),)),
    Case(
        "a-field-class-of-its-own-and-a-scalar-that-can-answer-null",
        "{ items { loudLabel } anomalies { blank text } }",
        errors=(("anomalies.blank", INTERNAL),),
        expect=(("items.2.loudLabel", "THIRD"), ("anomalies.text", "plain")),
    ),
    Case(
        "introspection",
        '{ __schema { queryType { name } } __type(name: "Tag") { name fields { name } } }',
        expect=(("__schema.queryType.name", "Query"), ("__type.fields.0.name", "name")),
    ),
    # Plain fields whose values are not what the shortcut completes.
    Case(
        "a-non-null-leaf-whose-attribute-is-none",
        "{ anomalies { missing } }",
        errors=(("anomalies.missing", INTERNAL),),
        expect=(("anomalies", None),),
    ),
    Case(
        "a-non-null-leaf-whose-attribute-is-none-among-siblings",
        "{ items { id } anomalies { text missing later } motd }",
        errors=(("anomalies.missing", INTERNAL),),
        expect=(("anomalies", None), ("items.2.id", "i3"), ("motd", "Hello")),
    ),
    Case(
        "an-int-holding-a-string",
        "{ anomalies { badInt text } }",
        errors=(("anomalies.badInt", INTERNAL),),
        expect=(("anomalies", {"badInt": None, "text": "plain"}),),
    ),
    Case(
        "a-non-null-int-holding-a-string",
        "{ anomalies { text strictBadInt } items { label } }",
        errors=(("anomalies.strictBadInt", INTERNAL),),
        expect=(("anomalies", None), ("items.0.label", "first")),
    ),
    Case(
        "an-enum-holding-a-value-not-in-it",
        "{ anomalies { badColor text } }",
        errors=(("anomalies.badColor", INTERNAL),),
        expect=(("anomalies.badColor", None),),
    ),
    Case(
        "a-property-that-raises",
        "{ anomalies { exploding text } }",
        errors=(("anomalies.exploding", INTERNAL),),
        expect=(("anomalies", {"exploding": None, "text": "plain"}),),
    ),
    Case(
        "an-object-property-that-raises",
        "{ anomalies { explodingTag { name } text } }",
        errors=(("anomalies.explodingTag", INTERNAL),),
        expect=(("anomalies", {"explodingTag": None, "text": "plain"}),),
    ),
    Case(
        "a-non-null-property-that-raises",
        "{ anomalies { strictExploding } items { id } }",
        errors=(("anomalies.strictExploding", INTERNAL),),
        expect=(("anomalies", None), ("items.0.id", "i1")),
    ),
    Case(
        "attributes-holding-awaitables",
        "{ anomalies { later maybeLater laterTag { name shout } laterTags { name slowName }"
        " text } }",
        expect=(
            ("anomalies.later", "later"),
            ("anomalies.maybeLater", None),
            ("anomalies.laterTag", {"name": "awaited", "shout": "AWAITED"}),
            ("anomalies.laterTags.1", {"name": "too", "slowName": "too"}),
        ),
    ),
    Case(
        "attributes-holding-exceptions",
        "{ anomalies { errorValue errorTag { name } errorInTags { name } text } }",
        errors=(
            ("anomalies.errorValue", INTERNAL),
            ("anomalies.errorTag", INTERNAL),
            ("anomalies.errorInTags.1", INTERNAL),
        ),
        expect=(("anomalies.errorInTags", [{"name": "kept"}, None]), ("anomalies.text", "plain")),
    ),
    Case(
        "a-null-in-a-list-of-nullable-objects",
        "{ anomalies { gapTags { name } } }",
        expect=(("anomalies.gapTags", [{"name": "before"}, None, {"name": "after"}]),),
    ),
    Case(
        "a-null-in-a-list-of-non-null-objects",
        "{ anomalies { holeTags { name } text } }",
        errors=(("anomalies.holeTags.1", INTERNAL),),
        expect=(("anomalies", {"holeTags": None, "text": "plain"}),),
    ),
    Case(
        "a-null-in-a-non-null-list-of-non-null-objects-propagates",
        "{ anomalies { text strictHoleTags { name } } items { id } }",
        errors=(("anomalies.strictHoleTags.1", INTERNAL),),
        expect=(("anomalies", None), ("items.1.id", "i2")),
    ),
    Case(
        "lists-that-are-not-lists",
        "{ anomalies { tupleTags { name } notIterableTags { name } } }",
        errors=(("anomalies.notIterableTags", INTERNAL),),
        expect=(
            ("anomalies.tupleTags", [{"name": "in-a-tuple"}]),
            ("anomalies.notIterableTags", None),
        ),
    ),
    Case(
        "errors-below-a-planned-list-of-non-null-objects",
        "{ anomalies { brokenTags { weight name } text } }",
        errors=(("anomalies.brokenTags.0.name", INTERNAL),),
        expect=(("anomalies.brokenTags", None), ("anomalies.text", "plain")),
    ),
    Case(
        "errors-below-a-planned-list-of-nullable-objects",
        "{ anomalies { brokenMaybeTags { name weight } } }",
        errors=(
            ("anomalies.brokenMaybeTags.0.name", INTERNAL),
            ("anomalies.brokenMaybeTags.2.name", INTERNAL),
        ),
        expect=(("anomalies.brokenMaybeTags", [None, {"name": "whole", "weight": 3}, None]),),
    ),
    Case(
        "an-error-below-a-planned-list-while-a-sibling-item-awaits",
        "{ anomalies { mixedTags { slowName name } text } }",
        errors=(("anomalies.mixedTags.1.name", INTERNAL),),
        expect=(("anomalies.mixedTags", None), ("anomalies.text", "plain")),
    ),
    Case(
        "errors-below-planned-lists-after-awaiting",
        "{ anomalies { brokenMaybeTags { slowName shout } mixedTags { slowName shout } } }",
        errors=(
            ("anomalies.brokenMaybeTags.0.shout", INTERNAL),
            ("anomalies.brokenMaybeTags.2.shout", INTERNAL),
            ("anomalies.mixedTags.1.shout", INTERNAL),
        ),
        expect=(
            ("anomalies.brokenMaybeTags", [None, {"slowName": "whole", "shout": "WHOLE"}, None]),
            ("anomalies.mixedTags", None),
        ),
    ),
    Case(
        "a-non-null-object-whose-attribute-is-none-propagates",
        "{ anomalies { missingTag { name } } items { id } }",
        errors=(("anomalies.missingTag", INTERNAL),),
        expect=(("anomalies", None), ("items.0.id", "i1")),
    ),
    Case(
        "propagation-up-to-the-root",
        "{ items { id } strictAnomalies { text missing } }",
        errors=(("strictAnomalies.missing", INTERNAL),),
        expect=(("", None),),
    ),
    Case(
        "errors-below-a-non-null-planned-list-propagate",
        "{ anomalies { strictBrokenTags { name } text } items { id } }",
        errors=(("anomalies.strictBrokenTags.1.name", INTERNAL),),
        expect=(("anomalies", None), ("items.2.id", "i3")),
    ),
    # Resolvers.
    Case(
        "resolvers-below-planned-fields-are-given-the-same-path",
        "{ items { tags { where } children { t: tags { where } } } anomalies { laterTags {"
        " where } } }",
        expect=(
            ("items.0.tags.1.where", "items:Query/0:None/tags:Item/1:None/where:Tag"),
            (
                "items.0.children.0.t.0.where",
                "items:Query/0:None/children:Item/0:None/t:Item/0:None/where:Tag",
            ),
            ("anomalies.laterTags.0.where", "anomalies:Query/laterTags:Anomalies/0:None/where:Tag"),
        ),
    ),
    Case(
        "mutations-run-serially-with-planned-fields-below",
        'mutation { a: touch(id: "i1") { label tags { name where } failures { syncRaises } }'
        ' b: touchLater(id: "i3") { id primaryTag { name } } c: touch(id: "none") { id } }',
        errors=(("a.failures.syncRaises", NOT_FOUND),),
        expect=(
            ("a.tags.0", {"name": "alpha", "where": "a:Mutation/tags:Item/0:None/where:Tag"}),
            ("b", {"id": "i3", "primaryTag": {"name": "bravo"}}),
            ("c", None),
        ),
    ),
    Case(
        "a-sync-resolver-that-raises",
        "{ items { id failures { syncRaises } } }",
        errors=tuple((f"items.{index}.failures.syncRaises", NOT_FOUND) for index in range(3)),
        expect=(("items.0", {"id": "i1", "failures": {"syncRaises": None}}),),
    ),
    Case(
        "an-async-resolver-that-raises",
        "{ items { failures { asyncRaises asyncValue } label } }",
        errors=tuple((f"items.{index}.failures.asyncRaises", NOT_FOUND) for index in range(3)),
        expect=(
            (
                "items.2",
                {"failures": {"asyncRaises": None, "asyncValue": "fine"}, "label": "third"},
            ),
        ),
    ),
    Case(
        "resolvers-returning-null-for-non-null",
        '{ items { id failures { syncNull } } item(id: "i2") { failures { asyncNull } } }',
        errors=(
            *((f"items.{index}.failures.syncNull", INTERNAL) for index in range(3)),
            ("item.failures.asyncNull", INTERNAL),
        ),
        expect=(("items.1", {"id": "i2", "failures": None}), ("item.failures", None)),
    ),
    Case(
        "a-sync-error-propagating-while-a-sibling-awaits",
        "{ items { failures { asyncValue syncNull } label } }",
        errors=tuple((f"items.{index}.failures.syncNull", INTERNAL) for index in range(3)),
        expect=(("items.0", {"failures": None, "label": "first"}),),
    ),
    Case(
        "a-resolver-null-propagating-through-planned-objects-to-the-root",
        '{ motd item(id: "i3") { strictFailures { asyncNull } } items { strictFailures {'
        " syncNull } } }",
        errors=(("items.0.strictFailures.syncNull", INTERNAL),),
        expect=(("", None),),
    ),
    Case(
        "a-dataloader",
        "{ items { id owner { name } children { owner { id email } } } }",
        expect=(
            ("items.0.owner.name", "Ada"),
            ("items.1.owner.name", "Grace"),
            ("items.0.children.0.owner", {"id": "p2", "email": None}),
        ),
    ),
    Case(
        "a-permission-that-refuses",
        "{ items { id secret failures { forbidden } } }",
        errors=tuple(
            error
            for index in range(3)
            for error in (
                (f"items.{index}.secret", FORBIDDEN),
                (f"items.{index}.failures.forbidden", FORBIDDEN),
            )
        ),
        expect=(("items.1", {"id": "i2", "secret": None, "failures": {"forbidden": None}}),),
    ),
    Case(
        "a-permission-that-raises-a-domain-error",
        '{ item(id: "i1") { label failures { denied } } }',
        errors=(("item.failures.denied", FORBIDDEN),),
        expect=(("item", {"label": "first", "failures": {"denied": None}}),),
    ),
    Case(
        "an-unexpected-exception-is-masked",
        '{ item(id: "i3") { id failures { unexpected } tags { name } } }',
        errors=(("item.failures.unexpected", INTERNAL),),
        expect=(("item.tags", [{"name": "bravo"}]),),
    ),
    Case(
        "an-interface-and-its-types",
        "{ nodes { id __typename ... on Person { name email bestFriend { name } friends { id } }"
        ' ... on Place { city } } node(id: "p2") { id ... on Person { bestFriend { id } } } }',
        expect=(
            (
                "nodes.1",
                {
                    "id": "p2",
                    "__typename": "Person",
                    "name": "Grace",
                    "email": None,
                    "bestFriend": {"name": "Ada"},
                    "friends": [{"id": "p1"}],
                },
            ),
            ("nodes.2", {"id": "pl1", "__typename": "Place", "city": "Paris"}),
            ("node.bestFriend.id", "p1"),
        ),
    ),
    Case(
        "a-union",
        "{ search { __typename ... on Person { name friends { name } } ... on Tag { name weight"
        " shout } } }",
        expect=(
            ("search.0.friends", [{"name": "Ada"}]),
            ("search.1", {"__typename": "Tag", "name": "alpha", "weight": 1, "shout": "ALPHA"}),
        ),
    ),
    Case(
        "fields-with-arguments",
        '{ items { tagsNamed(prefix: "b") { name } } item(id: "i2") { label } }',
        expect=(
            ("items.0.tagsNamed", [{"name": "beta"}, {"name": "bravo"}]),
            ("item.label", "second"),
        ),
    ),
    Case(
        "every-kind-of-error-at-once",
        "query Q($on: Boolean!) { motd items { id slowLabel secret failures { asyncRaises"
        " unexpected denied @include(if: $on) } maybeTags { name shout } }"
        " anomalies { ... on Anomalies @skip(if: $on) { missing } badInt exploding later"
        " errorInTags { name } holeTags { name } brokenMaybeTags { slowName } } }",
        variables={"on": True},
        errors=(
            *(
                error
                for index in range(3)
                for error in (
                    (f"items.{index}.secret", FORBIDDEN),
                    (f"items.{index}.failures.unexpected", INTERNAL),
                    (f"items.{index}.failures.denied", FORBIDDEN),
                )
            ),
            ("anomalies.badInt", INTERNAL),
            ("anomalies.exploding", INTERNAL),
            ("anomalies.errorInTags.1", INTERNAL),
            ("anomalies.holeTags.1", INTERNAL),
            *((f"items.{index}.failures.asyncRaises", NOT_FOUND) for index in range(3)),
            ("anomalies.brokenMaybeTags.0.slowName", INTERNAL),
            ("anomalies.brokenMaybeTags.2.slowName", INTERNAL),
        ),
        expect=(("items.0.slowLabel", "first"), ("anomalies.later", "later")),
    ),
    # Attributes holding graphql-core's Undefined: graphql-core completes them as null.
    Case(
        "a-leaf-whose-attribute-is-undefined",
        "{ sentinels { text } }",
        expect=(("sentinels.text", None),),
    ),
    Case(
        "an-object-whose-attribute-is-undefined",
        "{ sentinels { tag { name } } }",
        expect=(("sentinels.tag", None),),
    ),
    Case(
        "undefined-in-a-list-of-objects",
        "{ sentinels { tags { name } } }",
        expect=(("sentinels.tags", [{"name": "kept"}, None]),),
    ),
    Case(
        "an-awaitable-in-a-list-of-objects",
        "{ sentinels { laterInTags { name } } }",
        expect=(("sentinels.laterInTags", [{"name": "now"}, {"name": "awaited"}]),),
    ),
]


class TestPinnedVersions:
    def test_the_installed_versions_are_the_ones_the_executor_was_checked_against(self) -> None:
        installed = {name: metadata.version(name) for name in PINNED}

        assert installed == PINNED, REPIN
        assert graphql.version == PINNED["graphql-core"], REPIN

    @pytest.mark.parametrize("lock_file", ["main.txt", "dev.txt"])
    def test_the_lock_files_install_those_versions(self, lock_file: str) -> None:
        locked = (REQUIREMENTS / lock_file).read_text()

        for name, version in PINNED.items():
            pin = rf"^{re.escape(name)}=={re.escape(version)}\s"
            assert re.search(pin, locked, re.MULTILINE), f"{lock_file}: {REPIN}"


class TestTheCorpus:
    @pytest.mark.parametrize("case", CORPUS, ids=lambda case: case.id)
    async def test_planned_and_stock_answers_are_the_same(self, case: Case) -> None:
        result, _ = await both(case.document, case.variables)

        assert error_summary(result) == list(case.errors), [
            e.formatted for e in result.errors or []
        ]
        for path, value in case.expect:
            if path == "":
                assert result.data is value
            else:
                assert result.data is not None
                assert at(result.data, path) == value, path
        for error in result.errors or []:
            extensions = error.extensions or {}
            if extensions["code"] == INTERNAL:
                assert error.message == INTERNAL_ERROR_MESSAGE
                assert extensions["requestId"] == REQUEST_ID
            elif extensions["code"] == FORBIDDEN:
                assert extensions["reason"] == ErrorReason.SUPERUSER_REQUIRED
                assert error.message in {FORBIDDEN_MESSAGE, "Superuser privileges required"}

    async def test_a_dataloader_batches_the_same_keys_once(self) -> None:
        _, context = await both("{ items { owner { id } children { owner { id } } } }")

        # The owners of the items and of their children, each once, in one batch.
        assert [sorted(batch) for batch in context.batches] == [["p1", "p2"]]

    async def test_each_executor_reads_a_property_once_whatever_it_gives(self) -> None:
        AnomalySource.reads.clear()

        await both("{ anomalies { exploding explodingTag { name } later } }")

        # Once by the planned executor and once by the stock one: never read again to
        # word an error or to await what it gave.
        assert AnomalySource.reads == {"exploding": 2, "exploding_tag": 2, "later": 2}

    async def test_a_property_making_a_coroutine_at_each_read_leaves_none_unawaited(
        self,
    ) -> None:
        # As SQLAlchemy's awaitable_attrs do: whatever a read makes must be awaited, or
        # Python warns that a coroutine was never awaited (an error under this suite).
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result, _ = await both("{ sentinels { freshLater } }")
            gc.collect()

        assert result.data == {"sentinels": {"freshLater": "later"}}
        never_awaited = [str(w.message) for w in caught if "never awaited" in str(w.message)]
        assert never_awaited == []

    async def test_a_subscription_streams_the_same_events(self) -> None:
        document = "subscription { ticks { id label tags { name } failures { syncRaises } } }"
        answers: list[list[tuple[Any, list[Any]]]] = []
        for schema in (PLANNED, STOCK):
            events = []
            token = current_request_id.set(REQUEST_ID)
            try:
                async for event in await schema.subscribe(document, context_value=Context()):
                    events.append(answer(event))
            finally:
                current_request_id.reset(token)
            answers.append(events)

        planned, stock = answers
        assert planned == stock
        assert [data["ticks"]["label"] for data, _ in planned] == ["first", "second", "third"]
        assert [len(errors) for _, errors in planned] == [1, 1, 1]


# --- The shortcut runs, and only when it may ------------------------------------------------


class TestWhatRunsThroughGraphqlCore:
    DOCUMENT = (
        "{ items { __typename id label upperLabel tags { name weight } scalars { text color }"
        " failures { syncRaises } } anomalies { text missing } }"
    )

    async def test_plain_fields_are_completed_without_execute_field(self) -> None:
        planned, planned_context = await run(built(CountingPlanned), self.DOCUMENT)
        stock, stock_context = await run(built(CountingStock), self.DOCUMENT)

        assert answer(planned) == answer(stock)
        # Resolvers only: a plain field's odd value (missing) is completed without it.
        assert sorted(set(planned_context.executed)) == [
            "Failures.syncRaises",
            "Item.upperLabel",
            "Query.anomalies",
            "Query.items",
        ]
        assert planned_context.executed.count("Item.upperLabel") == len(ITEMS)
        # The stock executor runs every field through it.
        assert {"Item.id", "Item.tags", "Tag.name", "Scalars.color", "Item.__typename"} <= set(
            stock_context.executed
        )
        assert len(stock_context.executed) > 4 * len(planned_context.executed)

    @pytest.mark.parametrize(
        ("extensions", "directives", "document"),
        [
            pytest.param((PassThrough,), (), DOCUMENT, id="middleware"),
            pytest.param(
                (),
                (uppercase,),
                DOCUMENT.replace("label", "label @uppercase"),
                id="a-custom-directive",
            ),
        ],
    )
    async def test_middleware_turns_the_shortcut_off(
        self,
        extensions: tuple[type[SchemaExtension], ...],
        directives: tuple[Any, ...],
        document: str,
    ) -> None:
        planned, planned_context = await run(
            built(CountingPlanned, *extensions, directives=directives), document
        )
        stock, stock_context = await run(
            built(CountingStock, *extensions, directives=directives), document
        )

        assert answer(planned) == answer(stock)
        assert planned_context.executed == stock_context.executed
        assert "Tag.name" in planned_context.executed
        assert planned.data is not None
        if directives:
            assert planned.data["items"][0]["label"] == "FIRST"

    async def test_unvalidated_documents_are_answered_as_graphql_core_answers_them(
        self,
    ) -> None:
        # Without validation, unknown fields are left out and unknown directives ignored.
        pair = (
            built(PlannedExecutionContext, DisableValidation),
            built(StrawberryGraphQLCoreExecutionContext, DisableValidation),
        )
        result, _ = await both(
            "{ items { id nothing label @unknown tags { name @unknown } } motd @unknown }",
            pair=pair,
        )

        assert result.errors is None
        assert result.data is not None
        assert result.data["items"][1] == {"id": "i2", "label": "second", "tags": []}
        assert result.data["motd"] == "Hello"


# --- Random documents -----------------------------------------------------------------------

# Arguments for the fields that take them; the generator leaves out the others.
ARGUMENTS = {
    ("Query", "item"): '(id: "i1")',
    ("Query", "node"): '(id: "p2")',
    ("Item", "tagsNamed"): '(prefix: "b")',
}
LEFT_OUT = {("Query", "__schema"), ("Query", "__type")}
DIRECTIVES = ["", "", " @include(if: $yes)", " @skip(if: $yes)", " @include(if: $no)"]
GRAPHQL_SCHEMA = PLANNED._schema


@cache
def selectable(type_name: str, depth: int) -> list[str]:
    """The fields of the type a document may select with ``depth`` levels left below."""
    type_ = GRAPHQL_SCHEMA.get_type(type_name)
    if isinstance(type_, graphql.GraphQLUnionType):
        return ["__typename"]
    assert isinstance(type_, graphql.GraphQLObjectType | graphql.GraphQLInterfaceType)
    names = []
    for name, field in type_.fields.items():
        if (type_name, name) in LEFT_OUT or (field.args and (type_name, name) not in ARGUMENTS):
            continue
        if depth == 0 and not graphql.is_leaf_type(graphql.get_named_type(field.type)):
            continue
        names.append(name)
    return [*sorted(names), "__typename"]


@cache
def conditions(type_name: str) -> list[str]:
    """The type conditions a fragment on the type may have: itself and its object types."""
    type_ = GRAPHQL_SCHEMA.get_type(type_name)
    assert isinstance(type_, graphql.GraphQLObjectType | graphql.GraphQLAbstractType)
    if isinstance(type_, graphql.GraphQLObjectType):
        return [type_name]
    return [type_name, *sorted(t.name for t in GRAPHQL_SCHEMA.get_possible_types(type_))]


@st.composite
def selection_set(
    draw: st.DrawFn, type_name: str, depth: int, fragments: list[str], fragments_left: int = 1
) -> str:
    """A selection set on the type: fields, aliases, fragments and directives, drawn at random.

    ``depth`` bounds the levels of fields below, ``fragments_left`` how deep fragments nest.
    """
    kinds = ["field", "field", "field"] + ["inline", "spread"] * (fragments_left > 0)
    parts = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        directive = draw(st.sampled_from(DIRECTIVES))
        kind = draw(st.sampled_from(kinds))
        if kind != "field":
            condition = draw(st.sampled_from(conditions(type_name)))
            inner = draw(selection_set(condition, depth, fragments, fragments_left - 1))
            if kind == "spread":
                name = f"F{len(fragments)}"
                fragments.append(f"fragment {name} on {condition} {inner}")
                parts.append(f"...{name}{directive}")
            elif condition == type_name and draw(st.booleans()):
                parts.append(f"...{directive} {inner}")
            else:
                parts.append(f"... on {condition}{directive} {inner}")
            continue
        name = draw(st.sampled_from(selectable(type_name, depth)))
        alias = draw(st.sampled_from(["", "", f"{name}1: ", f"{name}2: "]))
        field = f"{alias}{name}{ARGUMENTS.get((type_name, name), '')}{directive}"
        if name != "__typename":
            parent = GRAPHQL_SCHEMA.get_type(type_name)
            assert isinstance(parent, graphql.GraphQLObjectType | graphql.GraphQLInterfaceType)
            field_type = graphql.get_named_type(parent.fields[name].type)
            if graphql.is_composite_type(field_type):
                field += " " + draw(selection_set(field_type.name, depth - 1, fragments))
        parts.append(field)
    return "{ " + " ".join(parts) + " }"


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, dict[str, bool]]:
    fragments: list[str] = []
    root = draw(selection_set("Query", 2, fragments))
    # Both variables are used whatever was drawn (an unused variable is a validation error).
    operation = (
        "query Q($yes: Boolean!, $no: Boolean!) "
        "{ yes: __typename @include(if: $yes) no: __typename @skip(if: $no) "
        f"{root[2:]}"
    )
    variables = {"yes": draw(st.booleans()), "no": draw(st.booleans())}
    return " ".join([operation, *fragments]), variables


RANDOM_DOCUMENTS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class TestRandomDocuments:
    @RANDOM_DOCUMENTS
    @given(drawn=documents())
    async def test_planned_and_stock_answers_are_the_same(
        self, drawn: tuple[str, dict[str, bool]]
    ) -> None:
        document, variables = drawn

        result, _ = await both(document, variables)

        # Every drawn document is valid: its errors, if any, are the errors of fields.
        assert all(error.path for error in result.errors or []), document

        # The variables were applied (data is null when an error propagated to the root).
        if result.data is not None:
            assert ("yes" in result.data) is variables["yes"]
            assert ("no" in result.data) is not variables["no"]


# --- The app ------------------------------------------------------------------------------

USERS = """
query {
  users(first: 3) {
    edges { cursor node { id email __typename } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
ME = "query { me { id email fullName isActive __typename } }"


@contextmanager
def execute_field_calls() -> Iterator[list[str]]:
    """The fields graphql-core's execute_field runs in this thread, counted as they start."""
    code = Executor.execute_field.__code__
    calls: list[str] = []

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code is code:
            calls.append(frame.f_locals["field_details_list"][0].node.name.value)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield calls
    finally:
        sys.setprofile(previous)


class TestTheApp:
    def test_the_app_schema_is_served_by_the_planned_executor(self, settings: Settings) -> None:
        schema, _ = schema_for(settings)

        assert schema.execution_context_class is PlannedExecutionContext

    async def test_a_page_of_users(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        test_user: User,
        db_session: AsyncSession,
    ) -> None:
        await create_user(db_session, email="member00@example.com")
        await create_user(db_session, email="member01@example.com")

        with execute_field_calls() as calls:
            response = await gql(USERS, token=superuser_token)

        assert response.errors == []
        connection = response.data["users"]
        nodes = [edge["node"] for edge in connection["edges"]]
        assert [node["email"] for node in nodes] == [
            "superuser@example.com",
            "testuser@example.com",
            "member00@example.com",
        ]
        assert nodes[1]["id"] == str(test_user.id)
        assert {node["__typename"] for node in nodes} == {"User"}
        assert connection["pageInfo"] == {
            "hasNextPage": True,
            "endCursor": connection["edges"][-1]["cursor"],
        }
        # Only the root field has a resolver; every field below it is plain.
        assert calls == ["users"]

    async def test_resolver_fields_of_the_app_still_run_through_graphql_core(
        self, gql: GraphQLClient, superuser_token: str, test_user: User
    ) -> None:
        with execute_field_calls() as calls:
            response = await gql(
                "{ users(first: 2) { edges { node { email mfaEnabled } } totalCount } }",
                token=superuser_token,
            )

        assert response.errors == []
        assert response.data["users"]["totalCount"] == 2
        assert [edge["node"]["mfaEnabled"] for edge in response.data["users"]["edges"]] == [
            False,
            False,
        ]
        assert sorted(calls) == ["mfaEnabled", "mfaEnabled", "totalCount", "users"]

    async def test_me(self, gql: GraphQLClient, test_user: User, user_token: str) -> None:
        with execute_field_calls() as calls:
            response = await gql(ME, token=user_token)

        assert response.errors == []
        assert response.data == {
            "me": {
                "id": str(test_user.id),
                "email": "testuser@example.com",
                "fullName": None,
                "isActive": True,
                "__typename": "User",
            }
        }
        assert calls == ["me"]

    async def test_the_app_permissions_still_refuse(
        self, gql: GraphQLClient, user_token: str
    ) -> None:
        refused = await gql(USERS, token=user_token)
        anonymous = await gql(ME)

        error = refused.single_error("FORBIDDEN")
        assert error["extensions"]["reason"] == "SUPERUSER_REQUIRED"
        assert error["path"] == ["users"]
        assert anonymous.single_error("UNAUTHENTICATED")["path"] == ["me"]
        assert refused.data is None
        assert anonymous.data is None


class TestOtherVersionsInstalled:
    """An install with other graphql-core or Strawberry versions runs graphql-core alone."""

    @pytest.fixture
    def other_versions(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        # What importlib.metadata would report for an install outside the lock files.
        monkeypatch.setattr(
            planned_execution,
            "installed_versions",
            lambda: {"graphql-core": "3.3.99", "strawberry-graphql": "0.341.2"},
        )
        planned_execution.checked_versions_installed.cache_clear()
        yield
        planned_execution.checked_versions_installed.cache_clear()

    @pytest.mark.usefixtures("other_versions")
    async def test_the_shortcuts_are_off_and_said_to_be(
        self,
        settings: Settings,
        async_test_db: tuple[AsyncEngine, SessionFactory],
        app_log: LogRecords,
        test_user: User,
        user_token: str,
    ) -> None:
        app = create_app(settings)
        app.state.session_factory = async_test_db[1]
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
            response = await GraphQLClient(http)(ME, token=user_token)

        assert response.data["me"]["email"] == "testuser@example.com"
        schema, _ = schema_for(settings)
        assert schema.execution_context_class is not PlannedExecutionContext
        middleware: list[object] = [entry.cls for entry in app.user_middleware]
        assert LeanLane not in middleware
        [warning] = [r for r in app_log.records if "planned executor" in r.getMessage()]
        assert warning.levelno == logging.WARNING
        assert "3.3.99" in warning.getMessage()
        await app.state.engine.dispose()
