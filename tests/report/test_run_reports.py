"""Reports of real runs, read for their structure: what a person opening them must find.

The runs (``conftest.runs``) are made with the ``perpcheck`` CLI: passing, failing (injected
defects), with skips, and killed mid-run. Each report must show every area and every check with
its status, a drawing for every series, timeline and graph the checks recorded, the first failed
measurement of each failed check with the evidence to look at, the reason of each skip — and
load nothing from the network.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.report.conftest import DEFECTS, KILL_AFTER, Run
from tests.report.htmltree import Element

DRAWN = {"series", "timeline", "graph"}


def _check(run: Run, check_id: str) -> Element:
    return run.tree.by_id(f"check-{check_id}")


def _evidence(run: Run, check_id: str, index: int) -> Element:
    return run.tree.by_id(f"check-{check_id}-ev-{index}")


def _status_class(element: Element) -> str:
    (status,) = [c for c in element.classes if c.startswith("status-")]
    return status.removeprefix("status-")


def _link_text(element: Element) -> str:
    link = element.find("a")
    return "" if link is None else link.text()


def _first_failure(result: dict[str, Any]) -> dict[str, Any]:
    return next(m for m in result["measurements"] if not m["passed"])


@pytest.mark.parametrize("name", ["passing", "failing", "skips", "killed"])
def test_every_area_has_a_section_and_every_check_a_row_with_its_status(
    runs: dict[str, Run], name: str
) -> None:
    run = runs[name]
    assert run.results, "the run recorded results"
    areas = {r["area"] for r in run.results}
    sections = {e.id.removeprefix("area-") for e in run.tree.find_all("section", cls="area")}
    assert sections == areas
    rows = run.tree.find_all("details", cls="check")
    assert len(rows) == len(run.results)
    for result in run.results:
        row = _check(run, result["id"])
        assert _status_class(row) == result["status"]
        section = next(a for a in row.ancestors() if a.tag == "section")
        assert section.id == f"area-{result['area']}"
        summary = row.find("summary")
        assert summary is not None
        assert result["id"] in summary.text()
        assert summary.find("span", cls=f"badge-{result['status']}") is not None


@pytest.mark.parametrize("name", ["passing", "failing"])
def test_every_drawn_evidence_has_its_chart_and_every_table_its_rows(
    runs: dict[str, Run], name: str
) -> None:
    run = runs[name]
    shapes = set()
    for result in run.results:
        for i, evidence in enumerate(result["evidence"].values()):
            kind = evidence.get("type") if isinstance(evidence, dict) else None
            shapes.add(kind)
            figure = _evidence(run, result["id"], i)
            if kind in DRAWN:
                svg = figure.find("svg", cls="chart")
                assert svg is not None, f"{result['id']} evidence {i} ({kind}) has no chart"
                _assert_drawn(kind, evidence, svg, result["id"])
            elif kind == "table":
                table = figure.find("table", cls="evidence-table")
                assert table is not None
                body = table.find("tbody")
                assert body is not None
                assert len(body.find_all("tr")) == max(len(evidence["rows"]), 1)
                for column in evidence.get("status_columns", []):
                    cells = body.find_all("td", cls="verdict")
                    assert cells, f"{result['id']}: no verdict cells for {column}"
    if name == "passing":
        assert {"series", "timeline", "graph", "table"} <= shapes


def _assert_drawn(kind: str, evidence: dict[str, Any], svg: Element, check_id: str) -> None:
    where = f"{check_id}: {evidence.get('title')}"
    if kind == "series":
        lines = [p for p in svg.find_all("path") if "line" in p.classes]
        drawn = [s for s in evidence["series"].values() if len(s) > 1]
        assert len(lines) == len(drawn), where
        assert len(svg.find_all("g", cls="marker")) == len(evidence.get("markers", [])), where
        assert len(svg.find_all("g", cls="event")) == len(evidence.get("events", [])), where
        assert len(svg.find_all("g", cls="band")) == len(evidence.get("bands", [])), where
    elif kind == "graph":
        assert len(svg.find_all("g", cls="node")) == len(evidence["nodes"]), where
        assert len(svg.find_all("g", cls="edge")) == len(evidence["edges"]), where
    elif kind == "timeline":
        dots = svg.find_all("g", cls="tl-event")
        if evidence.get("events"):
            assert dots, where
        counted = sum(int(t.text()) for d in dots if (t := d.find("text")) is not None)
        singles = sum(1 for d in dots if d.find("text") is None)
        assert counted + singles == len(evidence["events"]), where


def test_the_passing_run_says_pass_and_keeps_its_checks_folded(runs: dict[str, Run]) -> None:
    run = runs["passing"]
    assert run.returncode == 0
    verdict = run.tree.find("span", cls="verdict")
    assert verdict is not None
    assert verdict.text() == "PASS"
    assert run.tree.find_all(pred=lambda e: e.id == "look-here-first") == []
    assert all("open" not in row.attrs for row in run.tree.find_all("details", cls="check"))


def test_each_failed_check_shows_its_first_failed_measurement_and_evidence_first(
    runs: dict[str, Run],
) -> None:
    run = runs["failing"]
    assert run.returncode == 1
    failed = [r for r in run.results if r["status"] in ("failed", "error")]
    assert {r["id"] for r in failed} >= {"MARK-001", "RATE-003", "PARAM-004"}
    first = run.tree.by_id("look-here-first")
    listed = [a.text() for a in first.find_all("a", cls="check-id")]
    assert listed == [r["id"] for r in _in_page_order(run, failed)]
    for result in failed:
        row = _check(run, result["id"])
        assert "open" in row.attrs, f"{result['id']} is not expanded"
        look = row.find("div", cls="look-first")
        assert look is not None
        measurement = _first_failure(result)
        text = look.text()
        assert measurement["label"] in text
        assert measurement["expected"] in text
        assert measurement["observed"] in text
        if measurement["tolerance"] is not None:
            assert measurement["tolerance"] in text
        # The same measurement is in the summary at the top of the page.
        item = next(li for li in first.find_all("li") if _link_text(li) == result["id"])
        assert measurement["label"] in item.text()
        assert measurement["observed"] in item.text()
        if result["evidence"]:
            (focus,) = [e for e in row.find_all("details", cls="evidence") if "focus" in e.classes]
            assert "open" in focus.attrs
            others = [e for e in row.find_all("details", cls="evidence") if e is not focus]
            assert all("open" not in e.attrs for e in others)
            # It comes before the rest of the check's body: right under "what to look at first".
            body = row.find("div", cls="check-body")
            assert body is not None
            order = [c for c in body.children if isinstance(c, Element)]
            assert order.index(focus) == order.index(look) + 1
    for result in run.results:
        if result["status"] == "passed":
            assert "open" not in _check(run, result["id"]).attrs


def _in_page_order(run: Run, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [e.id for e in run.tree.find_all("details", cls="check")]
    return sorted(results, key=lambda r: rows.index(f"check-{r['id']}"))


def test_the_failing_run_names_its_injected_defects(runs: dict[str, Run]) -> None:
    banner = runs["failing"].tree.find("div", cls="banner-defects")
    assert banner is not None
    assert [c.text() for c in banner.find_all("code")] == list(DEFECTS)
    verdict = runs["failing"].tree.find("span", cls="verdict")
    assert verdict is not None
    assert verdict.text() == "FAIL"


def test_skipped_checks_show_their_reason_in_the_row_and_the_body(runs: dict[str, Run]) -> None:
    run = runs["skips"]
    skipped = [r for r in run.results if r["status"] == "skipped"]
    assert {r["id"] for r in skipped} == {"PLQ-001", "PLQ-006"}
    for result in skipped:
        assert "no symbol liquidated by" in result["message"]
        row = _check(run, result["id"])
        summary = row.find("summary")
        assert summary is not None
        reason = summary.find("span", cls="c-skip")
        assert reason is not None
        assert result["message"] in reason.text()
        body = row.find("p", cls="skip-reason")
        assert body is not None
        assert result["message"] in body.text()
    counts = run.tree.find("table", cls="areas")
    assert counts is not None
    plq = next(tr for tr in counts.find_all("tr") if _link_text(tr) == "PLQ")
    assert [td.text() for td in plq.find_all("td") if "num" in td.classes] == [
        "0",
        "0",
        "2",
        "0",
        "2",
    ]


def test_a_killed_run_is_marked_incomplete_and_shows_what_it_recorded(
    runs: dict[str, Run],
) -> None:
    run = runs["killed"]
    assert run.returncode == -9
    assert run.run["complete"] is False
    assert run.run["finished_at"] is None
    assert len(run.results) >= KILL_AFTER
    banner = run.tree.find("div", cls="banner-incomplete")
    assert banner is not None
    assert "Incomplete run." in banner.text()
    assert f"Showing the {len(run.results)} results recorded so far" in banner.text()
    # The banner comes first on the page, before the title and the verdict.
    header = run.tree.by_id("top")
    assert header.find("div") is banner
    verdict = run.tree.find("span", cls="verdict")
    assert verdict is not None
    assert verdict.text() in ("INCOMPLETE", "FAIL (incomplete)")
    assert len(run.tree.find_all("details", cls="check")) == len(run.results)


@pytest.mark.parametrize("name", ["passing", "failing", "skips", "killed"])
def test_the_page_loads_nothing_from_the_network(runs: dict[str, Run], name: str) -> None:
    tree = runs[name].tree
    assert tree.find_all("link") == []
    loaders = ("script", "img", "iframe", "frame", "embed", "object", "audio", "video", "source")
    for element in tree.iter():
        assert "src" not in element.attrs, f"<{element.tag} src=...>"
        assert "srcset" not in element.attrs
        assert "data" not in element.attrs or element.tag != "object"
        assert element.tag not in loaders or element.tag == "script", f"<{element.tag}>"
        if element.tag in ("a", "use", "image"):
            href = element.attrs.get("href", element.attrs.get("xlink:href", "#"))
            assert href.startswith("#"), href
    for block in tree.find_all("style") + tree.find_all("script"):
        code = block.text()
        assert "url(" not in code
        assert "@import" not in code
        assert "http://" not in code
        assert "https://" not in code
        assert "fetch(" not in code
        assert "XMLHttpRequest" not in code
