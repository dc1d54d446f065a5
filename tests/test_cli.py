"""``perpcheck`` as a user runs it: real subprocesses, real exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from adapters.sim import scenarios

CLI = [sys.executable, "-m", "harness.cli"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def _run_dirs(report_dir: Path) -> list[Path]:
    """The run folders (the report folder also holds allurerc.mjs)."""
    return [p for p in report_dir.iterdir() if p.is_dir()]


def test_run_writes_run_json_results_and_report_and_prints_where(tmp_path: Path) -> None:
    proc = _cli("run", "--seed", "11", "-k", "ORD-001 or MARK-002", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run_dir,) = _run_dirs(tmp_path / "reports")
    assert run_dir.name.endswith("-sim-s11")
    assert f"report: reports/{run_dir.name}/index.html" in proc.stdout
    run = json.loads((run_dir / "run.json").read_text())
    assert run["complete"] is True
    assert run["seed"] == 11
    assert run["exit_status"] == 0
    rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == ["MARK-002", "ORD-001"]
    assert all(r["status"] == "passed" for r in rows)
    html = (run_dir / "index.html").read_text()
    assert "ORD-001" in html
    assert "MARK-002" in html


def test_run_with_a_defect_exits_non_zero_and_names_the_failing_check(tmp_path: Path) -> None:
    proc = _cli("run", "--seed", "3", "-k", "ORD-004", "--defect", "post-only-takes", cwd=tmp_path)
    assert proc.returncode == 1
    assert "FAILED ORD-004" in proc.stdout
    assert (
        "Reproduce with: perpcheck run --venue sim --seed 3 -k ORD-004 --defect post-only-takes"
        in proc.stdout
    )


def test_same_seed_replays_identical_results(tmp_path: Path) -> None:
    for name in ("a", "b"):
        proc = _cli("run", "--seed", "5", "-k", "LIQ", "--report-dir", name, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    def stable(folder: str) -> list[dict[str, object]]:
        (run_dir,) = _run_dirs(tmp_path / folder)
        rows = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
        for row in rows:
            for key in ("duration_s", "started_at", "finished_at"):
                row.pop(key)
        return rows

    assert stable("a") == stable("b")


def test_run_matching_nothing_says_so_with_exit_5(tmp_path: Path) -> None:
    proc = _cli("run", "-k", "NOPE-999", cwd=tmp_path)
    assert proc.returncode == 5
    assert "no check matched -k 'NOPE-999'" in proc.stderr


def test_bad_input_gets_one_clear_line_and_no_traceback(tmp_path: Path) -> None:
    cases = [
        (("run", "--defect", "nope"), "unknown defect(s) nope; choose from:"),
        (("run", "--venue", "nope"), "unknown venue 'nope'; choose one of: binanceusdm-demo,"),
        (("run", "--scenario", "nope"), "unknown scenario 'nope'; choose from:"),
        (("run", "--seed", "-4"), "--seed -4 must be a non-negative integer"),
        (("run", "--venue-option", "balance=lots"), "balance 'lots' must be a non-negative number"),
        (("report", str(tmp_path)), "is not a perpcheck run folder"),
    ]
    for args, message in cases:
        proc = _cli(*args, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr + proc.stdout, args


def test_report_rerenders_a_run_folder(tmp_path: Path) -> None:
    assert _cli("run", "--seed", "2", "-k", "ORD-002", cwd=tmp_path).returncode == 0
    (run_dir,) = _run_dirs(tmp_path / "reports")
    (run_dir / "index.html").unlink()
    proc = _cli("report", str(run_dir), cwd=tmp_path)
    assert proc.returncode == 0
    assert (run_dir / "index.html").exists()


def test_venues_and_defects_are_listed(tmp_path: Path) -> None:
    venues = _cli("venues", cwd=tmp_path)
    assert venues.returncode == 0
    listed = [line.split()[0] for line in venues.stdout.splitlines()]
    assert {"sim", "sim-http", "binanceusdm-demo", "bybit-testnet", "okx-demo"} <= set(listed)
    defects = _cli("defects", cwd=tmp_path)
    assert defects.returncode == 0
    assert "mark-is-last" in defects.stdout
    assert "[breaks MARK-001" in defects.stdout


def test_scenarios_are_listed_with_their_descriptions(tmp_path: Path) -> None:
    proc = _cli("scenarios", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # One entry per scenario; long descriptions wrap onto indented lines.
    entries = proc.stdout.replace("\n" + " " * 25, " ").splitlines()
    listed = {line.split()[0]: line for line in entries}
    assert sorted(listed) == scenarios.available()
    assert "fast-move-up" in listed
    assert listed["persistent-premium"].endswith("[30 days]")


def test_run_passes_the_safety_caps_and_cleanup_to_the_checks(tmp_path: Path) -> None:
    proc = _cli(
        "run", "--seed", "3", "-k", "ORD-001", "--no-allure", "--cleanup",
        "--max-order-notional", "1", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run_dir,) = _run_dirs(tmp_path / "reports")
    (row,) = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert row["status"] == "skipped"
    assert "--max-order-notional" in row["message"]


def test_a_missing_known_deviations_file_is_one_line_before_any_run(tmp_path: Path) -> None:
    proc = _cli("run", "-k", "ORD-001", "--known-deviations", "nope.toml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "perpcheck run: known-deviations file nope.toml does not exist"
    assert not (tmp_path / "reports").exists()
