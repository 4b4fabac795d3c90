"""An outage is logged once when it starts and once when it ends, never once per request."""

from gql_app.availability import SETTLE_SECONDS, Availability, Dependency, describe
from tests.conftest import LogRecords


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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


def test_a_success_once_failures_have_stopped_ends_the_outage_once(app_log: LogRecords) -> None:
    clock = Clock()
    availability = Availability(clock=clock)
    availability.failed(Dependency.DATABASE, TimeoutError())
    clock.now += 2
    availability.failed(Dependency.DATABASE, TimeoutError())
    clock.now += SETTLE_SECONDS

    availability.answered(Dependency.DATABASE)
    availability.answered(Dependency.DATABASE)

    assert not availability.is_down(Dependency.DATABASE)
    messages = [record.getMessage() for record in app_log.records]
    assert messages[1:] == ["database available again after 2.0 s of failures (2 failed attempts)"]
    assert app_log.records[1].__dict__["failures"] == 2


def test_a_flapping_dependency_makes_one_outage(app_log: LogRecords) -> None:
    clock = Clock()
    availability = Availability(clock=clock)

    for _ in range(20):  # a saturated pool: one request times out, the next is served
        availability.failed(Dependency.DATABASE, TimeoutError("QueuePool limit reached"))
        clock.now += 0.1
        availability.answered(Dependency.DATABASE)

    assert availability.is_down(Dependency.DATABASE)
    assert len(app_log.records) == 1


def test_dependencies_are_tracked_apart() -> None:
    availability = Availability()

    availability.failed(Dependency.REDIS, OSError("down"))

    assert availability.is_down(Dependency.REDIS)
    assert not availability.is_down(Dependency.DATABASE)


def test_a_description_is_one_line_whatever_the_driver_adds() -> None:
    error = RuntimeError("connection was closed\n[SQL: SELECT users.id FROM users]")

    assert describe(error) == "RuntimeError: connection was closed"
    assert describe(TimeoutError()) == "TimeoutError"
