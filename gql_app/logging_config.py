"""Application logs: JSON lines in production, readable lines in development.

Every record written while a request is handled carries that request's id.
"""

import logging
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

_HANDLER_NAME = "gql_app"

# The id of the request being handled in this task, if any.
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get() or "-"
        return True


def _formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")


def configure_logging(level: str, *, log_format: str = "text") -> None:
    """Give the application's loggers a handler of their own, whatever the server set up."""
    app_logger = logging.getLogger("gql_app")
    app_logger.setLevel(level.upper())
    for handler in app_logger.handlers:
        if handler.get_name() == _HANDLER_NAME:
            # Another app in this process (tests build many) may want another format.
            handler.setFormatter(_formatter(log_format))
            return
    handler = logging.StreamHandler()
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(_formatter(log_format))
    app_logger.addHandler(handler)
    app_logger.propagate = False
