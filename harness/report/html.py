"""Render a run folder (``run.json`` + ``results.jsonl``) into one self-contained ``index.html``.

The page needs nothing but itself: CSS and a few lines of optional JavaScript are inlined and
charts are inline SVG, so it opens offline, from a CI artefact or an e-mail attachment.
"""

from __future__ import annotations

import functools
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jinja2

from harness.checks import AREAS
from harness.report.evidence import EvidenceView, build_evidence
from harness.results import CheckResult, Measurement, RunInfo, Status, load_run, read_results
from harness.safety import REDACTOR

__all__ = ["HTML_FILE", "render_html", "render_run"]

HTML_FILE = "index.html"
STATUSES = tuple(Status)  # passed, failed, skipped, error, deviation: the column order everywhere
_ALWAYS_SHOWN = frozenset({"passed", "failed", "skipped", "error"})


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckView:
    result: CheckResult
    anchor: str
    failing: tuple[Measurement, ...]
    evidence: tuple[EvidenceView, ...]
    focus: int | None = None  # the evidence to look at first (expanded on a failed check)

    @property
    def is_problem(self) -> bool:
        return self.result.status in (Status.FAILED, Status.ERROR)

    @property
    def first_failure(self) -> Measurement | None:
        """The first measurement that failed: what to look at first."""
        return self.failing[0] if self.failing else None

    @property
    def focus_evidence(self) -> EvidenceView | None:
        return None if self.focus is None else self.evidence[self.focus]

    @property
    def deviation_note(self) -> str:
        """Why a documented deviation is one: the venue's rule(s) and source(s)."""
        return self.result.deviation_note

    def evidence_open(self, index: int) -> bool:
        """Failed and errored checks open only the evidence to look at first; others open all
        (they are collapsed themselves)."""
        return not self.is_problem or index == self.focus


@dataclass(frozen=True, slots=True, kw_only=True)
class AreaView:
    code: str
    topic: str
    counts: dict[str, int]
    checks: tuple[CheckView, ...]

    @property
    def total(self) -> int:
        return len(self.checks)


@dataclass(frozen=True, slots=True, kw_only=True)
class PageView:
    run: RunInfo
    verdict: str
    counts: dict[str, int]
    total: int
    duration: str
    last_result_at: str
    areas: tuple[AreaView, ...]
    problems: tuple[CheckView, ...]
    deviations: tuple[CheckView, ...]
    config_json: str
    statuses: tuple[str, ...] = tuple(s.value for s in STATUSES)  # the columns shown
    unreadable: int = 0  # result lines a kill cut short, skipped
    from_shards: bool = False  # a distributed run killed before it merged its workers' shards


def render_run(run_dir: Path) -> Path:
    """Write ``run_dir/index.html`` for the run in ``run_dir`` and return its path.

    Works on partial runs: a run whose ``run.json`` says ``complete: false`` gets an
    "incomplete run" banner and shows the results recorded so far.

    Raises:
        ConfigError: ``run_dir`` has no readable ``run.json``.
    """
    run = load_run(run_dir)
    read = read_results(run_dir)
    page = build_page(run, read.results, unreadable=read.unreadable, from_shards=read.from_shards)
    html = _environment().get_template("index.html.j2").render(page=page)
    target = run_dir / HTML_FILE
    tmp = run_dir / (HTML_FILE + ".tmp")
    tmp.write_text(REDACTOR(html), encoding="utf-8")
    os.replace(tmp, target)  # a reader never sees half a page
    return target


def render_html(run: RunInfo, results: Sequence[CheckResult]) -> str:
    """The report page for ``run`` and its ``results`` as a string."""
    page = build_page(run, results)
    return _environment().get_template("index.html.j2").render(page=page)


def build_page(
    run: RunInfo,
    results: Sequence[CheckResult],
    *,
    unreadable: int = 0,
    from_shards: bool = False,
) -> PageView:
    anchors = _anchors(results)
    views = []
    for i, r in enumerate(results):
        failing = tuple(m for m in r.measurements if not m.passed)
        evidence = tuple(build_evidence(r.evidence))
        views.append(
            CheckView(
                result=r,
                anchor=anchors[i],
                failing=failing,
                evidence=evidence,
                focus=_focus(failing[0].label if failing else r.message, evidence),
            )
        )
    areas = tuple(_areas(views))
    counts = _count(v.result for v in views)
    problems = tuple(v for a in areas for v in a.checks if v.is_problem)
    deviations = tuple(v for a in areas for v in a.checks if v.result.status is Status.DEVIATION)
    if not views:
        verdict = "NO RESULTS"
    elif counts[Status.FAILED.value] or counts[Status.ERROR.value]:
        verdict = "FAIL"
    elif not run.complete:
        verdict = "INCOMPLETE"  # no failure so far is not a pass: checks are missing
    else:
        verdict = "PASS"
    finished = [r.finished_at for r in results if r.finished_at]
    return PageView(
        run=run,
        verdict=verdict,
        counts=counts,
        total=len(views),
        duration=_duration(run.started_at, run.finished_at),
        last_result_at=max(finished) if finished else "",
        areas=areas,
        problems=problems,
        deviations=deviations,
        # A "deviation" column only where the run has one: most runs never do.
        statuses=tuple(s for s in counts if s in _ALWAYS_SHOWN or counts[s]),
        config_json=json.dumps(run.config, indent=2, sort_keys=True, default=str),
        unreadable=unreadable,
        from_shards=from_shards,
    )


#: Which kinds of evidence say most at a glance, when words do not decide.
_KIND_RANK = {"chart": 0, "timeline": 0, "graph": 1, "table": 2, "json": 3}


def _focus(label: str, evidence: Sequence[EvidenceView]) -> int | None:
    """The evidence most relevant to a failed measurement: the one sharing most words with its
    label, a drawing counting one word more (it shows the measurement in context); then a drawing
    before a table before raw JSON, then the check's own order."""
    if not evidence:
        return None
    words = {w for w in _words(label) if len(w) > 2}

    def score(i: int) -> tuple[int, int, int]:
        view = evidence[i]
        shared = len(words & set(_words(view.words)))
        bonus = 1 if view.kind in ("chart", "timeline", "graph") else 0
        return (-(shared + bonus), _KIND_RANK.get(view.kind, 3), i)

    return min(range(len(evidence)), key=score)


def _words(text: str) -> list[str]:
    """Lower-case words with a plural ``s`` dropped (``steps`` matches ``step``)."""
    raw = "".join(c if c.isalnum() else " " for c in text.lower()).split()
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in raw]


def _count(results: Iterable[CheckResult]) -> dict[str, int]:
    counter = Counter(r.status.value for r in results)
    return {s.value: counter.get(s.value, 0) for s in STATUSES}


def _anchors(results: Sequence[CheckResult]) -> list[str]:
    """``check-LIQ-001``; a repeated ID (a re-run) gets ``-2``, ``-3`` so links stay unique."""
    seen: Counter[str] = Counter()
    anchors = []
    for r in results:
        seen[r.id] += 1
        suffix = "" if seen[r.id] == 1 else f"-{seen[r.id]}"
        anchors.append(f"check-{_slug(r.id)}{suffix}")
    return anchors


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def _areas(views: Sequence[CheckView]) -> Iterable[AreaView]:
    """Areas in the order of ``AREAS`` (unknown codes last, alphabetically), checks by ID."""
    by_area: dict[str, list[CheckView]] = {}
    for v in views:
        by_area.setdefault(v.result.area, []).append(v)
    order = [a for a in AREAS if a in by_area] + sorted(a for a in by_area if a not in AREAS)
    for code in order:
        checks = sorted(by_area[code], key=lambda v: v.result.id)  # stable: re-runs keep order
        yield AreaView(
            code=code,
            topic=AREAS.get(code, checks[0].result.topic or "area not in this perpcheck version"),
            counts=_count(v.result for v in checks),
            checks=tuple(checks),
        )


def _duration(started: str, finished: str | None) -> str:
    if not started or not finished:
        return ""
    try:
        seconds = (
            datetime.fromisoformat(finished) - datetime.fromisoformat(started)
        ).total_seconds()
    except (ValueError, TypeError):  # unparsable, or one naive and one aware
        return ""
    return format_seconds(seconds)


def format_seconds(seconds: float) -> str:
    """``0.42 s``, ``12.3 s``, ``4 min 05 s``, ``1 h 02 min``."""
    if seconds < 0:
        return ""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness", "report/templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["seconds"] = format_seconds
    env.filters["or_dash"] = lambda v: "—" if v is None or v == "" else v
    return env
