import pytest

from gql_app.api.media_types import GRAPHQL_RESPONSE_JSON, JSON, negotiate_response_type


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        pytest.param(None, JSON, id="no-header"),
        pytest.param("", JSON, id="empty"),
        pytest.param("*/*", JSON, id="anything"),
        pytest.param("application/*", JSON, id="any-application"),
        pytest.param("application/json", JSON, id="json"),
        pytest.param(GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON, id="graphql-response"),
        pytest.param(
            f"{GRAPHQL_RESPONSE_JSON}, application/json;q=0.9",
            GRAPHQL_RESPONSE_JSON,
            id="graphql-over-http-client",
        ),
        pytest.param(
            f"application/json, {GRAPHQL_RESPONSE_JSON}", GRAPHQL_RESPONSE_JSON, id="equal-quality"
        ),
        pytest.param(f"{GRAPHQL_RESPONSE_JSON};q=0.5, application/json", JSON, id="json-preferred"),
        pytest.param(
            f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8", GRAPHQL_RESPONSE_JSON, id="charset"
        ),
        pytest.param("text/html, */*;q=0.8", JSON, id="browser"),
        pytest.param("APPLICATION/JSON", JSON, id="case"),
        pytest.param(
            f"application/json;q=nan, {GRAPHQL_RESPONSE_JSON}", GRAPHQL_RESPONSE_JSON, id="nan"
        ),
        pytest.param("application/json;q=0, */*", GRAPHQL_RESPONSE_JSON, id="refused-by-name"),
        pytest.param(f"{GRAPHQL_RESPONSE_JSON};q=0, */*", JSON, id="other-refused-by-name"),
    ],
)
def test_picks_what_the_client_prefers(accept: str | None, chosen: str) -> None:
    assert negotiate_response_type(accept) == chosen


@pytest.mark.parametrize(
    "accept",
    [
        "text/plain",
        "application/xml, text/html",
        "application/json;q=0",
        "application/json;q=x",
        "application/json;q=2",
        "application/json;q=inf",
        f"application/json;q=0, {GRAPHQL_RESPONSE_JSON};q=0, */*",
    ],
)
def test_nothing_acceptable_gives_none(accept: str) -> None:
    assert negotiate_response_type(accept) is None
