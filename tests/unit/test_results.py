"""results.jsonl and run.json: decimals as strings, a killed run's last line is skipped."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.results import (
    CheckResult,
    Measurement,
    ResultsWriter,
    RunInfo,
    Status,
    load_results,
    load_run,
    to_jsonable,
)


def _result(check_id: str, status: Status = Status.PASSED) -> CheckResult:
    return CheckResult(
        id=check_id,
        area="LIQ",
        title="t",
        topic="x",
        source="§6",
        venue="sim",
        status=status,
        expected="1",
        observed="1",
        measurements=(
            Measurement(
                label="m",
                expected="1",
                observed="1",
                tolerance="0.1",
                deviation="0",
                unit="USDT",
                passed=True,
            ),
        ),
        evidence={"chart": {"type": "series", "series": {"mark": [["0", "1.5"]]}}},
        seed=3,
    )


def test_writer_round_trips_results_and_run_info(tmp_path: Path) -> None:
    run = RunInfo(
        run_id="r", venue="sim", seed=3, defects=[], versions={}, config={}, started_at="t0"
    )
    writer = ResultsWriter(tmp_path, run)
    writer.write(_result("LIQ-001"))
    writer.write(_result("LIQ-002", Status.FAILED))
    writer.close()
    assert load_results(tmp_path) == [_result("LIQ-001"), _result("LIQ-002", Status.FAILED)]
    info = load_run(tmp_path)
    assert info.counts == {"passed": 1, "failed": 1}


def test_truncated_last_line_of_a_killed_run_is_skipped(tmp_path: Path) -> None:
    line = json.dumps(_result("LIQ-001").to_json())
    (tmp_path / "results.jsonl").write_text(line + "\n" + line[: len(line) // 2])
    assert [r.id for r in load_results(tmp_path)] == ["LIQ-001"]


def test_decimals_travel_as_strings() -> None:
    assert to_jsonable({"a": Decimal("0.10"), "b": (Decimal("1E+3"),)}) == {
        "a": "0.10",
        "b": ["1000"],
    }


def test_a_folder_without_run_json_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a perpcheck run folder"):
        load_run(tmp_path)
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load_run(tmp_path)
