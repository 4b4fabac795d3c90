"""The enumeration benchmark runs end to end; its numbers are reported, never asserted here."""

import json
from pathlib import Path

import pytest

from bench import enumeration


@pytest.mark.slow
@pytest.mark.bench_smoke
def test_runs_and_reports_every_comparison(tmp_path: Path) -> None:
    output = tmp_path / "enumeration.json"

    assert enumeration.main(["--samples", "1", "--json", str(output)]) == 0

    results = json.loads(output.read_text())
    assert results["samples"] == 1
    for comparison in (
        "login_wrong_password_vs_unknown_email",
        "password_reset_existing_vs_unknown_email",
        "register_concealed_existing_vs_new_email",
    ):
        assert set(results[comparison]) == {
            "existing_median_ms",
            "unknown_median_ms",
            "relative_difference",
        }
