"""Allure results for a run: each check's labels, ids, rule link, measurements and evidence.

``perpcheck run`` passes ``--alluredir reports/<run-id>/allure-results`` to allure-pytest, which
writes one ``*-result.json`` per check. :class:`AllureResults` (registered by the plugin) adds to
each, when the check's result is final (:func:`harness.hookspecs.pytest_perpcheck_check_finished`):

* name ``ID · rule``; labels ``id`` (the check ID, also a tag), ``feature`` = area, ``story`` =
  testing-guide topic, ``venue``, ``area``, ``topic``, suites venue › area › topic, a tag per
  injected defect;
* ``testCaseId`` per check (the same on every venue, so Allure 3 lines the venues up) and
  ``historyId`` per check *and* venue (:func:`history_id`: runs of one check on one venue share a
  history, different venues never do);
* the rule's ``Source:`` as a link (type ``source``; ``--allure-link-pattern source:URL/{}`` makes
  it a URL), the ``Reproduce with:`` command in the description;
* the venue as a parameter (part of Allure 3's history key, which ignores environments), and
  expected, observed, tolerance and deviation of the headline and of every measurement as
  parameters excluded from Allure's identities, so they never split a history;
* the result as JSON, each evidence entry as JSON and each chart as a standalone SVG;
* the skip reason or the first failed measurement as the status message.

When the run ends it writes ``environment.properties``, ``executor.json`` and
``categories.json`` into the results folder, and ``allurerc.mjs`` (Allure 3: one environment per
venue, matched on the ``venue`` label) into the report folder that holds the runs.
Without ``--alluredir`` (allure-pytest inactive) it does nothing.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from harness.results import CheckResult, RunInfo, Status
from harness.safety import REDACTOR

__all__ = [
    "ALLURE_DIR",
    "RC_FILE",
    "AllureResults",
    "case_id",
    "history_id",
    "standalone_svg",
    "write_allurerc",
    "write_environment",
]

ALLURE_DIR = "allure-results"
RC_FILE = "allurerc.mjs"
RC_MARKER = "// perpcheck: generated"
SVG_NS = "http://www.w3.org/2000/svg"
_SUITES = ("parentSuite", "suite", "subSuite")


def case_id(check_id: str) -> str:
    """Allure ``testCaseId`` of a check: the same on every venue and every run."""
    return hashlib.md5(f"perpcheck:{check_id}".encode(), usedforsecurity=False).hexdigest()


def history_id(check_id: str, venue: str) -> str:
    """Allure ``historyId`` of a check on a venue: stable across runs, distinct per venue.

    Allure known issues (``known.json``) are keyed by it.
    """
    digest = hashlib.md5(f"perpcheck:{check_id}:{venue}".encode(), usedforsecurity=False)
    return digest.hexdigest()


class AllureResults:
    """pytest plugin object: the Allure handler of the run's events (see module docstring)."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config

    def _test_result(self) -> Any:
        listener = self._config.pluginmanager.getplugin("allure_listener")
        reporter = getattr(listener, "allure_logger", None)
        return None if reporter is None else reporter.get_test(None)

    def results_dir(self) -> Path | None:
        """Where allure-pytest writes (``--alluredir``), or ``None`` when it is off."""
        raw = getattr(self._config.option, "allure_report_dir", None)
        return Path(raw) if raw else None

    def pytest_perpcheck_check_finished(self, item: pytest.Item, result: CheckResult) -> None:
        test = self._test_result()
        if test is None:
            return
        annotate(test, result, self._config)
        _attach(result)

    def pytest_perpcheck_run_finished(
        self, config: pytest.Config, run_dir: Path, run: RunInfo, results: Sequence[CheckResult]
    ) -> None:
        target = self.results_dir()
        if target is None or self._config.pluginmanager.getplugin("allure_listener") is None:
            return
        write_environment(target, run)
        if target.resolve().is_relative_to(run_dir.resolve()):
            from harness.venue import available_venues

            write_allurerc(run_dir.parent, [*available_venues(), run.venue])


# --------------------------------------------------------------------------- one test result
def annotate(test: Any, result: CheckResult, config: pytest.Config | None = None) -> None:
    """Name, ids, labels, link, parameters and status message of one Allure test result."""
    from allure_commons.model2 import Label, Link, Parameter, StatusDetails
    from allure_commons.types import LabelType

    test.name = f"{result.id} · {result.title}"
    test.testCaseId = case_id(result.id)
    test.historyId = history_id(result.id, result.venue)

    ours = {LabelType.TAG, *_SUITES, "id", "venue", "area", "topic", "feature", "story"}
    test.labels = [label for label in test.labels if label.name not in ours]
    labels = [
        ("id", result.id),
        (LabelType.TAG, result.id),
        (LabelType.FEATURE, result.area),
        (LabelType.STORY, result.topic),
        ("venue", result.venue),
        ("area", result.area),
        ("topic", result.topic),
        (LabelType.PARENT_SUITE, result.venue),
        (LabelType.SUITE, result.area),
        (LabelType.SUB_SUITE, result.topic),
        *((LabelType.TAG, f"defect:{d}") for d in result.defects),
    ]
    test.labels.extend(Label(name=name, value=value) for name, value in labels)

    if result.source:
        # --allure-link-pattern source:https://…/{} turns the reference into a URL.
        patterns = dict(getattr(config.option, "allure_link_pattern", None) or []) if config else {}
        url = str(patterns.get("source", "{}")).format(result.source)
        test.links.append(Link(type="source", url=url, name=f"Source: {result.source}"))

    # The venue is the one parameter in Allure's identity: Allure 3 keys its history by test case
    # and parameters, so venues must differ there too. The rest never split a history.
    params = [
        Parameter(name=n, value=v, excluded=None if n == "venue" else True)
        for n, v in _parameters(result)
    ]
    taken = {p.name for p in params}
    test.parameters = [p for p in test.parameters if p.name not in taken] + params

    lines = [inspect.cleandoc(test.description)] if test.description else []
    lines += [f"Note: {note}" for note in result.notes]
    lines.append(f"Reproduce with: `{result.reproduce}`")
    test.description = "\n\n".join(lines)

    message = _status_message(result)
    if message:
        if test.statusDetails is None:
            test.statusDetails = StatusDetails(message=message)
        else:
            test.statusDetails.message = message


def _status_message(result: CheckResult) -> str:
    if result.status is Status.PASSED:
        return ""
    from harness.progress import first_failure

    return first_failure(result) if result.status is Status.FAILED else result.message


def _parameters(result: CheckResult) -> list[tuple[str, str]]:
    unit = f" {result.unit}" if result.unit else ""
    out: list[tuple[str, str]] = [("venue", result.venue), ("seed", str(result.seed))]
    if result.defects:
        out.append(("defects", ", ".join(result.defects)))
    for key in ("expected", "observed", "tolerance", "deviation"):
        value = getattr(result, key)
        if value is not None:
            out.append((key, f"{value}{unit}"))
    seen: dict[str, int] = {}
    for m in result.measurements:
        seen[m.label] = seen.get(m.label, 0) + 1
        name = m.label if seen[m.label] == 1 else f"{m.label} ({seen[m.label]})"
        m_unit = f" {m.unit}" if m.unit else ""
        value = f"expected {m.expected} · observed {m.observed}"
        if m.tolerance is not None:
            value += f" · tolerance {m.tolerance}{m_unit}"
        if m.deviation is not None:
            value += f" · deviation {m.deviation}{m_unit}"
        value += " · ok" if m.passed else " · FAILED"
        out.append((f"measurement: {name}", value))
    return out


def _attach(result: CheckResult) -> None:
    import allure

    def attach(text: str, name: str, kind: Any) -> None:
        allure.attach(REDACTOR(text), name=name, attachment_type=kind)

    attach(
        json.dumps(result.to_json(), indent=2, sort_keys=True),
        f"{result.id} result.json",
        allure.attachment_type.JSON,
    )
    for name, obj in result.evidence.items():
        attach(json.dumps(obj, indent=2), f"evidence: {name}", allure.attachment_type.JSON)
    for title, svg in charts(result.evidence):
        attach(svg, f"chart: {title}", allure.attachment_type.SVG)


def charts(evidence: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(title, standalone SVG)`` for each evidence entry the HTML report draws."""
    from harness.report.evidence import build_evidence

    css = chart_css()
    out: list[tuple[str, str]] = []
    for view in build_evidence(evidence):
        svg = getattr(view, "svg", None)
        if not svg:
            continue
        key = [(e.name, e.colour, e.dash) for e in getattr(view, "legend", ())]
        key += [(f"{n}  {text}", "", "") for n, text in getattr(view, "items", ())]
        title = str(getattr(view, "title", "") or view.name)
        out.append((title, standalone_svg(svg, css, key)))
    return out


# --------------------------------------------------------------------------- standalone SVG
_VIEWBOX = re.compile(r'viewBox="\s*([-\d.]+)\s+([-\d.]+)\s+([\d.]+)\s+([\d.]+)\s*"')
KEY_ROW = 20  # px per legend line added under a standalone chart


def standalone_svg(svg: str, css: str = "", key: Sequence[tuple[str, str, str]] = ()) -> str:
    """An inline ``<svg>`` (as the HTML report embeds it) as a file of its own: XML namespace,
    intrinsic size, the report's chart styles, and its legend (``key``: name, colour, dash; the
    report shows it as HTML beside the chart) drawn under it."""
    svg = str(svg)  # a Markup would escape every piece added to it
    start = svg.find("<svg")
    if start < 0:
        return svg
    end = svg.index(">", start)
    tag = svg[start:end]
    if "xmlns=" not in tag:
        tag += f' xmlns="{SVG_NS}"'
    legend = ""
    box = _VIEWBOX.search(tag)
    if box is not None:
        x0, y0, w, h = (float(v) for v in box.groups())
        legend = _legend(key, x0 + 8, y0 + h + 4)
        h += KEY_ROW * len(key) + (8 if key else 0)
        tag = tag[: box.start()] + f'viewBox="{_g(x0)} {_g(y0)} {_g(w)} {_g(h)}"' + tag[box.end() :]
        if " width=" not in tag:
            tag += f' width="{_g(w)}" height="{_g(h)}"'
    style = f"<style>{css}</style>" if css else ""
    body = svg[end + 1 :]
    close = body.rfind("</svg>")
    if legend and close >= 0:
        body = body[:close] + legend + body[close:]
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    return f"{head}{tag}>{style}{body}"


def _legend(key: Sequence[tuple[str, str, str]], x: float, y: float) -> str:
    from markupsafe import escape

    parts = []
    for i, (name, colour, dash) in enumerate(key):
        row = y + KEY_ROW * (i + 1) - 6
        if colour:
            dashes = f' stroke-dasharray="{escape(dash)}"' if dash else ""
            parts.append(
                f'<line x1="{_g(x)}" x2="{_g(x + 24)}" y1="{_g(row - 4)}" y2="{_g(row - 4)}" '
                f'stroke="{escape(colour)}" stroke-width="3"{dashes}/>'
            )
        parts.append(
            f'<text x="{_g(x + (32 if colour else 0))}" y="{_g(row)}" class="tick" '
            f'font-size="12">{escape(name)}</text>'
        )
    return f'<g class="key">{"".join(parts)}</g>' if parts else ""


def _g(value: float) -> str:
    return f"{value:.6g}"


def chart_css() -> str:
    """The report's rules for its SVGs (``:root`` variables and selectors naming ``svg``),
    without ``@media`` blocks (a file has no screen to adapt to)."""
    try:
        text = (resources.files("harness.report") / "templates" / "report.css").read_text("utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        return ""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    kept: list[str] = []
    for prelude, body in _top_level_rules(text):
        if prelude.startswith("@"):
            continue
        if "svg" in prelude or ":root" in prelude:
            kept.append(f"{prelude}{{{body}}}")
    return "".join(kept)


def _top_level_rules(css: str) -> Iterable[tuple[str, str]]:
    depth, start, prelude = 0, 0, ""
    for i, ch in enumerate(css):
        if ch == "{":
            if depth == 0:
                prelude, start = css[start:i].strip(), i + 1
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                yield prelude, css[start:i].strip()
                start = i + 1


# --------------------------------------------------------------------------- run-level files
def _prop(text: str, *, key: bool = False) -> str:
    out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    if key:
        out = re.sub(r"[\s:=]", "_", out)
    return out


def write_environment(results_dir: Path, run: RunInfo) -> None:
    """``environment.properties``, ``executor.json`` and ``categories.json`` for Allure."""
    results_dir.mkdir(parents=True, exist_ok=True)
    env: dict[str, str] = {
        "venue": run.venue,
        "seed": str(run.seed),
        "run_id": run.run_id,
        "defects": ", ".join(run.defects) or "none",
        "scenario": str(run.config.get("scenario") or "none"),
        "started_at": run.started_at,
        "finished_at": run.finished_at or "did not finish",
        "complete": str(run.complete).lower(),
    }
    env.update({f"version.{k}": v for k, v in sorted(run.versions.items())})
    lines = [f"{_prop(k, key=True)}={_prop(str(v))}" for k, v in env.items()]
    (results_dir / "environment.properties").write_text(REDACTOR("\n".join(lines) + "\n"))
    executor = {
        "name": "perpcheck",
        "type": "perpcheck",
        "buildName": run.run_id,
        "reportName": f"perpcheck · {run.venue} · seed {run.seed}",
    }
    (results_dir / "executor.json").write_text(json.dumps(executor, indent=2) + "\n")
    categories = [
        {"name": "Rule violations (check failed)", "matchedStatuses": ["failed"]},
        {"name": "Could not finish (venue or harness error)", "matchedStatuses": ["broken"]},
        {
            "name": "Venue lacks a capability",
            "matchedStatuses": ["skipped"],
            "messageRegex": ".* lacks .*",
        },
    ]
    path = results_dir / "categories.json"  # others' categories (documented deviations) kept
    try:
        existing = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    except json.JSONDecodeError:
        existing = []
    ours = {c["name"] for c in categories}
    if isinstance(existing, list):
        categories += [c for c in existing if isinstance(c, dict) and c.get("name") not in ours]
    path.write_text(json.dumps(categories, indent=2) + "\n", encoding="utf-8")


def write_allurerc(report_dir: Path, venues: Iterable[str]) -> Path | None:
    """``allurerc.mjs`` for Allure 3 in the folder of the runs: one environment per venue.

    Rewritten while its first line is the perpcheck marker; delete that line to keep your
    own edits. Returns the path written, or ``None`` when left alone.
    """
    path = report_dir / RC_FILE
    if path.exists() and not path.read_text(encoding="utf-8").startswith(RC_MARKER):
        return None
    names = sorted({v for v in venues if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", v)})
    envs = "".join(f"    {json.dumps(v)}: venue({json.dumps(v)}),\n" for v in names)
    text = (
        f"{RC_MARKER} (harness/allure.py); delete this line to keep your edits.\n"
        "// Allure 3: `npx allure generate` here reads every run's allure-results; each venue is\n"
        "// an environment, so a check's page shows its result on the other venues.\n"
        "const venue = (name) => ({\n"
        "  matcher: ({ labels }) => labels.some((l) => l.name === 'venue' && l.value === name),\n"
        "});\n\n"
        "export default {\n"
        '  name: "perpcheck",\n'
        '  output: "./allure-report",\n'
        '  historyPath: "./allure-history.jsonl",\n'
        '  plugins: { awesome: { options: { groupBy: ["feature", "story"] } } },\n'
        "  environments: {\n"
        f"{envs}"
        "  },\n"
        "};\n"
    )
    report_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
