"""The console side of a run: progress per area while it runs, a short table when it ends.

:class:`ProgressReporter` is a pytest plugin that ``perpcheck run`` registers (not ``-v``). On a
terminal it keeps one live line per area, redrawn in place as checks finish; when the output is
not a terminal, or ``CI`` is set, it prints one plain line per area as the area completes, so
logs stay readable. :func:`end_of_run_lines` is the table printed at the end of every run (also
under plain ``pytest``): counts per area, then each failure with its first failed measurement and
its ``Reproduce with:`` command, then skip reasons, then where the report is.

Under pytest-xdist it runs on the controller, which collects nothing: the areas come from the
run's selected checks (``harness.recording.SELECTED_CHECKS``, set before the run starts) and each
result from the worker's teardown report (:mod:`harness.distributed`).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections import Counter
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.checks import AREAS
from harness.results import CheckResult, Measurement, RunInfo, Status

__all__ = ["ProgressReporter", "end_of_run_lines", "first_failure", "wants_live_display"]

#: Status columns always shown in the end-of-run table; others appear when a run has them.
BASE_COLUMNS = (Status.PASSED.value, Status.FAILED.value, Status.SKIPPED.value)
TABLE_WIDTH = 100
MAX_SKIP_REASONS = 5
BAR_WIDTH = 20


# --------------------------------------------------------------------------- end-of-run table
def first_failure(result: CheckResult) -> str:
    """The first failed measurement as one line (label, expected, observed, deviation,
    tolerance); the result's message when no measurement failed (an error, a skip)."""
    failed = [m for m in result.measurements if not m.passed]
    if not failed:
        return result.message
    line = _measurement_line(failed[0])
    if len(failed) > 1:
        line += f" (and {len(failed) - 1} more failed measurement{'s' * (len(failed) > 2)})"
    return line


def _measurement_line(m: Measurement) -> str:
    unit = f" {m.unit}" if m.unit else ""
    line = f"{m.label}: expected {m.expected}, observed {m.observed}"
    if m.deviation not in (None, "0"):
        line += f", deviation {m.deviation}{unit}"
    if m.tolerance not in (None, "0"):
        line += f", tolerance {m.tolerance}{unit}"
    return line


def _area_order(areas: Iterable[str]) -> list[str]:
    known = list(AREAS)
    return sorted(set(areas), key=lambda a: (known.index(a) if a in known else len(known), a))


def _columns(results: Sequence[CheckResult]) -> list[str]:
    present = {r.status.value for r in results}
    order = [*BASE_COLUMNS, Status.ERROR.value]
    extra = sorted(present - set(order))
    return [c for c in order if c in BASE_COLUMNS or c in present] + extra


def _tally(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[k]} {k}" for k in sorted(counts) if counts[k]) or "no checks ran"


def end_of_run_lines(
    run: RunInfo, results: Sequence[CheckResult], index: Path | None = None
) -> list[str]:
    """The end-of-run summary: a line of totals, a table per area, failures, skip reasons."""
    counts = Counter(r.status.value for r in results)
    header = f"perpcheck: {_tally(counts)} on {run.venue} (seed {run.seed})"
    selected = run.config.get("checks_selected")
    if isinstance(selected, int) and len(results) < selected:
        header += f"; stopped after {len(results)} of {selected} checks"
    lines = [header]
    if results:
        lines += _table(results)
    problems = [r for r in results if r.status in (Status.FAILED, Status.ERROR)]
    for r in problems:
        lines.append(f"{r.status.value.upper()} {r.id}  {r.title}")
        lines.append(f"  {first_failure(r)}")
        lines.append(f"  Reproduce with: {r.reproduce}")
    reasons = Counter(r.message for r in results if r.status is Status.SKIPPED)
    for reason, n in reasons.most_common(MAX_SKIP_REASONS):
        lines.append(f"skipped ×{n}: {reason}")
    if len(reasons) > MAX_SKIP_REASONS:
        lines.append(f"… and {len(reasons) - MAX_SKIP_REASONS} more skip reasons in the report")
    if index is not None:
        lines.append(f"perpcheck report: {index}")
    return lines


def _table(results: Sequence[CheckResult]) -> list[str]:
    columns = _columns(results)
    by_area: dict[str, Counter[str]] = {}
    for r in results:
        by_area.setdefault(r.area, Counter())[r.status.value] += 1
    widths = [max(len(c), 4) for c in columns]
    head = "  area   checks  " + "  ".join(
        f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)
    )
    lines = [head + "  testing-guide topic"]
    total: Counter[str] = Counter()
    for area in _area_order(by_area):
        c = by_area[area]
        total.update(c)
        row = f"  {area:<6} {sum(c.values()):>6}  " + "  ".join(
            f"{c[col]:>{w}}" for col, w in zip(columns, widths, strict=True)
        )
        topic = AREAS.get(area, "")
        room = TABLE_WIDTH - len(row) - 2
        if len(topic) > room:
            topic = topic[: max(room - 1, 0)] + "…"
        lines.append(f"{row}  {topic}".rstrip())
    if len(by_area) > 1:
        lines.append(
            f"  {'total':<6} {sum(total.values()):>6}  "
            + "  ".join(f"{total[col]:>{w}}" for col, w in zip(columns, widths, strict=True))
        )
    return lines


# --------------------------------------------------------------------------- live progress
def wants_live_display(isatty: bool, environ: dict[str, str] | None = None) -> bool:
    """Redraw lines in place only on a real terminal, never under CI or a dumb terminal."""
    env = dict(os.environ) if environ is None else environ
    if env.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return False
    return isatty and env.get("TERM", "") != "dumb"


@dataclass(slots=True)
class _Area:
    name: str
    total: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    running: str = ""
    reported: bool = False

    @property
    def done(self) -> int:
        return sum(self.counts.values())


class ProgressReporter:
    """Progress per area on the console; registered by ``perpcheck run`` (not with ``-v``).

    It also blanks pytest's one-letter-per-test output, which the area lines replace.

    Args:
        live: force the in-place display on (``True``) or off (``False``); ``None`` decides
            from the terminal and the ``CI`` variable (:func:`wants_live_display`).
    """

    def __init__(self, *, live: bool | None = None) -> None:
        self._live_choice = live
        self._live = False
        self._areas: dict[str, _Area] = {}
        self._by_nodeid: dict[str, tuple[str, str]] = {}  # nodeid -> (check ID, area)
        self._tr: Any = None
        self._drawn = 0
        self._glyphs = ("#", "-")

    # -- pytest hooks ----------------------------------------------------------------------
    def _select(self, config: pytest.Config) -> None:
        """The areas and their sizes from the run's selected checks; the terminal."""
        from harness.recording import SELECTED_CHECKS

        self._areas = {}
        for nodeid, check_id, area in config.stash.get(SELECTED_CHECKS, []):
            self._by_nodeid[nodeid] = (check_id, area)
            self._areas.setdefault(area, _Area(area)).total += 1
        self._areas = {a: self._areas[a] for a in _area_order(self._areas)}
        self._tr = config.pluginmanager.getplugin("terminalreporter")
        if self._tr is None:
            return
        isatty = bool(getattr(self._tr, "isatty", False))
        self._live = wants_live_display(isatty) if self._live_choice is None else self._live_choice
        encoding = getattr(sys.__stdout__, "encoding", None) or ""
        if "utf" in encoding.lower():
            self._glyphs = ("█", "░")

    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> Generator[None, tuple[str, str, str], tuple[str, str, str]]:
        category, _letter, _word = yield
        return category, "", ""  # the area lines replace pytest's dots

    def pytest_perpcheck_run_started(
        self, config: pytest.Config, run_dir: Path, run: RunInfo
    ) -> None:
        self._select(config)
        n = sum(a.total for a in self._areas.values())
        areas = len(self._areas)
        self._write_line(
            f"perpcheck: {n} check{'s' * (n != 1)} in {areas} area{'s' * (areas != 1)} "
            f"on {run.venue} (seed {run.seed}), writing {run_dir}"
        )
        self._redraw()

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        check_id, area = self._by_nodeid.get(nodeid, ("", ""))
        if check_id and area in self._areas:
            self._areas[area].running = check_id
            self._redraw()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from harness.distributed import is_worker_report

        finished = is_worker_report(report)  # xdist controller: a worker's check ended
        if finished is not None:
            self._finished(finished.area, finished.status)

    def pytest_perpcheck_check_finished(self, item: pytest.Item, result: CheckResult) -> None:
        self._finished(result.area, result.status.value)

    def _finished(self, name: str, status: str) -> None:
        area = self._areas.setdefault(name, _Area(name, total=1))
        area.counts[status] += 1
        area.running = ""
        if self._live:
            self._redraw()
        elif area.done >= area.total and not area.reported:
            area.reported = True
            self._write_line("perpcheck: " + self._line(area, bar=False))

    def pytest_perpcheck_run_finished(
        self, config: pytest.Config, run_dir: Path, run: RunInfo, results: Sequence[CheckResult]
    ) -> None:
        for area in self._areas.values():
            area.running = ""
        self._redraw()
        self._drawn = 0  # the block stays on screen; the summary follows it

    # -- drawing ---------------------------------------------------------------------------
    def _line(self, area: _Area, *, bar: bool) -> str:
        c = area.counts
        parts = [f"{area.name:<6}"]
        if bar:
            full, empty = self._glyphs
            filled = BAR_WIDTH * area.done // area.total if area.total else BAR_WIDTH
            parts.append(full * filled + empty * (BAR_WIDTH - filled))
        parts.append(f"{area.done:>3}/{area.total:<3}")
        tally = f"{c[Status.PASSED.value]} passed"
        bad = c[Status.FAILED.value] + c[Status.ERROR.value]
        tally += f", {bad} failed" if bad else ""
        tally += f", {c[Status.SKIPPED.value]} skipped" if c[Status.SKIPPED.value] else ""
        shown = {Status.PASSED.value, Status.FAILED.value, Status.ERROR.value}
        others = sorted(o for o in set(c) - shown - {Status.SKIPPED.value} if c[o])
        tally += "".join(f", {c[o]} {o}" for o in others)
        parts.append(tally)
        if area.running:
            parts.append(f"running {area.running}")
        return " ".join(parts)

    def _redraw(self) -> None:
        if not self._live or self._tr is None or not self._areas:
            return
        width = max(shutil.get_terminal_size((100, 24)).columns - 1, 20)
        out = f"\x1b[{self._drawn}F" if self._drawn else ""
        for area in self._areas.values():
            out += "\x1b[2K" + self._line(area, bar=True)[:width] + "\n"
        self._tr.write(out, flush=True)
        self._drawn = len(self._areas)

    def _write_line(self, line: str) -> None:
        if self._tr is not None:
            self._tr.write_line(line)
