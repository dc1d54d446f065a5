"""Compare runs: the checks x runs matrix and their numbers side by side (``perpcheck compare``).

Every check has a stable ID, so runs on different venues (sim vs a testnet) or on the same venue
on different dates line up row by row. For each check the comparison shows each run's status
(``n/a`` where the venue lacks a capability the check needs, told apart from other skips), its
headline expected / observed / deviation / tolerance, and how the check changed between runs:
rows with a **new failure** first, then **fixed**, then **changed deviation**, then unchanged.
Numbers are compared as numbers: every measurement present in several runs is shown side by side
(each run's observed value, the oracle's expected value) with its spread against the tolerance.

Runs are read with :mod:`harness.results`; a partial (killed) run is included and marked, and the
checks it had not reached show as "not run". Output: ``compare.html`` (self-contained, the run
report's stylesheet inlined) and ``compare.json``.

This module reads the runs and builds the matrix (:func:`build_comparison`) and writes it
(:func:`write_comparison`); the matrix's types (:class:`Comparison`, :class:`Row`,
:class:`Cell`, :class:`NumberRow`...) are in :mod:`harness.report.compare_model` and are
importable from here as well.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import jinja2

from harness.checks import AREAS
from harness.errors import ConfigError
from harness.report.compare_model import (
    NA,
    NOT_RUN,
    Cell,
    Change,
    Comparison,
    NumberRow,
    NumberValue,
    Row,
    RunColumn,
    _plain,
)
from harness.results import CheckResult, Status, load_results, load_run
from harness.safety import REDACTOR

__all__ = [
    "COMPARE_HTML",
    "COMPARE_JSON",
    "NA",
    "NOT_RUN",
    "Cell",
    "Change",
    "Comparison",
    "NumberRow",
    "NumberValue",
    "Row",
    "RunColumn",
    "build_comparison",
    "render_comparison_html",
    "write_comparison",
]

COMPARE_HTML = "compare.html"
COMPARE_JSON = "compare.json"

#: Skip reasons that mean "the venue cannot do this" (harness/plugin.py words them so).
_NA_REASON = re.compile(r"\blacks\b|\bcannot load scenarios\b|\bhas no control interface\b")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


# --------------------------------------------------------------------------- building
def load_columns(run_dirs: Sequence[Path]) -> tuple[RunColumn, ...]:
    """Read each run folder.

    Raises:
        ConfigError: fewer than two folders, a folder that does not exist, or one that is not a
            perpcheck run folder (no readable run.json).
    """
    if len(run_dirs) < 2:
        got = ", ".join(str(d) for d in run_dirs) or "none"
        msg = f"compare needs at least two run folders, got {len(run_dirs)} ({got})"
        raise ConfigError(msg)
    columns = []
    for index, path in enumerate(run_dirs):
        if not path.exists():
            msg = f"run folder {path} does not exist"
            raise ConfigError(msg)
        if not path.is_dir():
            msg = f"{path} is not a folder; pass run folders like reports/<run-id>"
            raise ConfigError(msg)
        run = load_run(path)
        columns.append(
            RunColumn(index=index, path=path, run=run, results=tuple(load_results(path)))
        )
    return tuple(columns)


def build_comparison(run_dirs: Sequence[Path]) -> Comparison:
    """The comparison of the runs in ``run_dirs``, in that order (the first is the baseline)."""
    columns = load_columns(run_dirs)
    latest = [{r.id: r for r in column.results} for column in columns]  # a re-run: the last
    ids = sorted({i for by_id in latest for i in by_id}, key=_id_order)
    rows = []
    for check_id in ids:
        results = [by_id.get(check_id) for by_id in latest]
        first = next(r for r in results if r is not None)
        cells = tuple(
            _cell(result, column) for result, column in zip(results, columns, strict=True)
        )
        rows.append(
            Row(
                id=check_id,
                area=first.area,
                title=first.title,
                source=first.source,
                change=_change(cells),
                cells=cells,
                numbers=tuple(_numbers(results)),
            )
        )
    area_order = {a: i for i, a in enumerate(AREAS)}
    rows.sort(
        key=lambda r: (
            r.change.rank,
            not r.any_bad,
            area_order.get(r.area, len(area_order)),
            _id_order(r.id),
        )
    )
    return Comparison(runs=columns, rows=tuple(rows))


def _id_order(check_id: str) -> tuple[str, int]:
    area, _, number = check_id.partition("-")
    return (area, int(number) if number.isdigit() else 0)


def _cell(result: CheckResult | None, column: RunColumn) -> Cell:
    if result is None:
        why = (
            "the run stopped before this check"
            if not column.complete
            else "not selected in this run"
        )
        return Cell(status=NOT_RUN, reason=why)
    if result.status is Status.SKIPPED and _NA_REASON.search(result.message):
        return Cell(status=NA, result=result, reason=result.message)
    return Cell(status=result.status.value, result=result, reason=result.message)


def _change(cells: Sequence[Cell]) -> Change:
    """Walk the comparable cells in run order: any good -> bad step is a new failure, else any
    bad -> good step is a fix, else any other difference is a changed deviation."""
    seen = [c for c in cells if c.comparable]
    steps = list(itertools.pairwise(seen))
    if any(not a.bad and b.bad for a, b in steps):
        return Change.NEW_FAILURE
    if any(a.bad and not b.bad for a, b in steps):
        return Change.FIXED
    if any(_differs(a, b) for a, b in steps):
        return Change.CHANGED_DEVIATION
    return Change.UNCHANGED


def _differs(a: Cell, b: Cell) -> bool:
    if a.status != b.status:
        return True
    ra, rb = a.result, b.result
    if ra is None or rb is None:
        return False
    da, db = _decimal(ra.deviation), _decimal(rb.deviation)
    if da is not None and db is not None:
        return da != db or ra.deviation_note != rb.deviation_note
    return (ra.deviation or "") != (rb.deviation or "") or ra.deviation_note != rb.deviation_note


def _numbers(results: Sequence[CheckResult | None]) -> Iterable[NumberRow]:
    """Measurements with a numeric observed value in two runs or more, matched by label (numbers
    in a label, like an entry price, may differ: then by the label's shape and position)."""
    keyed: dict[tuple[str, int], list[NumberValue | None]] = {}
    meta: dict[tuple[str, int], tuple[str, str]] = {}
    for index, result in enumerate(results):
        if result is None:
            continue
        occurrences: dict[str, int] = {}
        for m in result.measurements:
            shape = _NUMBER.sub("#", m.label)
            occurrences[shape] = occurrences.get(shape, 0) + 1
            key = (shape, occurrences[shape])
            slot = keyed.setdefault(key, [None] * len(results))
            meta.setdefault(key, (m.label, m.unit))
            slot[index] = NumberValue(
                label=m.label,
                expected=m.expected,
                observed=m.observed,
                deviation=m.deviation,
                tolerance=m.tolerance,
                passed=m.passed,
            )
    for key, values in keyed.items():
        numeric = [v for v in values if v is not None and _decimal(v.observed) is not None]
        if len(numeric) < 2:
            continue
        label, unit = meta[key]
        yield _number_row(label, unit, tuple(values), numeric)


def _number_row(
    label: str, unit: str, values: tuple[NumberValue | None, ...], numeric: list[NumberValue]
) -> NumberRow:
    tolerances = [t for t in (_decimal(v.tolerance) for v in numeric) if t is not None]
    tolerance = max(tolerances) if tolerances else None
    common = _common_expected(numeric)  # the same inputs: compare the observed values
    if common is not None:
        points = [d for d in (_decimal(v.observed) for v in numeric) if d is not None]
        expected = _decimal(common)
        if expected is not None:
            points.append(expected)
        basis = "observed"
    else:
        points = [d for d in (_decimal(v.deviation) for v in numeric) if d is not None]
        basis = "deviation"
    spread = max(points) - min(points) if len(points) >= 2 else None
    if spread is None:
        within = None
    else:
        within = spread <= (tolerance if tolerance is not None else Decimal(0))
    return NumberRow(
        label=label,
        unit=unit,
        values=values,
        basis=basis,
        expected=common,
        spread=spread,
        tolerance=tolerance,
        within=within,
    )


def _common_expected(values: Sequence[NumberValue]) -> str | None:
    """The expected value every run computed (numerically equal, or the same text), if any."""
    numbers = {_decimal(v.expected) for v in values}
    if None not in numbers:
        return values[0].expected if len(numbers) == 1 else None
    texts = {v.expected.strip() for v in values}
    return texts.pop() if len(texts) == 1 else None


def _decimal(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


# --------------------------------------------------------------------------- output
def render_comparison_html(comparison: Comparison, *, out_dir: Path | None = None) -> str:
    """The comparison page; links to each run's report are relative to ``out_dir``."""
    links = [_report_link(column.path, out_dir) for column in comparison.runs]
    return _environment().get_template("compare.html.j2").render(c=comparison, links=links)


def write_comparison(run_dirs: Sequence[Path], out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write ``compare.html`` and ``compare.json`` for ``run_dirs`` into ``out_dir``.

    ``out_dir`` defaults to ``compare-<UTC time>`` next to the first run folder.

    Raises:
        ConfigError: bad run folders (see :func:`load_columns`) or an unusable ``out_dir``.
    """
    comparison = build_comparison(run_dirs)
    if out_dir is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out_dir = run_dirs[0].parent / f"compare-{stamp}"
    if out_dir.exists() and not out_dir.is_dir():
        msg = f"--out {out_dir} exists and is not a folder"
        raise ConfigError(msg)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"--out {out_dir} cannot be created: {exc.strerror or exc}"
        raise ConfigError(msg) from None
    html = render_comparison_html(comparison, out_dir=out_dir)
    data = json.dumps(comparison.to_json(), indent=2) + "\n"
    targets = (out_dir / COMPARE_HTML, out_dir / COMPARE_JSON)
    for target, text in zip(targets, (html, data), strict=True):
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(REDACTOR(text), encoding="utf-8")
        os.replace(tmp, target)
    return targets


def _report_link(run_dir: Path, out_dir: Path | None) -> str | None:
    index = run_dir / "index.html"
    if not index.exists():
        return None
    if out_dir is None:
        return index.resolve().as_uri()
    return Path(os.path.relpath(index.resolve(), out_dir.resolve())).as_posix()


@functools.cache
def _environment() -> jinja2.Environment:
    """Templates from the run report's folder: the page inlines the run report's stylesheet."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness", "report/templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["or_dash"] = lambda v: "—" if v is None or v == "" else v
    env.filters["num"] = lambda v: "—" if v is None else _plain(v)
    return env
