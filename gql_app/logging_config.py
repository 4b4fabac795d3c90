import logging

_HANDLER_NAME = "gql_app"


def configure_logging(level: str) -> None:
    """Give the application's loggers a handler of their own, once, whatever the server set up."""
    app_logger = logging.getLogger("gql_app")
    app_logger.setLevel(level.upper())
    if any(handler.get_name() == _HANDLER_NAME for handler in app_logger.handlers):
        return
    handler = logging.StreamHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    app_logger.addHandler(handler)
    app_logger.propagate = False
