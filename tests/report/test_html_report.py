"""The HTML report: one self-contained page per run folder, readable offline and when partial."""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.report import render_run
from harness.report.charts import Chart, RefLine, Series, downsample, nice_ticks, render_line_chart
from harness.report.evidence import build_evidence
from harness.results import (
    RESULTS_FILE,
    CheckResult,
    Measurement,
    ResultsWriter,
    RunInfo,
    Status,
)

NASTY = '<script>alert("x")</script> & <b>bold</b>'
SKIP_REASON = "sim-http lacks CONTROL_PRICES"
REPRODUCE = "perpcheck run --venue sim --seed 7 -k MARK-001"

MARK_SERIES: dict[str, Any] = {
    "type": "series",
    "title": "Mark vs index during the fast move",
    "x_label": "time (s)",
    "y_label": "price (USDT)",
    "series": {
        "index": [[0, "100.0"], [1, "101.5"], [2, "103.0"]],
        "mark": [[0, 100], [1, 104.25], [2, "103.1"]],
        "last": [[0, "100"], [1, "96"], [2, "103"]],
    },
    "hlines": [{"y": "102.5", "label": "clamp upper"}],
    "vlines": [{"x": 1, "label": "wick"}],
}
FEE_TABLE: dict[str, Any] = {
    "type": "table",
    "title": "Fills and fees",
    "columns": ["fill", "price", "qty", "fee charged"],
    "rows": [[1, "100.1", "0.001", "0.00004004"], [2, "100.2", "0.002", "0.00008016"]],
}


def _result(check_id: str, status: Status, **kwargs: Any) -> CheckResult:
    base: dict[str, Any] = {
        "id": check_id,
        "area": check_id.split("-")[0],
        "title": f"rule of {check_id}",
        "topic": "",
        "source": "perp-mechanics.md §3",
        "venue": "sim",
        "status": status,
        "seed": 7,
        "duration_s": 0.25,
        "reproduce": f"perpcheck run --venue sim --seed 7 -k {check_id}",
    }
    base.update(kwargs)
    return CheckResult(**base)


RESULTS = [
    _result(
        "ORD-001",
        Status.PASSED,
        title="fee = rate × notional",
        expected="0.04004",
        observed="0.04004",
        tolerance="0",
        deviation="0",
        unit="USDT",
        measurements=(
            Measurement(
                label="taker fee",
                expected="0.04004",
                observed="0.04004",
                tolerance="0",
                deviation="0",
                unit="USDT",
                passed=True,
            ),
        ),
        evidence={"fills": FEE_TABLE, "raw": {"order_id": 42, "note": "kept as JSON"}},
    ),
    _result("ORD-002", Status.SKIPPED, message=SKIP_REASON),
    _result(
        "MARK-001",
        Status.FAILED,
        title="a last-price wick does not drag mark",
        expected="102.5",
        observed="104.25",
        tolerance="0.1",
        deviation="1.75",
        unit="USDT",
        message=f"MARK-001 mark at wick: expected <= 102.5, observed 104.25 {NASTY}",
        measurements=(
            Measurement(
                label="mark before wick",
                expected="100",
                observed="100",
                tolerance="0.1",
                deviation="0",
                unit="USDT",
                passed=True,
            ),
            Measurement(
                label="mark at wick",
                expected="<= 102.5",
                observed="104.25",
                tolerance="0.1",
                deviation="1.75",
                unit="USDT",
                passed=False,
            ),
        ),
        evidence={"mark_vs_index": MARK_SERIES},
        reproduce=REPRODUCE,
    ),
    _result("MARK-002", Status.ERROR, message="Unavailable: venue returned 503"),
]


def _write_run(run_dir: Path, results: list[CheckResult], **run_fields: Any) -> Path:
    fields: dict[str, Any] = {
        "run_id": "20250101-120000-sim",
        "venue": "sim",
        "seed": 7,
        "defects": [],
        "versions": {"perpcheck": "0.1.0", "python": "3.11.9"},
        "config": {"suites": ["ORD", "MARK"]},
        "started_at": "2025-01-01T12:00:00+00:00",
        "finished_at": "2025-01-01T12:01:05+00:00",
        "complete": True,
    }
    fields.update(run_fields)
    writer = ResultsWriter(run_dir, RunInfo(**fields))
    for r in results:
        writer.write(r)
    writer.write_run()
    writer.close()
    return run_dir


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return _write_run(tmp_path / "run", RESULTS)


@pytest.fixture
def html(run_dir: Path) -> str:
    return render_run(run_dir).read_text(encoding="utf-8")


def _section(html: str, section_id: str) -> str:
    start = html.index(f'id="{section_id}"')
    return html[start : html.index("</section>", start)]


class _AreaTable(HTMLParser):
    """Rows of ``table.areas`` as lists of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_table = False
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("class", "areas") in attrs:
            self._in_table = True
        elif self._in_table and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append([])
        elif self._in_body and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._in_table = self._in_body = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_render_run_writes_index_html_into_the_run_folder(run_dir: Path) -> None:
    path = render_run(run_dir)
    assert path == run_dir / "index.html"
    assert path.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_every_check_id_appears(html: str) -> None:
    for result in RESULTS:
        assert f'id="check-{result.id}"' in html
        assert result.id in html


def test_failure_and_error_are_listed_first_with_their_reproduce_commands(html: str) -> None:
    first = _section(html, "look-here-first")
    assert html.index('id="look-here-first"') < html.index('id="area-ORD"')
    assert "MARK-001" in first
    assert "MARK-002" in first
    assert REPRODUCE in first
    assert "<code>perpcheck run --venue sim --seed 7 -k MARK-002</code>" in first
    assert "mark at wick" in first  # the failing measurement's label
    assert "104.25" in first
    assert "102.5" in first
    assert "ORD-001" not in first
    assert "ORD-002" not in first


def test_skip_reason_is_shown_as_the_reason(html: str) -> None:
    assert re.search(r"Skipped because</strong>\s*" + re.escape(SKIP_REASON), html)


def test_area_summary_counts_match_the_results(html: str) -> None:
    parser = _AreaTable()
    parser.feed(html)
    rows = {row[0]: row for row in parser.rows}
    assert list(rows) == ["ORD", "MARK"]  # AREAS order, only areas present
    # area, topic, passed, failed, skipped, error, total
    assert rows["ORD"][0:1] + rows["ORD"][2:] == ["ORD", "1", "0", "1", "0", "2"]
    assert rows["MARK"][0:1] + rows["MARK"][2:] == ["MARK", "0", "1", "0", "1", "2"]
    assert rows["MARK"][1] == "Mark against index under fast moves"


def test_verdict_is_fail_when_a_check_failed_and_pass_otherwise(tmp_path: Path, html: str) -> None:
    assert 'class="verdict verdict-fail">FAIL' in html
    passing = [r for r in RESULTS if r.status in (Status.PASSED, Status.SKIPPED)]
    clean = render_run(_write_run(tmp_path / "clean", passing)).read_text(encoding="utf-8")
    assert 'class="verdict verdict-pass">PASS' in clean
    assert 'id="look-here-first"' not in clean


def test_page_loads_nothing_from_the_network(html: str) -> None:
    assert "http://" not in html
    assert "https://" not in html
    assert "url(" not in html
    assert "@import" not in html
    links = re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]*)""", html)
    assert links
    assert all(link.startswith("#") for link in links), links


def test_series_evidence_is_drawn_as_inline_svg_with_legend_and_reference_lines(html: str) -> None:
    svg = html[
        html.index('<svg class="chart"') : html.index("</svg>", html.index('<svg class="chart"'))
    ]
    assert svg.count('class="line"') == 3
    assert svg.count('class="ref"') == 2
    assert "clamp upper" in svg
    assert "wick" in svg
    assert "price (USDT)" in svg
    legend = html[html.index('<ul class="legend">') :]
    for name in ("index", "mark", "last"):
        assert f"{name}</li>" in legend


def test_table_evidence_is_an_html_table_and_other_evidence_is_json(html: str) -> None:
    assert '<table class="evidence-table">' in html
    for column in FEE_TABLE["columns"]:
        assert re.search(rf'<th scope="col"( class="num")?>{re.escape(column)}</th>', html)
    assert '<td class="num">0.00008016</td>' in html
    assert "&#34;order_id&#34;: 42" in html


def test_incomplete_run_shows_a_banner_and_the_results_so_far(tmp_path: Path) -> None:
    run_dir = _write_run(tmp_path / "killed", RESULTS[:2], complete=False, finished_at=None)
    with (run_dir / RESULTS_FILE).open("a", encoding="utf-8") as fh:
        fh.write('{"id": "MARK-001", "area": "MARK", "stat')  # killed mid-write
    html = render_run(run_dir).read_text(encoding="utf-8")
    assert 'class="banner banner-incomplete"' in html
    assert "Incomplete run." in html
    assert 'id="check-ORD-001"' in html
    assert 'id="check-ORD-002"' in html
    assert "MARK-001" not in html


def test_complete_run_has_no_incomplete_banner(html: str) -> None:
    assert "banner-incomplete" not in html.split("<body>", 1)[1]


def test_html_special_characters_in_messages_are_escaped(html: str) -> None:
    assert NASTY not in html
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html


def test_injected_defects_are_announced(tmp_path: Path) -> None:
    run_dir = _write_run(tmp_path / "defects", RESULTS, defects=["mark_equals_last"])
    html = render_run(run_dir).read_text(encoding="utf-8")
    banner = html[html.index('class="banner banner-defects"') :]
    assert "Simulator with injected defects:" in banner
    assert "<code>mark_equals_last</code>" in banner


def test_run_without_results_renders_and_says_so(tmp_path: Path) -> None:
    run_dir = _write_run(tmp_path / "empty", [], complete=False, finished_at=None)
    html = render_run(run_dir).read_text(encoding="utf-8")
    assert "NO RESULTS" in html
    assert "No results recorded yet." in html


@pytest.mark.parametrize(
    "series",
    [
        {"only": [[5, "1.5"]]},
        {"flat": [[0, 7], [1, 7], [2, 7]]},
        {"empty": []},
        {},
        {"zero": [[0, 0]]},
    ],
    ids=["single-point", "constant", "empty-series", "no-series", "single-zero"],
)
def test_degenerate_series_still_draw_a_chart(series: dict[str, Any]) -> None:
    (view,) = build_evidence({"e": {"type": "series", "title": "t", "series": series}})
    assert view.kind == "chart"
    assert view.svg is not None
    assert str(view.svg).startswith('<svg class="chart"')
    assert not re.search(r"\b(nan|inf)\b", str(view.svg), re.IGNORECASE)


def test_unreadable_series_falls_back_to_json_with_the_reason() -> None:
    (view,) = build_evidence({"e": {"type": "series", "series": [[0, 1]]}})
    assert view.kind == "json"
    assert "'series' must map" in view.notes[0]


def test_non_numeric_points_are_left_out_and_counted() -> None:
    (view,) = build_evidence(
        {"e": {"type": "series", "series": {"s": [[0, 1], [1, "n/a"], [2, None], [3, 2]]}}}
    )
    assert view.kind == "chart"
    assert "2 point(s) without a finite numeric x and y were left out" in view.notes


def test_chart_text_is_escaped() -> None:
    chart = Chart(
        title="<t>",
        x_label="x<",
        y_label="y&",
        series=(Series(name="<s>", points=((0.0, 1.0), (1.0, 2.0)), colour="#000000"),),
        hlines=(RefLine(value=1.5, label="<h>"),),
    )
    svg = str(render_line_chart(chart))
    assert "<t>" not in svg
    assert "<s>" not in svg
    assert "<h>" not in svg
    assert "&lt;h&gt;" in svg


def test_nice_ticks_cover_the_range_with_round_steps() -> None:
    lo, hi, ticks = nice_ticks(101.3, 104.25)
    assert lo <= 101.3
    assert hi >= 104.25
    assert ticks[0] == lo
    assert ticks[-1] == pytest.approx(hi)
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert steps == {1.0}
    assert 3 <= len(ticks) <= 8
    _, _, small = nice_ticks(0.0012, 0.0031)
    assert [round(t, 6) for t in small] == [0.001, 0.0015, 0.002, 0.0025, 0.003, 0.0035]


def test_downsampling_keeps_a_one_point_spike() -> None:
    points = [(float(i), 100.0) for i in range(10_000)]
    points[4321] = (4321.0, 250.0)
    kept = downsample(points, limit=200)
    assert len(kept) <= 202
    assert (4321.0, 250.0) in kept
    assert kept[0] == points[0]
    assert kept[-1] == points[-1]
