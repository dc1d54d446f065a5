"""The HTML report: one self-contained page per run folder, readable offline and when partial."""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.report import render_run
from harness.report.charts import (
    TONES,
    Chart,
    RefLine,
    Series,
    downsample,
    inner_ticks,
    nice_ticks,
    render_line_chart,
    tone_of,
)
from harness.report.evidence import build_evidence
from harness.report.graph import assign_layers
from harness.report.html import _focus
from harness.results import (
    RESULTS_FILE,
    CheckResult,
    Measurement,
    ResultsWriter,
    RunInfo,
    Status,
)
from tests.report.htmltree import parse

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


# ------------------------------------------------------------------ evidence shapes beyond lines
def _svg(view: Any) -> str:
    assert view.svg is not None
    return str(view.svg)


def test_markers_events_and_bands_are_drawn_and_listed() -> None:
    (view,) = build_evidence(
        {
            "drive": {
                "type": "series",
                "x_label": "time (s)",
                "y_label": "price",
                "series": {"mark": [[0, "100"], [1, "99"], [2, "98"]]},
                "markers": [
                    {"x": 1, "y": "99", "label": "A: partial step, 0.5", "tone": "warn"},
                    {"x": 2, "y": "98", "label": "A: full close, 0.5", "tone": "bad"},
                ],
                "events": [{"x": 1, "label": "429, Retry-After 60 s", "kind": "429 rate-limited"}],
                "bands": [{"y0": "98.5", "y1": "99.5", "label": "A's band"}],
            }
        }
    )
    svg = _svg(view)
    assert svg.count('<g class="marker">') == 2
    assert svg.count('<g class="event">') == 1
    assert svg.count('<g class="band">') == 1
    assert "A&#39;s band" in svg
    assert view.items == (
        ("1", "A: partial step, 0.5 — time (s) 1, price 99"),
        ("2", "A: full close, 0.5 — time (s) 2, price 98"),
    )
    legend = {entry.name: entry for entry in view.legend}
    assert legend["429 rate-limited (1)"].colour == TONES["warn"]
    assert legend["429 rate-limited (1)"].shape == "tick"
    assert legend["A's band"].shape == "box"


def test_a_series_never_takes_the_colour_of_an_event_tone_in_its_chart() -> None:
    (view,) = build_evidence(
        {
            "w": {
                "type": "series",
                "series": {"weight": [[0, 1], [1, 2]], "orders": [[0, 0], [1, 1]]},
                "events": [{"x": 1, "label": "429", "kind": "429 rate-limited"}],
            }
        }
    )
    colours = {entry.name: entry.colour for entry in view.legend}
    assert colours["429 rate-limited (1)"] == TONES["warn"]
    assert TONES["warn"] not in (colours["weight"], colours["orders"])


@pytest.mark.parametrize(
    ("kind", "tone"),
    [
        ("429 rate-limited", "warn"),
        ("418 banned", "bad"),
        ("503 unavailable", "bad"),
        ("rejected by bounds", "bad"),
        ("ok", "good"),
        ("band of isolated", None),  # "band" is not "ban"
        ("latency", None),  # nor "latency" "late"
        ("steady account: cancels", None),
    ],
)
def test_event_kinds_suggest_their_tone(kind: str, tone: str | None) -> None:
    assert tone_of(kind) == tone


def test_timeline_merges_a_burst_into_one_counted_capsule() -> None:
    burst = [{"x": 10 + i / 10, "lane": "bursty", "label": f"cancel {i}"} for i in range(25)]
    (view,) = build_evidence(
        {
            "t": {
                "type": "timeline",
                "x_label": "time (s)",
                "lanes": ["steady", "bursty", "alerts"],
                "events": [
                    *({"x": i, "lane": "steady", "label": f"cancel {i}"} for i in range(0, 30, 3)),
                    *burst,
                    {"x": 12.4, "lane": "alerts", "label": "cancel-burst", "kind": "alert"},
                ],
                "spans": [{"x0": 10, "x1": 12.4, "lane": "bursty", "label": "burst"}],
            }
        }
    )
    assert view.kind == "timeline"
    svg = _svg(view)
    assert svg.count('class="tl-event"') == 10 + 1 + 1
    assert ">25</text>" in svg
    assert svg.count('<g class="span">') == 1
    assert [e.name for e in view.legend] == ["steady (10)", "bursty (25)", "alert (1)"]
    assert view.legend[2].colour == TONES["warn"]
    for lane in ("steady", "bursty", "alerts"):
        assert f">{lane}</text>" in svg


def test_graph_is_laid_out_in_named_layers_and_deterministically() -> None:
    evidence = {
        "g": {
            "type": "graph",
            "layers": ["accounts", "collateral", "symbols"],
            "tones": {"bad": "liquidated", "neutral": "survived"},
            "nodes": [
                {"id": "a1", "label": "acct 1", "layer": "accounts", "tone": "bad"},
                {"id": "a2", "label": "acct 2", "layer": "accounts", "tone": "neutral"},
                {"id": "p1", "label": "cross 1", "layer": "collateral", "kind": "pool"},
                {"id": "p2", "label": "cross 2", "layer": "collateral", "kind": "pool"},
                {"id": "BTC", "layer": "symbols", "kind": "symbol"},
                {"id": "ETH", "layer": "symbols", "kind": "symbol"},
            ],
            "edges": [
                {"source": "a1", "target": "p1", "kind": "collateral"},
                {"source": "a2", "target": "p2", "kind": "collateral"},
                {"source": "p1", "target": "BTC", "kind": "position"},
                {"source": "p1", "target": "ETH", "kind": "position"},
                {"source": "p2", "target": "BTC", "kind": "position"},
                {"source": "BTC", "target": "ETH", "kind": "correlation", "label": "beta 1.3"},
            ],
        }
    }
    (view,) = build_evidence(evidence)
    (again,) = build_evidence(evidence)
    svg = _svg(view)
    assert svg == _svg(again)
    assert svg.count('<g class="node">') == 6
    assert svg.count('<g class="edge">') == 6
    for name in ("accounts", "collateral", "symbols"):
        assert f">{name}</text>" in svg
    assert "beta 1.3" in svg
    legend = [e.name for e in view.legend]
    assert legend[:2] == ["liquidated", "survived"]
    assert {"collateral", "position", "correlation"} <= set(legend)


def test_directed_graph_layers_follow_the_longest_path_and_survive_cycles() -> None:
    edges = [("a", "b"), ("b", "c"), ("a", "c"), ("d", "c")]
    assert assign_layers(["a", "b", "c", "d"], edges, directed=True) == {
        "a": 0,
        "b": 1,
        "c": 2,
        "d": 0,
    }
    cyclic = assign_layers(["a", "b"], [("a", "b"), ("b", "a")], directed=True)
    assert set(cyclic) == {"a", "b"}
    assert cyclic["a"] != cyclic["b"]
    (view,) = build_evidence(
        {"g": {"type": "graph", "directed": True, "edges": [{"source": "x", "target": "y"}]}}
    )
    assert _svg(view).count('<g class="node">') == 2  # undeclared endpoints still get a node


def test_status_columns_colour_verdict_cells_and_a_timeline_hint_draws_the_rows() -> None:
    (view,) = build_evidence(
        {
            "v": {
                "type": "table",
                "columns": ["t (s)", "detector", "account", "bounds", "max_step"],
                "status_columns": ["bounds", "max_step"],
                "rows": [
                    ["5", "burst", "acct-1", "True", "-"],
                    ["9", "burst", "acct-2", True, False],
                ],
                "timeline": {"x": "t (s)", "lane": "detector", "label": ["account"]},
            }
        }
    )
    assert view.kind == "table"
    assert [c.status for c in view.rows[0][3:]] == ["pass", "none"]
    assert [c.text for c in view.rows[1][3:]] == ["pass", "fail"]
    assert view.svg is not None
    assert str(view.svg).count('class="tl-event"') == 2


def test_a_timeline_hint_naming_a_missing_column_keeps_the_table_and_says_why() -> None:
    (view,) = build_evidence(
        {"v": {"type": "table", "columns": ["a"], "rows": [["1"]], "timeline": {"x": "t"}}}
    )
    assert view.kind == "table"
    assert view.svg is None
    assert "could not draw this table's timeline" in view.notes[0]


def test_unreadable_graph_falls_back_to_json() -> None:
    (view,) = build_evidence({"g": {"type": "graph", "nodes": [{"label": "no id"}]}})
    assert view.kind == "json"
    assert "has no 'id'" in view.notes[0]


def test_integer_x_axes_get_whole_number_ticks() -> None:
    assert inner_ticks(1, 15, integer=True) == [5.0, 10.0, 15.0]
    assert all(t.is_integer() for t in inner_ticks(0, 7, integer=True))


# ------------------------------------------------------------------ failed, skipped, deviation
def test_failed_check_opens_with_its_first_failed_measurement_and_the_evidence_for_it(
    html: str,
) -> None:
    tree = parse(html)
    row = tree.by_id("check-MARK-001")
    assert "open" in row.attrs
    look = row.find("div", cls="look-first")
    assert look is not None
    text = look.text()
    assert "mark at wick" in text
    assert "<= 102.5" in text
    assert "104.25" in text
    assert "0.1" in text
    (focus,) = [e for e in row.find_all("details", cls="evidence") if "focus" in e.classes]
    assert focus.id == "check-MARK-001-ev-0"
    assert "open" in focus.attrs
    passed = tree.by_id("check-ORD-001")
    assert "open" not in passed.attrs
    assert all("open" in e.attrs for e in passed.find_all("details", cls="evidence"))


def test_focus_prefers_the_evidence_that_names_the_failed_measurement() -> None:
    views = build_evidence(
        {
            "orders": FEE_TABLE,
            "band": {"type": "series", "title": "Steps in the band", "series": {"m": [[0, 1]]}},
            "fills": {"type": "table", "title": "Liquidation fills", "columns": [], "rows": []},
        }
    )
    assert _focus("band step 2: closed quantity", views) == 1
    assert _focus("lowest liquidation fill", views) == 2
    assert _focus("", views) == 1  # no words in common: a drawing first
    assert _focus("anything", []) is None


def test_skipped_check_shows_its_reason_in_its_row(html: str) -> None:
    row = parse(html).by_id("check-ORD-002")
    summary = row.find("summary")
    assert summary is not None
    reason = summary.find("span", cls="c-skip")
    assert reason is not None
    assert SKIP_REASON in reason.text()


DEVIATION = _result(
    "LIQ-001",
    Status.DEVIATION,
    title="isolated LP equals the oracle's",
    measurements=(
        Measurement(
            label="case A: LP",
            expected="57229.96",
            observed="57250.10",
            tolerance="0.1",
            deviation="20.14",
            unit="USDT",
            passed=False,
        ),
    ),
    deviation_note="bybit-testnet documents a different rule for LIQ-001 (1 comparison)",
    known_deviations=(
        {
            "check": "LIQ-001",
            "rule": "Bybit takes the maintenance margin at the entry value",
            "expected": "the LP sits closer to the entry by mmr x |entry - LP|",
            "source": "https://www.bybit.com/en/help-center/article/Liquidation-Price",
            "measurements": "case A: LP",
        },
    ),
)


def test_a_documented_deviation_is_amber_with_its_rule_and_source(tmp_path: Path) -> None:
    run_dir = _write_run(tmp_path / "dev", [*RESULTS, DEVIATION])
    html = render_run(run_dir).read_text(encoding="utf-8")
    tree = parse(html)
    row = tree.by_id("check-LIQ-001")
    assert "status-deviation" in row.classes
    assert "open" not in row.attrs  # not a failure: no "look here" for it
    assert row.find("span", cls="badge-deviation") is not None
    note = row.find("div", cls="deviation-note")
    assert note is not None
    assert "Bybit takes the maintenance margin at the entry value" in note.text()
    link = note.find("a")
    assert link is not None
    assert link.attrs["href"].startswith("https://www.bybit.com/")
    assert "noreferrer" in link.attrs["rel"]
    (measured,) = row.find_all("tr", cls="dev")
    assert "documented" in measured.text()
    section = tree.by_id("documented-deviations")
    assert "LIQ-001" in section.text()
    assert "LIQ-001" not in tree.by_id("look-here-first").text()
    parser = _AreaTable()
    parser.feed(html)
    rows = {row[0]: row for row in parser.rows}
    # area, topic, passed, failed, skipped, error, deviation, total
    assert rows["LIQ"][2:] == ["0", "0", "0", "0", "1", "1"]


def test_the_deviation_column_appears_only_in_runs_that_have_one(html: str) -> None:
    header = parse(html).find("table", cls="areas")
    assert header is not None
    assert "deviation" not in header.find("thead").text()  # type: ignore[union-attr]


def test_a_killed_run_without_failures_is_incomplete_not_pass(tmp_path: Path) -> None:
    passing = [r for r in RESULTS if r.status is Status.PASSED]
    run_dir = _write_run(tmp_path / "killed", passing, complete=False, finished_at=None)
    verdict = parse(render_run(run_dir).read_text(encoding="utf-8")).find("span", cls="verdict")
    assert verdict is not None
    assert verdict.text() == "INCOMPLETE"
    assert "verdict-incomplete" in verdict.classes
