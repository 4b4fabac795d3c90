"""An outage is logged once when it starts and once when it ends, never once per request."""

from gql_app.availability import Availability, Dependency, describe
from tests.conftest import LogRecords


def test_the_first_failure_is_logged_and_the_rest_are_counted(app_log: LogRecords) -> None:
    availability = Availability()

    for _ in range(3):
        availability.failed(Dependency.REDIS, ConnectionError("Connect call failed"))

    assert availability.is_down(Dependency.REDIS)
    assert len(app_log.records) == 1
    record = app_log.records[0]
    assert record.levelname == "ERROR"
    assert record.exc_info is None
    assert "redis unavailable (ConnectionError: Connect call failed)" in record.getMessage()


def test_the_first_success_ends_the_outage_once(app_log: LogRecords) -> None:
    availability = Availability()
    availability.failed(Dependency.DATABASE, TimeoutError())
    availability.failed(Dependency.DATABASE, TimeoutError())

    availability.answered(Dependency.DATABASE)
    availability.answered(Dependency.DATABASE)

    assert not availability.is_down(Dependency.DATABASE)
    messages = [record.getMessage() for record in app_log.records]
    assert len(messages) == 2
    assert messages[1].startswith("database available again after ")
    assert messages[1].endswith("(2 failed attempts)")
    assert app_log.records[1].__dict__["failures"] == 2


def test_dependencies_are_tracked_apart() -> None:
    availability = Availability()

    availability.failed(Dependency.REDIS, OSError("down"))

    assert availability.is_down(Dependency.REDIS)
    assert not availability.is_down(Dependency.DATABASE)


def test_a_description_is_one_line_whatever_the_driver_adds() -> None:
    error = RuntimeError("connection was closed\n[SQL: SELECT users.id FROM users]")

    assert describe(error) == "RuntimeError: connection was closed"
    assert describe(TimeoutError()) == "TimeoutError"
