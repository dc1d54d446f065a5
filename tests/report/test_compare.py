"""``perpcheck compare``: the checks x runs matrix as JSON and as a self-contained page, from run
folders written by the real writers and by real runs (sim, sim with a defect, sim-http)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.report.compare import (
    COMPARE_HTML,
    COMPARE_JSON,
    Change,
    build_comparison,
    write_comparison,
)
from harness.results import CheckResult, Measurement, ResultsWriter, RunInfo, Status

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- synthetic runs
def _m(label: str, expected: str, observed: str, tolerance: str, deviation: str) -> Measurement:
    ok = abs(float(deviation)) <= float(tolerance)
    return Measurement(
        label=label,
        expected=expected,
        observed=observed,
        tolerance=tolerance,
        deviation=deviation,
        unit="USDT",
        passed=ok,
    )


def _r(check_id: str, status: Status, venue: str, *ms: Measurement, **kw: Any) -> CheckResult:
    head = next((m for m in ms if not m.passed), ms[0] if ms else None)
    return CheckResult(
        id=check_id,
        area=check_id.split("-")[0],
        title=f"rule of {check_id}",
        topic="",
        source="perp-mechanics.md §6",
        venue=venue,
        status=status,
        expected=head.expected if head else None,
        observed=head.observed if head else None,
        tolerance=head.tolerance if head else None,
        deviation=head.deviation if head else None,
        unit="USDT" if head else "",
        measurements=ms,
        **kw,
    )


def _write_run(path: Path, venue: str, results: list[CheckResult], *, complete: bool) -> Path:
    info = RunInfo(
        run_id=path.name,
        venue=venue,
        seed=3,
        defects=[],
        versions={},
        config={},
        started_at="2025-03-01T10:00:00.000Z" if venue == "sim" else "2025-03-02T11:30:00.000Z",
    )
    writer = ResultsWriter(path, info)
    for result in results:
        writer.write(result)
    writer.run.complete = complete
    writer.run.finished_at = "2025-03-02T12:00:00.000Z" if complete else None
    writer.write_run()
    writer.close()
    return path


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    """A complete sim run (baseline) and a partial bybit-testnet run with every kind of cell."""
    fee_ok = _m("fee of 1 @ 100", "0.04", "0.04", "0", "0")
    sim = _write_run(
        tmp_path / "run-sim",
        "sim",
        [
            _r("ORD-001", Status.PASSED, "sim", fee_ok),
            _r(
                "LIQ-001",
                Status.PASSED,
                "sim",
                _m("long: LP of 0.05 @ 60000", "100", "100.05", "0.1", "0.05"),
            ),
            _r("MARK-001", Status.PASSED, "sim", _m("mark outside band", "0", "0", "0.1", "0")),
            _r(
                "FUND-001",
                Status.FAILED,
                "sim",
                _m("rate", "0.0001", "0.0003", "0", "0.0002"),
                message="rate: expected 0.0001, observed 0.0003",
            ),
            _r("RATE-001", Status.PASSED, "sim", _m("used weight of depth", "5", "5", "0", "0")),
            _r("PLQ-001", Status.PASSED, "sim", _m("over-liquidation ratio", "1", "1", "0", "0")),
        ],
        complete=True,
    )
    bybit = _write_run(
        tmp_path / "run-bybit",
        "bybit-testnet",
        [
            _r(
                "ORD-001",
                Status.FAILED,
                "bybit-testnet",
                _m("fee of 1 @ 100", "0.04", "0.05", "0", "0.01"),
                message="fee of 1 @ 100: expected 0.04, observed 0.05",
            ),
            _r(
                "LIQ-001",
                Status.DEVIATION,
                "bybit-testnet",
                _m("long: LP of 0.002 @ 61000", "101", "101.09", "0.01", "0.09"),
                message="long: LP ...; documented deviation of bybit-testnet",
                deviation_note="bybit-testnet documents a different rule for LIQ-001 — source: https://help.bybit.com/x",
            ),
            _r(
                "MARK-001",
                Status.SKIPPED,
                "bybit-testnet",
                message="bybit-testnet lacks CONTROL_CLOCK, CONTROL_PRICES",
            ),
            _r(
                "FUND-001", Status.PASSED, "bybit-testnet", _m("rate", "0.0002", "0.0002", "0", "0")
            ),
            _r(
                "RATE-001",
                Status.SKIPPED,
                "bybit-testnet",
                message="refused by the run's safety caps before sending",
            ),
        ],
        complete=False,
    )
    return sim, bybit


def test_rows_come_new_failures_first_then_fixed_then_changed_deviation_then_unchanged(
    two_runs: tuple[Path, Path],
) -> None:
    comparison = build_comparison(two_runs)
    order = [(row.id, row.change) for row in comparison.rows]
    assert order == [
        ("ORD-001", Change.NEW_FAILURE),
        ("FUND-001", Change.FIXED),
        ("LIQ-001", Change.CHANGED_DEVIATION),
        ("MARK-001", Change.UNCHANGED),
        ("PLQ-001", Change.UNCHANGED),
        ("RATE-001", Change.UNCHANGED),
    ]
    assert comparison.changes == {
        "new failure": 1,
        "fixed": 1,
        "changed deviation": 1,
        "unchanged": 3,
    }


def test_compare_json_has_runs_cells_and_distinguishes_na_from_other_skips(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    html, data_path = write_comparison(two_runs, tmp_path / "out")
    assert html == tmp_path / "out" / COMPARE_HTML
    data = json.loads(data_path.read_text())
    assert [r["venue"] for r in data["runs"]] == ["sim", "bybit-testnet"]
    assert [r["complete"] for r in data["runs"]] == [True, False]
    assert data["runs"][1]["label"] == "bybit-testnet · s3 · 2025-03-02 11:30"
    rows = {row["id"]: row for row in data["rows"]}
    mark = [c["status"] for c in rows["MARK-001"]["cells"]]
    assert mark == ["passed", "n/a"]
    assert (
        rows["MARK-001"]["cells"][1]["reason"]
        == "bybit-testnet lacks CONTROL_CLOCK, CONTROL_PRICES"
    )
    assert [c["status"] for c in rows["RATE-001"]["cells"]] == ["passed", "skipped"]
    assert [c["status"] for c in rows["PLQ-001"]["cells"]] == ["passed", "not run"]
    assert rows["PLQ-001"]["cells"][1]["reason"] == "the run stopped before this check"
    liq = rows["LIQ-001"]["cells"][1]
    assert liq["status"] == "deviation"
    assert liq["deviation"] == "0.09"
    assert liq["tolerance"] == "0.01"
    assert liq["deviation_note"].startswith("bybit-testnet documents")
    ord_cells = rows["ORD-001"]["cells"]
    assert [(c["expected"], c["observed"]) for c in ord_cells] == [
        ("0.04", "0.04"),
        ("0.04", "0.05"),
    ]


def test_numbers_are_compared_as_numbers_against_their_tolerance(
    two_runs: tuple[Path, Path],
) -> None:
    rows = {row.id: row for row in build_comparison(two_runs).rows}
    (fee,) = rows["ORD-001"].numbers
    assert fee.basis == "observed"  # same expected value: the observed values side by side
    assert fee.expected == "0.04"
    assert [v.observed for v in fee.values if v] == ["0.04", "0.05"]
    assert str(fee.spread) == "0.01"
    assert fee.within is False
    (lp,) = rows["LIQ-001"].numbers  # labels differ by their numbers: matched by shape
    assert lp.labels_differ
    assert lp.basis == "deviation"  # other inputs: the deviations are compared
    assert lp.expected is None
    assert str(lp.spread) == "0.04"
    assert str(lp.tolerance) == "0.1"
    assert lp.within is True
    assert rows["MARK-001"].numbers == ()  # one run only


class _Page(HTMLParser):
    """Collects what a reader sees in the comparison page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.cells: dict[str, list[str]] = {}
        self.within: list[str] = []
        self.external: list[str] = []
        self.tags: list[str] = []
        self._row: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        for key in ("src", "href"):
            value = a.get(key) or ""
            if tag != "a" and value:
                self.external.append(value)
        if tag == "tr" and a.get("data-check"):
            self._row = a["data-check"]
            self.rows.append(self._row or "")
        if tag == "td" and self._row and a.get("data-status"):
            self.cells.setdefault(self._row, []).append(a["data-status"] or "")
        if tag == "tr" and a.get("data-within"):
            self.within.append(a["data-within"] or "")


def test_compare_page_shows_the_matrix_na_cells_numbers_and_the_partial_run(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    html_path, _ = write_comparison(two_runs, tmp_path / "out")
    text = html_path.read_text()
    page = _Page()
    page.feed(text)
    assert page.rows == ["ORD-001", "FUND-001", "LIQ-001", "MARK-001", "PLQ-001", "RATE-001"]
    assert page.cells["MARK-001"] == ["passed", "n/a"]
    assert page.cells["RATE-001"] == ["passed", "skipped"]
    assert page.cells["PLQ-001"] == ["passed", "not run"]
    assert page.cells["LIQ-001"] == ["passed", "deviation"]
    assert page.within == ["no", "no", "yes"]  # ORD-001 fee, FUND-001 rate, LIQ-001 LP
    assert "Includes 1 incomplete run" in text
    assert "Documented deviations" in text
    assert "https://help.bybit.com/x" in text
    assert page.external == []  # nothing to fetch: no script, stylesheet or image URL
    assert "script" not in page.tags
    assert "url(" not in text
    assert "@import" not in text
    assert ".badge-passed" in text  # the run report's stylesheet, inlined


def test_cli_compare_writes_both_files_and_prints_where(
    two_runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    assert main(["compare", *map(str, two_runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"compare: {out / COMPARE_HTML}", f"json: {out / COMPARE_JSON}"]
    assert main(["compare", *map(str, two_runs)]) == 0  # default: next to the first run
    (default,) = two_runs[0].parent.glob("compare-*")
    assert (default / COMPARE_HTML).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing-dir", "{sim}"], "run folder missing-dir does not exist"),
        (["{sim}", "{plain}"], "is not a perpcheck run folder (no run.json)"),
        (["{sim}"], "compare needs at least two run folders, got 1"),
        (["{sim}", "{file}"], "is not a folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    two_runs: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "file").write_text("x")
    names = {
        "sim": str(two_runs[0]),
        "plain": str(tmp_path / "plain"),
        "file": str(tmp_path / "file"),
    }
    argv = ["compare", *(a.format(**names) for a in args)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("perpcheck compare: ")
    assert message in err


def test_compare_page_renders_in_headless_chromium_at_laptop_width(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package 'chromium')")
    html_path, _ = write_comparison(two_runs, tmp_path / "out")
    shot = tmp_path / "compare.png"
    proc = subprocess.run(  # noqa: S603 - fixed arguments, a local file
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1366,900",
            f"--screenshot={shot}",
            html_path.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG")
    assert len(data) > 20_000  # a drawn page, not a blank one


# --------------------------------------------------------------------------- real runs
def _perpcheck_run(report_dir: Path, *args: str) -> Path:
    before = set(report_dir.iterdir()) if report_dir.exists() else set()
    proc = subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [sys.executable, "-m", "harness.cli", "run", "--seed", "3", "-k", "LIQ-001 or ORD-002",
         "--report-dir", str(report_dir), *args],
        cwd=report_dir.parent, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    (run_dir,) = [p for p in set(report_dir.iterdir()) - before if (p / "run.json").exists()]
    return run_dir


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    base = tmp_path_factory.mktemp("real")
    reports = base / "reports"
    runs = {
        "sim": _perpcheck_run(reports),
        "sim-http": _perpcheck_run(reports, "--venue", "sim-http"),
        "defect": _perpcheck_run(reports, "--defect", "entry-tier-for-liquidation"),
    }
    yield runs
    shutil.rmtree(base, ignore_errors=True)


def test_real_runs_sim_sim_http_and_a_defect_compare_side_by_side(
    real_runs: dict[str, Path], tmp_path: Path
) -> None:
    order = [real_runs["sim"], real_runs["sim-http"], real_runs["defect"]]
    _, data_path = write_comparison(order, tmp_path / "out")
    data = json.loads(data_path.read_text())
    assert [r["venue"] for r in data["runs"]] == ["sim", "sim-http", "sim"]
    first = data["rows"][0]
    assert first["id"] == "LIQ-001"
    assert first["change"] == "new failure"
    assert [c["status"] for c in first["cells"]] == ["passed", "passed", "failed"]
    numbers = {n["label"].split(":")[0]: n for n in first["numbers"]}
    same_tier = numbers["long, same tier"]
    assert same_tier["basis"] == "observed"
    assert same_tier["within"] is True
    assert same_tier["spread"] == "0"
    observed = [v["observed"] for v in same_tier["values"]]
    assert observed[0] == observed[1] == observed[2] == same_tier["expected"]
    boundary = numbers["long, entry above the tier boundary, LP below"]
    assert boundary["within"] is False  # the defect moves the LP by more than a tick
    assert [v["passed"] for v in boundary["values"]] == [True, True, False]
    rest = {row["id"]: row for row in data["rows"][1:]}
    assert rest["ORD-002"]["change"] == "unchanged"


def test_same_venue_on_two_dates_fixed_when_the_later_run_passes(
    real_runs: dict[str, Path], tmp_path: Path
) -> None:
    comparison = build_comparison([real_runs["defect"], real_runs["sim"]])
    assert [(r.id, r.change) for r in comparison.rows] == [
        ("LIQ-001", Change.FIXED),
        ("ORD-002", Change.UNCHANGED),
    ]
    assert all(run.complete for run in comparison.runs)


def test_a_killed_run_is_included_and_marked(real_runs: dict[str, Path], tmp_path: Path) -> None:
    killed = tmp_path / "killed"
    shutil.copytree(real_runs["sim-http"], killed)
    run = json.loads((killed / "run.json").read_text())
    run.update(complete=False, finished_at=None, exit_status=None)
    (killed / "run.json").write_text(json.dumps(run))
    lines = (killed / "results.jsonl").read_text().splitlines()
    (killed / "results.jsonl").write_text(lines[0] + "\n" + lines[1][:40])  # cut mid-line
    comparison = build_comparison([real_runs["sim"], killed])
    assert [run.complete for run in comparison.runs] == [True, False]
    statuses = {row.id: [c.status for c in row.cells] for row in comparison.rows}
    assert "not run" in [s for cells in statuses.values() for s in cells]
    html, _ = write_comparison([real_runs["sim"], killed], tmp_path / "out")
    assert "incomplete" in html.read_text()
