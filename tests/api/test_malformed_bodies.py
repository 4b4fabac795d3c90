"""A malformed body of any kind is a typed 400, never a 500 and never a traceback."""

import pytest
from httpx import AsyncClient

from gql_app.api.media_types import GRAPHQL_RESPONSE_JSON, JSON
from tests.conftest import LogRecords

MALFORMED = [
    pytest.param(b'{"query":"{__typename}","variables":{"x":"\xff"}}', id="invalid-utf-8"),
    pytest.param(b'{"query":"{ __typename \xfe }"}', id="invalid-utf-8-in-query"),
    pytest.param(
        b'{"query":"{__typename}","variables":{"x":' + b"9" * 5000 + b"}}", id="huge-integer"
    ),
    pytest.param(b'{"query":"{__typename}","variables":{"x":NaN}}', id="nan"),
    pytest.param(b'{"query":"{__typename}","variables":{"x":-Infinity}}', id="infinity"),
    pytest.param(b"[" * 100_000, id="deep-nesting-unfinished"),
    pytest.param(b'{"query":"{__typename}",', id="truncated"),
    pytest.param(b"", id="empty"),
    pytest.param(b'"just a string"', id="not-an-object"),
    pytest.param(b'{"query": 5}', id="query-number"),
    pytest.param(b'{"query": true}', id="query-boolean"),
    pytest.param(b'{"query":"{__typename}","variables":"x"}', id="variables-string"),
    pytest.param(b'{"query":"{__typename}","operationName":true}', id="operation-name-boolean"),
    pytest.param(b'{"query":"{__typename}","operationName":["A"]}', id="operation-name-list"),
    pytest.param(b'{"query":"{__typename}","extensions":[1]}', id="extensions-list"),
]


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE_JSON])
@pytest.mark.parametrize("body", MALFORMED)
async def test_is_a_typed_400(
    client: AsyncClient, app_log: LogRecords, body: bytes, accept: str
) -> None:
    response = await client.post(
        "/graphql", content=body, headers={"content-type": JSON, "accept": accept}
    )

    assert response.status_code == 400
    assert response.headers["content-type"].startswith(accept)
    assert [error["extensions"]["code"] for error in response.json()["errors"]] == ["BAD_REQUEST"]
    assert [r for r in app_log.records if r.levelname == "ERROR"] == []


async def test_the_message_says_what_is_wrong_without_echoing_the_body(
    client: AsyncClient,
) -> None:
    body = b'{"query":"{__typename}","variables":{"secret":"\xff' + b"s3cr3t" + b'"}}'

    response = await client.post("/graphql", content=body, headers={"content-type": JSON})

    message = response.json()["errors"][0]["message"]
    assert "utf-8" in message
    assert "s3cr3t" not in message
