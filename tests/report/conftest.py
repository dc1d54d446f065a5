"""Real runs for the report tests, made once per session with the ``perpcheck`` CLI.

Four runs start together (the machine waits on them once): a passing run over checks that emit
every evidence shape, the same checks with injected defects (a failing run), a run in which
checks skip (no symbol has the liquidation variant they need), and a run killed with SIGKILL
after its third result, re-rendered with ``perpcheck report``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.report.htmltree import Element, parse

CLI = [sys.executable, "-m", "harness.cli"]
SEED = "3"
#: Checks whose evidence covers every shape the suites emit: series with bands, markers and
#: events, timelines with spans, graphs, tables with verdict columns, stream tables.
SHAPES = (
    "MARK-001 or FUND-004 or PLQ-001 or PLQ-005 or CASC-001 or CASC-002 or RATE-002 or "
    "RATE-003 or PARAM-004 or ANOM-001 or ANOM-004 or LIQ-009 or STRM-002 or ORD-001"
)
#: The failing run: a failure in each of four areas (FUND-004 alone takes 2 s: not here).
FAILING = "MARK-001 or PLQ-005 or RATE-003 or PARAM-004 or CASC-001 or ORD-001"
DEFECTS = ("mark-is-last", "close-whole-position", "no-ban", "advisor-unclamped")
SKIPPING = "PLQ-001 or PLQ-006 or ORD-001"
KILL_AFTER = 3  # results written before the run is killed
WAIT_S = 240


@dataclass(frozen=True)
class Run:
    """A run folder with what a reader of its report needs."""

    dir: Path
    run: dict[str, Any]
    results: list[dict[str, Any]]
    html: str
    tree: Element
    returncode: int

    @property
    def index(self) -> Path:
        return self.dir / "index.html"


def _load(run_dir: Path, returncode: int) -> Run:
    results = []
    for line in (run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            results.append(json.loads(line))
        except json.JSONDecodeError:  # the line the kill cut short
            continue
    html = (run_dir / "index.html").read_text(encoding="utf-8")
    return Run(
        dir=run_dir,
        run=json.loads((run_dir / "run.json").read_text(encoding="utf-8")),
        results=results,
        html=html,
        tree=parse(html),
        returncode=returncode,
    )


def _only_run(report_dir: Path) -> Path:
    (run_dir,) = [p for p in report_dir.iterdir() if p.is_dir()]
    return run_dir


def _start(report_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    report_dir.mkdir(parents=True)
    # Output goes to files: a pipe nobody reads could fill up and stall the run.
    with (report_dir.parent / f"{report_dir.name}.log").open("wb") as log:
        return subprocess.Popen(  # noqa: S603 - our own CLI with fixed arguments
            [*CLI, "run", "--seed", SEED, "--no-allure", "--report-dir", str(report_dir), *args],
            cwd=report_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _kill_after(proc: subprocess.Popen[bytes], report_dir: Path, results: int) -> None:
    """SIGKILL ``proc`` once its run has written ``results`` results (polling its folder)."""
    for _ in range(WAIT_S * 20):
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            pass
        else:
            pytest.fail("the run ended before it could be killed")
        written = list(report_dir.glob("*/results.jsonl"))
        if written and len(written[0].read_bytes().splitlines()) >= results:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
    proc.kill()
    pytest.fail(f"the run wrote fewer than {results} results in {WAIT_S} s")


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    base = tmp_path_factory.mktemp("runs")
    defects = [a for d in DEFECTS for a in ("--defect", d)]
    procs = {
        "passing": _start(base / "passing", "-k", SHAPES),
        "failing": _start(base / "failing", "-k", FAILING, *defects),
        "skips": _start(base / "skips", "-k", SKIPPING, "--venue-option", "liquidation=full"),
        "killed": _start(base / "killed"),
    }
    try:
        _kill_after(procs["killed"], base / "killed", KILL_AFTER)
        out = {}
        for name, proc in procs.items():
            proc.wait(timeout=WAIT_S)
            log = (base / f"{name}.log").read_text(encoding="utf-8", errors="replace")
            run_dir = _only_run(base / name)
            if name == "killed":
                # A killed run has no report of its own yet: render it as a person would.
                render = subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
                    [*CLI, "report", str(run_dir)],
                    capture_output=True,
                    text=True,
                    timeout=WAIT_S,
                    check=False,
                )
                assert render.returncode == 0, render.stderr
            else:
                assert (run_dir / "index.html").exists(), log
            out[name] = _load(run_dir, proc.returncode)
        yield out
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
