"""The comparison matrix of ``perpcheck compare`` as data: the compared runs (columns), each
check's row with one cell per run, the measurements compared as numbers, how each check changed
(:class:`Change`), and their JSON form (``compare.json``).

Built by :func:`harness.report.compare.build_comparison`, rendered by the ``compare.html.j2``
template; every name here is importable from :mod:`harness.report.compare` as well.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from harness.results import CheckResult, RunInfo, Status, to_jsonable

__all__ = [
    "NA",
    "NOT_RUN",
    "Cell",
    "Change",
    "Comparison",
    "NumberRow",
    "NumberValue",
    "Row",
    "RunColumn",
]

NA = "n/a"  # skipped because the venue lacks a capability the check needs
NOT_RUN = "not run"  # no result in this run (not selected, or a killed run had not reached it)

_BAD = frozenset({Status.FAILED.value, Status.ERROR.value})
_GOOD = frozenset({Status.PASSED.value, Status.DEVIATION.value})


class Change(enum.StrEnum):
    """How a check changed across the runs, in the order rows are shown."""

    NEW_FAILURE = "new failure"  # good in a run, failed or errored in a later one
    FIXED = "fixed"  # failed or errored in a run, good in every later one
    CHANGED_DEVIATION = "changed deviation"  # same verdict, another status or deviation
    UNCHANGED = "unchanged"  # same everywhere, or fewer than two runs to compare

    @property
    def rank(self) -> int:
        return list(Change).index(self)

    @property
    def slug(self) -> str:
        return self.value.replace(" ", "-")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunColumn:
    """One compared run: a column of the matrix."""

    index: int
    path: Path
    run: RunInfo
    results: tuple[CheckResult, ...]

    @property
    def date(self) -> str:
        """``2025-01-02 09:54`` (UTC) from run.json's start."""
        text = self.run.started_at
        return text[:16].replace("T", " ") if text else ""

    @property
    def label(self) -> str:
        return f"{self.run.venue} · s{self.run.seed} · {self.date}"

    @property
    def complete(self) -> bool:
        return bool(self.run.complete)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "path": str(self.path),
            "run_id": self.run.run_id,
            "venue": self.run.venue,
            "seed": self.run.seed,
            "date": self.date,
            "started_at": self.run.started_at,
            "finished_at": self.run.finished_at,
            "complete": self.complete,
            "defects": list(self.run.defects),
            "counts": dict(self.run.counts),
            "known_deviations": list(self.run.config.get("known_deviations", [])),
            "label": self.label,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Cell:
    """One check in one run: its status and headline numbers."""

    status: str  # a Status value, "n/a" or "not run"
    result: CheckResult | None = None
    reason: str = ""  # why it was skipped / n/a / not run, or the failure message

    @property
    def comparable(self) -> bool:
        return self.status in _BAD or self.status in _GOOD

    @property
    def bad(self) -> bool:
        return self.status in _BAD

    @property
    def slug(self) -> str:
        return {NA: "na", NOT_RUN: "not-run"}.get(self.status, self.status)

    def to_json(self) -> dict[str, Any]:
        r = self.result
        return {
            "status": self.status,
            "reason": self.reason,
            "expected": r.expected if r else None,
            "observed": r.observed if r else None,
            "deviation": r.deviation if r else None,
            "tolerance": r.tolerance if r else None,
            "unit": r.unit if r else "",
            "deviation_note": r.deviation_note if r else "",
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class NumberValue:
    """One run's value of a measurement."""

    label: str
    expected: str
    observed: str
    deviation: str | None
    tolerance: str | None
    passed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class NumberRow:
    """A measurement present in several runs, compared as numbers.

    ``basis`` ``observed``: every run had the same expected value (same inputs), so the observed
    values and the oracle's expected value are compared directly; ``deviation``: the inputs
    differed (another entry price...), so the runs' deviations from their own expected values
    are compared. ``within`` is ``spread <= tolerance`` (the largest tolerance any run applied).
    """

    label: str
    unit: str
    values: tuple[NumberValue | None, ...]
    basis: str
    expected: str | None  # the common expected value when basis is "observed"
    spread: Decimal | None
    tolerance: Decimal | None
    within: bool | None

    @property
    def labels_differ(self) -> bool:
        return len({v.label for v in self.values if v is not None}) > 1

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "basis": self.basis,
            "expected": self.expected,
            "spread": None if self.spread is None else _plain(self.spread),
            "tolerance": None if self.tolerance is None else _plain(self.tolerance),
            "within": self.within,
            "values": [
                None
                if v is None
                else {
                    "label": v.label,
                    "expected": v.expected,
                    "observed": v.observed,
                    "deviation": v.deviation,
                    "tolerance": v.tolerance,
                    "passed": v.passed,
                }
                for v in self.values
            ],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One check across the runs."""

    id: str
    area: str
    title: str
    source: str
    change: Change
    cells: tuple[Cell, ...]
    numbers: tuple[NumberRow, ...]

    @property
    def anchor(self) -> str:
        return "cmp-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in self.id)

    @property
    def any_bad(self) -> bool:
        return any(c.bad for c in self.cells)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "area": self.area,
            "title": self.title,
            "source": self.source,
            "change": self.change.value,
            "cells": [c.to_json() for c in self.cells],
            "numbers": [n.to_json() for n in self.numbers],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    runs: tuple[RunColumn, ...]
    rows: tuple[Row, ...]

    @property
    def changes(self) -> dict[str, int]:
        return {c.value: sum(1 for r in self.rows if r.change is c) for c in Change}

    @property
    def incomplete(self) -> tuple[RunColumn, ...]:
        return tuple(r for r in self.runs if not r.complete)

    @property
    def documented(self) -> list[tuple[Row, RunColumn, Cell]]:
        return [
            (row, run, cell)
            for row in self.rows
            for run, cell in zip(self.runs, row.cells, strict=True)
            if cell.status == Status.DEVIATION.value
        ]

    def to_json(self) -> dict[str, Any]:
        data = {
            "version": 1,
            "runs": [r.to_json() for r in self.runs],
            "changes": self.changes,
            "rows": [r.to_json() for r in self.rows],
        }
        return to_jsonable(data)  # type: ignore[no-any-return]


def _plain(value: Decimal) -> str:
    """``0``, ``1.5`` (not ``0E-8``, ``1.50000000``)."""
    return "0" if value == 0 else format(value.normalize(), "f")
