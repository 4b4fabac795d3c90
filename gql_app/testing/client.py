"""Posting GraphQL documents to a running gql-app, as a test does: the ``data`` back, or one
exception that carries the error's code, reason and fields."""

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from http.client import HTTPResponse
from typing import Any

REQUEST_TIMEOUT_SECONDS = 30.0


class GqlAppError(Exception):
    """The answer had errors (or was not a GraphQL answer at all); the first one's details.

    ``code`` is ``extensions.code`` (None when the server did not answer in GraphQL's shape),
    ``reason`` is ``extensions.reason`` (the README's error table), ``fields`` maps each input
    field ``BAD_USER_INPUT`` names to its message and ``field_codes`` to its code
    (``TOO_SHORT``, ``INVALID_EMAIL``, ...), ``errors`` holds every error and
    ``response`` the whole decoded answer (None when it was not JSON).
    """

    def __init__(self, *, status: int, response: Any, text: str) -> None:
        self.status = status
        self.response = response
        errors = response.get("errors") if isinstance(response, dict) else None
        self.errors: list[dict[str, Any]] = errors if isinstance(errors, list) else []
        first = self.errors[0] if self.errors else {}
        extensions = first.get("extensions") or {}
        self.code: str | None = extensions.get("code")
        self.reason: str | None = extensions.get("reason")
        self.fields: dict[str, str] = {}
        self.field_codes: dict[str, str] = {}
        for problem in extensions.get("fields") or []:
            self.fields.setdefault(problem["field"], problem["message"])
            self.field_codes.setdefault(problem["field"], problem["code"])
        self.message: str = first.get("message") or f"HTTP {status}: {text[:200]}"
        super().__init__(f"{self.code}: {self.message}" if self.code else self.message)


class GqlClient:
    """Calls one server's ``/graphql``; ``client(document, variables, token=...)``."""

    def __init__(self, graphql_url: str, *, timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        self.url = graphql_url
        self.timeout = timeout

    def __call__(
        self,
        document: str,
        variables: Mapping[str, Any] | None = None,
        *,
        token: str | None = None,
        operation_name: str | None = None,
    ) -> Any:
        """The answer's ``data``; GqlAppError when the answer has any error."""
        payload: dict[str, Any] = {"query": document}
        if variables is not None:
            payload["variables"] = dict(variables)
        if operation_name is not None:
            payload["operationName"] = operation_name
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(  # noqa: S310 - the URL is the test server's, http
            self.url, data=json.dumps(payload).encode(), headers=headers, method="POST"
        )
        status, text = self._send(request)
        try:
            answer = json.loads(text)
        except json.JSONDecodeError:
            raise GqlAppError(status=status, response=None, text=text) from None
        if not isinstance(answer, dict) or answer.get("errors") or "data" not in answer:
            raise GqlAppError(status=status, response=answer, text=text)
        return answer["data"]

    def refused(
        self,
        document: str,
        variables: Mapping[str, Any] | None = None,
        *,
        token: str | None = None,
    ) -> GqlAppError:
        """The error a call that must fail answers with; AssertionError when it succeeds."""
        try:
            data = self(document, variables, token=token)
        except GqlAppError as error:
            return error
        raise AssertionError(f"expected an error, the answer was data: {data!r}")

    def _send(self, request: urllib.request.Request) -> tuple[int, str]:
        try:
            response: HTTPResponse
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as refused:
            # 4xx and 5xx answers carry a GraphQL body too.
            with refused:
                return refused.code, refused.read().decode("utf-8", "replace")
