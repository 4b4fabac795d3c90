"""The one place where domain errors and unexpected exceptions become GraphQL errors."""

import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from enum import Enum, auto
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.utils.str_converters import to_camel_case

from gql_app.api.error_codes import ErrorCode, ErrorReason, FieldErrorCode
from gql_app.errors import (
    AuthenticationError,
    ConflictError,
    DomainError,
    EmailDeliveryError,
    InputValidationError,
    MfaRequiredError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
)
from gql_app.logging_config import current_request_id

logger = logging.getLogger("gql_app.errors")

INTERNAL_ERROR_MESSAGE = "Internal server error"

_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
_VARIABLE_ERROR = re.compile(r"^Variable '\$(?P<name>\w+)'")
# A @oneOf input given no member, or more than one (or one that is null): the client's input,
# whether it came in the document or in the variables.
_ONE_OF_ERROR = re.compile(
    r"^(OneOf Input Object '(?P<type>\w+)' must specify exactly one key"
    r"|Value for member field '(?P<member>\w+)' must be non-null)"
)
# Left out, null where the type says non-null, or an input object without a required field.
_VARIABLE_MISSING = re.compile(
    r"^Variable '\$\w+' has invalid value: Expected (a )?value of (non-null )?type '[^']+'"
    r" (to be provided|not to be None|to include required field)"
)

_DOMAIN_CODES: dict[type[DomainError], ErrorCode] = {
    AuthenticationError: ErrorCode.UNAUTHENTICATED,
    PermissionDeniedError: ErrorCode.FORBIDDEN,
    NotFoundError: ErrorCode.NOT_FOUND,
    ConflictError: ErrorCode.CONFLICT,
    InputValidationError: ErrorCode.BAD_USER_INPUT,
    EmailDeliveryError: ErrorCode.EMAIL_DELIVERY_FAILED,
    RateLimitedError: ErrorCode.RATE_LIMITED,
    ServiceUnavailableError: ErrorCode.SERVICE_UNAVAILABLE,
    MfaRequiredError: ErrorCode.MFA_REQUIRED,
}


class Stage(Enum):
    """Where an error was raised: errors of the document itself are coded by it."""

    PARSE = auto()
    VALIDATE = auto()
    EXECUTE = auto()


def domain_error_code(error: DomainError) -> ErrorCode:
    for error_type in type(error).__mro__:
        code = _DOMAIN_CODES.get(error_type)
        if code is not None:
            return code
    return ErrorCode.INTERNAL_SERVER_ERROR


class ErrorMapping(SchemaExtension):
    """Gives every error an ``extensions.code`` and masks anything unexpected."""

    def __init__(self, *, hide_suggestions: bool = False, stage: Stage = Stage.PARSE) -> None:
        self._stage = stage
        self._hide_suggestions = hide_suggestions

    def on_parse(self) -> Iterator[None]:
        self._stage = Stage.PARSE
        yield

    def on_validate(self) -> Iterator[None]:
        self._stage = Stage.VALIDATE
        yield

    def on_execute(self) -> Iterator[None]:
        self._stage = Stage.EXECUTE
        yield

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self.mapped(errors)  # type: ignore[union-attr]

    def mapped(self, errors: Sequence[GraphQLError]) -> list[GraphQLError]:
        """The errors as clients see them: coded, masked where unexpected, each once."""
        mapped = [self._map(error) for error in errors]
        if self._hide_suggestions:
            mapped = [_without_suggestion(error) for error in mapped]
        return _once_each(mapped)

    def _map(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, DomainError):
            return self._domain(error, original)
        if error.extensions and "code" in error.extensions:
            # Coded where it was raised (permissions): the reason, if it had none, is the code.
            if "reason" in error.extensions:
                return error
            return _rebuilt(error, extensions=_with_reason(error.extensions))
        # graphql-core's own errors (syntax, validation, variable coercion) wrap
        # nothing or another GraphQLError; any other exception is unexpected.
        if original is None or isinstance(original, GraphQLError):
            return self._document_error(error)
        return self._internal(error)

    def _document_error(self, error: GraphQLError) -> GraphQLError:
        if one_of := _ONE_OF_ERROR.match(error.message):
            return _rebuilt(error, extensions=_one_of_error_extensions(error, one_of))
        code = self._document_error_code(error)
        if code is ErrorCode.BAD_USER_INPUT:
            return _rebuilt(error, extensions=_variable_error_extensions(error))
        if code is not None:
            return _rebuilt(
                error, extensions=_with_reason({**(error.extensions or {}), "code": code})
            )
        return self._internal(error)

    def _document_error_code(self, error: GraphQLError) -> ErrorCode | None:
        if self._stage is Stage.PARSE:
            return ErrorCode.GRAPHQL_PARSE_FAILED
        if self._stage is Stage.VALIDATE:
            return ErrorCode.GRAPHQL_VALIDATION_FAILED
        if error.path is None:
            # Raised before any field ran: variables that do not fit their types
            # are the client's input; anything else is about the operation itself.
            if _VARIABLE_ERROR.match(error.message):
                return ErrorCode.BAD_USER_INPUT
            return ErrorCode.GRAPHQL_VALIDATION_FAILED
        return None

    @staticmethod
    def _domain(error: GraphQLError, original: DomainError) -> GraphQLError:
        extensions: dict[str, Any] = {
            "code": domain_error_code(original),
            "reason": original.reason,
        }
        if isinstance(original, InputValidationError):
            extensions["fields"] = [
                {
                    "field": to_camel_case(problem.field),
                    "code": problem.code,
                    "message": problem.message,
                }
                for problem in original.fields
            ]
        if isinstance(original, RateLimitedError | ServiceUnavailableError):
            extensions["retryAfter"] = original.retry_after
        if isinstance(original, MfaRequiredError):
            extensions["challenge"] = original.challenge
            extensions["methods"] = original.methods
            extensions["expiresIn"] = original.expires_in
            if original.passkey_options is not None:
                extensions["passkeyOptions"] = {
                    "challengeId": original.passkey_options.challenge_id,
                    "options": original.passkey_options.options,
                }
        return _rebuilt(error, message=original.message, extensions=extensions)

    @staticmethod
    def _internal(error: GraphQLError) -> GraphQLError:
        request_id = current_request_id.get() or uuid.uuid4().hex
        exception = error.original_error or error
        logger.error(
            "Unexpected error (request id %s) at %s",
            request_id,
            ".".join(str(part) for part in error.path or ()) or "<operation>",
            exc_info=(type(exception), exception, exception.__traceback__),
        )
        return _rebuilt(
            error,
            message=INTERNAL_ERROR_MESSAGE,
            extensions={
                "code": ErrorCode.INTERNAL_SERVER_ERROR,
                "reason": ErrorReason.INTERNAL_SERVER_ERROR,
                "requestId": request_id,
            },
        )


def map_errors(
    errors: Sequence[GraphQLError], *, stage: Stage, hide_suggestions: bool
) -> list[GraphQLError]:
    """Errors raised at ``stage`` of an operation, mapped as ErrorMapping maps them there."""
    return ErrorMapping(hide_suggestions=hide_suggestions, stage=stage).mapped(errors)


def _rebuilt(
    error: GraphQLError, *, extensions: dict[str, Any], message: str | None = None
) -> GraphQLError:
    """The same error at the same place, with a new message or extensions and no original."""
    return GraphQLError(
        message or error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def _one_of_error_extensions(error: GraphQLError, match: re.Match[str]) -> dict[str, Any]:
    # graphql-core names the input type (or the member), not the argument that holds it.
    field = match["member"] or match["type"]
    return {
        "code": ErrorCode.BAD_USER_INPUT,
        "reason": ErrorReason.BAD_USER_INPUT,
        "fields": [
            {"field": field, "code": FieldErrorCode.INVALID_VALUE, "message": error.message}
        ],
    }


def _variable_error_extensions(error: GraphQLError) -> dict[str, Any]:
    match = _VARIABLE_ERROR.match(error.message)
    assert match is not None, "only called for variable errors"
    code = FieldErrorCode.REQUIRED if _VARIABLE_MISSING.match(error.message) else None
    return {
        "code": ErrorCode.BAD_USER_INPUT,
        "reason": ErrorReason.BAD_USER_INPUT,
        "fields": [
            {
                "field": match["name"],
                "code": code or FieldErrorCode.INVALID_VALUE,
                "message": error.message,
            }
        ],
    }


def _with_reason(extensions: dict[str, Any]) -> dict[str, Any]:
    """Extensions whose reason, where none is finer, is the code itself."""
    if "reason" in extensions:
        return dict(extensions)
    return {**extensions, "reason": ErrorReason(extensions["code"])}


def _without_suggestion(error: GraphQLError) -> GraphQLError:
    # "Did you mean 'email'?" tells a stranger the schema's names; production keeps them.
    if "Did you mean" not in error.message:
        return error
    extensions = dict(error.extensions or {})
    if "fields" in extensions:
        extensions["fields"] = [
            {**entry, "message": _SUGGESTION.sub("", entry["message"])}
            for entry in extensions["fields"]
        ]
    return _rebuilt(error, message=_SUGGESTION.sub("", error.message), extensions=extensions)


def _once_each(errors: list[GraphQLError]) -> list[GraphQLError]:
    """Document errors repeated by the same mistake (a directive used 100 times) answer once."""
    seen: set[tuple[str, str]] = set()
    unique: list[GraphQLError] = []
    for error in errors:
        key = (error.message, str(error.path))
        if key not in seen:
            seen.add(key)
            unique.append(error)
    return unique
