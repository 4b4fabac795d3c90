"""The benchmark suite runs end to end; its numbers are reported, never asserted here."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import suite
from gql_app.security.signing_keys import SIGNING_ALGORITHMS
from tests.e2e.postgres import postgres_server


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each database on a run of its own, so the two can run on two test workers at once."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    with postgres_server() as url:  # skips without a server, fails under CI
        monkeypatch.setenv("TEST_DATABASE_URL", url)
        yield "postgresql"


@pytest.mark.slow
@pytest.mark.bench_smoke
def test_runs_every_scenario_and_writes_the_report(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "bench.json"

    exit_code = suite.main(
        [
            "--seconds=1",
            "--rounds=1",
            "--warmup-seconds=0",
            "--verify-samples=1",
            "--login-seconds=1",
            "--token-iterations=20",
            "--users-sqlite=300",
            "--users-postgresql=300",
            f"--database={database}",
            f"--json={output}",
        ]
    )

    assert exit_code == 0
    report = json.loads(output.read_text())
    assert [result["database"] for result in report["results"]] == [database]
    for result in report["results"]:
        assert set(result["metrics"]) == set(suite.TARGETS)
        assert result["invalid"] == []
        # Every answer under load was a 200 without GraphQL errors.
        for scenario in ("me", "users"):
            for side in ("graphql", "baseline"):
                assert result["details"][scenario][side]["failures"] == 0
        for listing in ("pagination", "events_pagination"):
            for page in ("first_page", "last_page"):
                assert result["details"][listing][page]["failures"] == 0
        assert result["details"]["login"]["failures"] == 0
        assert result["details"]["me_during_login_storm"]["me"]["failures"] == 0
    # Every algorithm signed and verified every token asked for (a failed verify raises).
    assert set(report["tokens"]) == set(SIGNING_ALGORITHMS)
    assert all(timing["samples"] == 20 for timing in report["tokens"].values())
    table = capsys.readouterr().out
    assert all(metric in table for metric in suite.TARGETS)
    assert all(f"\n{algorithm} " in table for algorithm in SIGNING_ALGORITHMS)
