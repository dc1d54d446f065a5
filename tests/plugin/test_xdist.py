"""A run over pytest-xdist workers is one run: one folder, the serial run's results (issue 9).

``perpcheck run -n 2`` and a plain ``pytest -n 2`` write a single run folder whose
``results.jsonl`` equals a serial run's with the same seed apart from timings, in the same
(collection) order; the progress lines and the end-of-run table work on the controller; a run
killed mid-way keeps its workers' shards and ``perpcheck report`` renders them as incomplete.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.test_run_resilience import CLI, ROOT, Paused

#: Small and quick, over several areas and test files (so both workers get checks).
SELECTION = "ORD-001 or ORD-002 or ORD-003 or MARK-001 or LIQ-001 or RATE-001 or CONC-001"
TIMINGS = ("duration_s", "started_at", "finished_at")
#: Plugins the suites never use, off in every process (as ``perpcheck run`` does): faster.
FAST = ("-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:anyio")


def pytest_n2(cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``pytest --pyargs suites -n 2 -k SELECTION`` with ``extra`` options, in ``cwd``."""
    return subprocess.run(  # noqa: S603 - pytest on the installed suites
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "suites",
            "-p",
            "no:cacheprovider",
            *FAST,
            "-n",
            "2",
            "-k",
            SELECTION,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
    )


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [*CLI, *args], capture_output=True, text=True, timeout=300, check=False, cwd=cwd
    )


def _only_run(reports: Path) -> Path:
    (run_dir,) = [p for p in reports.iterdir() if p.is_dir()]
    return run_dir


def _results(run_dir: Path) -> list[dict[str, Any]]:
    rows = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMINGS} for row in rows]


def test_two_workers_write_one_folder_with_the_serial_results(tmp_path: Path) -> None:
    common = ("run", "--seed", "11", "--no-allure", "-k", SELECTION)
    serial = _cli(*common, "--report-dir", "serial", cwd=tmp_path)
    assert serial.returncode == 0, serial.stdout + serial.stderr
    spread = _cli(*common, "-n", "2", "--report-dir", "spread", cwd=tmp_path)
    assert spread.returncode == 0, spread.stdout + spread.stderr
    one, two = _only_run(tmp_path / "serial"), _only_run(tmp_path / "spread")
    assert len(_results(one)) == 7
    assert _results(two) == _results(one)  # same checks, order, seeds and verdicts
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    run = json.loads((two / "run.json").read_text())
    assert (run["complete"], run["counts"], run["config"]["checks_selected"]) == (
        True,
        {"passed": 7},
        7,
    )
    assert run["versions"] == json.loads((one / "run.json").read_text())["versions"]
    out = spread.stdout
    assert "perpcheck: ORD      3/3   3 passed" in out  # progress, driven by the workers' reports
    assert "perpcheck: 7 passed on sim (seed 11)" in out  # the end-of-run table
    assert f"perpcheck report: spread/{two.name}/index.html" in out


def test_plain_pytest_n_2_without_a_seed_is_one_run_with_one_seed(tmp_path: Path) -> None:
    proc = pytest_n2(tmp_path, "--report-dir", str(tmp_path / "reports"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = _only_run(tmp_path / "reports")
    run = json.loads((run_dir / "run.json").read_text())
    rows = _results(run_dir)
    assert len(rows) == 7
    assert {row["seed"] for row in rows} == {run["seed"]}  # the controller's, not one per worker
    assert (run_dir / "index.html").exists()
    assert not (run_dir / "shards").exists()
    assert f"perpcheck: 7 passed on sim (seed {run['seed']})" in proc.stdout


def test_a_killed_distributed_run_keeps_its_shards_and_renders_incomplete(tmp_path: Path) -> None:
    paused = Paused(tmp_path, "after:ORD-002", "-n", "2", "-k", SELECTION)
    paused.kill()
    run_dir = paused.run_dir
    assert not (run_dir / "results.jsonl").exists()  # never merged
    shards = sorted(p.name for p in (run_dir / "shards").iterdir())
    assert shards == ["gw0.json", "gw0.jsonl", "gw1.json", "gw1.jsonl"]
    shown = subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [*CLI, "report", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert shown.returncode == 0, shown.stderr
    assert "checks recorded (merged from its workers' shards)" in shown.stdout
    html = (run_dir / "index.html").read_text()
    assert "read from the workers' shards" in html
    assert 'class="verdict verdict-incomplete"' in html
    ids = [r["id"] for r in _merged(run_dir)]
    assert "ORD-002" in ids
    order = ["CONC-001", "LIQ-001", "MARK-001", "ORD-001", "ORD-002", "ORD-003", "RATE-001"]
    assert ids == [i for i in order if i in ids]  # collection order, whichever worker ran it


def _merged(run_dir: Path) -> list[dict[str, Any]]:
    from harness.results import read_results

    return [{"id": r.id} for r in read_results(run_dir).results]


def test_a_bad_defect_ends_a_distributed_run_once_before_any_worker_runs(tmp_path: Path) -> None:
    pytest_cmd = [sys.executable, "-m", "pytest", "--pyargs", "suites", "-p", "no:cacheprovider"]
    pytest_cmd += FAST
    proc = subprocess.run(  # noqa: S603 - pytest on the installed suites
        [*pytest_cmd, "-n", "2", "-k", "ORD-001", "--defect", "no-such-defect"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 4, proc.stdout[-3000:] + proc.stderr[-3000:]  # usage error
    assert "INTERNALERROR" not in proc.stdout + proc.stderr
    assert proc.stdout.count("Exit: perpcheck: unknown defect(s) no-such-defect") == 1
    assert not [p for p in tmp_path.rglob("*") if p.is_dir()]  # no run folder


def test_a_bad_worker_count_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = _cli("run", "-n", "two", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "perpcheck run: -n 'two' must be a number of processes or 'auto'"
