"""The run as a person sees it: progress per area, the end table, venues, --open, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import webbrowser
from pathlib import Path

import pytest

from harness.cli import main
from harness.progress import ProgressReporter, end_of_run_lines, wants_live_display
from harness.results import CheckResult, Measurement, ResultsWriter, RunInfo, Status
from harness.runner import open_in_browser, unfinished_run, venue_trouble

CLI = [sys.executable, "-m", "harness.cli"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPCHECK_")}
    env.pop("CI", None)
    env.pop("BROWSER", None)
    return {**env, **extra}


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False,
        env=_env(**env),
    )  # fmt: skip


def _run_dirs(report_dir: Path) -> list[Path]:
    return [p for p in report_dir.iterdir() if p.is_dir()]


def _result(check_id: str, status: Status, message: str = "", **kw: object) -> CheckResult:
    area = check_id.split("-")[0]
    return CheckResult(
        id=check_id,
        area=area,
        title=f"rule of {check_id}",
        topic="a topic",
        source="perp-mechanics.md §6",
        venue="sim",
        status=status,
        message=message,
        reproduce=f"perpcheck run --venue sim --seed 3 -k {check_id}",
        **kw,  # type: ignore[arg-type]
    )


def _run_info(**kw: object) -> RunInfo:
    base: dict[str, object] = {
        "run_id": "r1",
        "venue": "sim",
        "seed": 3,
        "defects": [],
        "versions": {},
        "config": {"checks_selected": 4},
        "started_at": "2026-01-01T00:00:00.000+00:00",
    }
    return RunInfo(**{**base, **kw})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- a real run
def test_run_shows_one_plain_line_per_area_then_the_table_and_writes_allure(
    tmp_path: Path,
) -> None:
    """Not a terminal: one line per finished area, no escape codes, no pytest dots, the table,
    the report line, and Allure results inside the run folder."""
    proc = _cli("run", "--seed", "3", "-k", "ORD-001 or ORD-002 or MARK-002", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "\x1b[" not in out
    assert "..." not in out
    lines = out.splitlines()
    assert lines[0].startswith("perpcheck: 3 checks in 2 areas on sim (seed 3), writing reports/")
    assert "perpcheck: ORD      2/2   2 passed" in lines
    assert "perpcheck: MARK     1/1   1 passed" in lines
    assert "perpcheck: 3 passed on sim (seed 3)" in lines
    assert any(line.startswith("  area   checks  passed  failed  skipped") for line in lines)
    assert any(
        line.startswith("  ORD         2       2       0        0  Small-size") for line in lines
    )
    (run_dir,) = _run_dirs(tmp_path / "reports")
    assert lines[-1] == f"perpcheck report: reports/{run_dir.name}/index.html"
    assert len(list((run_dir / "allure-results").glob("*-result.json"))) == 3
    assert "allurerc.mjs" in {p.name for p in (tmp_path / "reports").iterdir()}


def test_failed_run_lists_the_first_failed_measurement_and_reproduce_and_opens_the_report(
    tmp_path: Path,
) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "fake-browser"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(0o755)
    proc = _cli(
        "run", "--seed", "3", "-k", "ORD-004", "--defect", "post-only-takes", "--no-allure",
        "--open", cwd=tmp_path, BROWSER=str(browser),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED ORD-004  A post-only (GTX) order that would cross" in proc.stdout
    assert (
        "  post-only buy at the best ask is refused: expected rejected -5022 (or expired "
        "unfilled), observed FILLED, filled 0.002/0.002 (and 1 more failed measurement)"
    ) in proc.stdout.splitlines()
    assert (
        "  Reproduce with: perpcheck run --venue sim --seed 3 -k ORD-004 --defect post-only-takes"
    ) in proc.stdout.splitlines()
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "def finish" not in proc.stdout  # no pytest traceback of the check
    (run_dir,) = _run_dirs(tmp_path / "reports")
    assert not (run_dir / "allure-results").exists()
    assert opened.read_text().strip() == (run_dir / "index.html").resolve().as_uri()


def test_missing_keys_is_one_line_every_check_skipped_and_exit_3(tmp_path: Path) -> None:
    proc = _cli("run", "--venue", "bybit-testnet", "-k", "ORD-001 or ORD-002", cwd=tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("perpcheck run: bybit-testnet: no API credentials; set ")
    assert line.endswith("; its checks are skipped")
    assert "skipped ×2: bybit-testnet: no API credentials" in proc.stdout


def test_missing_keys_with_workers_is_the_same_one_line_and_exit_3(tmp_path: Path) -> None:
    # -n 2: the controller does not open the venue first; the workers' opening is read back.
    proc = _cli(
        "run", "--venue", "bybit-testnet", "-k", "ORD-001 or ORD-002", "-n", "2", cwd=tmp_path
    )  # fmt: skip
    assert proc.returncode == 3, proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("perpcheck run: bybit-testnet: no API credentials; set ")
    assert line.endswith("; its checks are skipped")
    assert "skipped ×2: bybit-testnet: no API credentials" in proc.stdout


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_unknown_venue_is_one_line_and_exit_2(tmp_path: Path, workers: list[str]) -> None:
    proc = _cli("run", "--venue", "no-such-venue", "-k", "ORD-001", *workers, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "no-such-venue" in proc.stdout + proc.stderr


def test_bad_k_expression_is_a_usage_error_with_exit_2(tmp_path: Path) -> None:
    proc = _cli("run", "-k", "ORD-001 and (", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_killed_previous_run_is_named_once_with_the_report_command(tmp_path: Path) -> None:
    killed = tmp_path / "reports" / "20260101T000000Z-sim-s1"
    writer = ResultsWriter(killed, _run_info(run_id=killed.name, config={"checks_selected": 61}))
    writer.write(_result("ORD-001", Status.PASSED))
    writer.close()  # no finished_at: the process died before the end of the run
    proc = _cli("run", "--seed", "2", "-k", "ORD-002", "--no-allure", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line == (
        f"perpcheck run: the last run reports/{killed.name} did not finish (killed?) after 1 of "
        f"61 checks; 'perpcheck report reports/{killed.name}' renders what it recorded"
    )
    assert unfinished_run(tmp_path / "reports") is None  # the latest run finished: said once


def test_report_of_a_killed_run_renders_it_and_says_it_did_not_finish(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    killed = tmp_path / "killed"
    writer = ResultsWriter(killed, _run_info(config={"checks_selected": 61}))
    writer.write(_result("ORD-001", Status.PASSED))
    writer.close()
    assert main(["report", str(killed)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"report: {killed / 'index.html'}",
        "perpcheck report: the run did not finish; 1 of 61 checks recorded",
    ]
    assert "ORD-001" in (killed / "index.html").read_text()


# --------------------------------------------------------------------------- CLI listings
def test_venues_list_capabilities_without_keys_or_network(tmp_path: Path) -> None:
    proc = _cli("venues", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    entries = proc.stdout.replace("\n" + " " * 19, " ").splitlines()
    listed = {line.split()[0]: line for line in entries}
    assert {"sim", "sim-http", "binanceusdm-demo", "bybit-testnet", "okx-demo"} <= set(listed)
    assert listed["sim"].endswith("can: all")
    total = listed["sim"].split(" of ")[1].split()[0]
    assert f"up to {total:>2} of {total} checks" in listed["sim"]
    assert listed["okx-demo"].endswith("can: READ_FUNDING TRADE")
    assert "READ_STREAMS" in listed["binanceusdm-demo"]
    runs = int(listed["okx-demo"].split("up to")[1].split("of")[0])
    assert 0 < runs < int(total)


def test_help_documents_the_exit_codes(tmp_path: Path) -> None:
    for args in (("--help",), ("run", "--help")):
        proc = _cli(*args, cwd=tmp_path)
        assert proc.returncode == 0
        assert "exit codes:" in proc.stdout
        assert "  3    the venue is unavailable" in proc.stdout
        assert "  5    no check matched -k" in proc.stdout


# --------------------------------------------------------------------------- pieces
def test_end_table_counts_per_area_failures_errors_and_skip_reasons() -> None:
    failed_m = Measurement(
        label="LP", expected="100", observed="101.5", tolerance="0.1", deviation="1.5",
        unit="USDT", passed=False,
    )  # fmt: skip
    results = [
        _result("ORD-001", Status.PASSED),
        _result("LIQ-001", Status.FAILED, "LP: expected 100", measurements=(failed_m,)),
        _result("LIQ-002", Status.ERROR, "harness.errors.Unavailable: no answer"),
        _result("LIQ-003", Status.SKIPPED, "sim lacks READ_BAND"),
    ]
    lines = end_of_run_lines(_run_info(), results, Path("reports/r1/index.html"))
    assert lines[0] == "perpcheck: 1 error, 1 failed, 1 passed, 1 skipped on sim (seed 3)"
    assert lines[1] == "  area   checks  passed  failed  skipped  error  testing-guide topic"
    assert lines[2].startswith("  ORD         1       1       0        0      0  Small-size")
    assert lines[3].startswith("  LIQ         3       0       1        1      1  Liquidation")
    assert lines[4] == "  total       4       1       1        1      1"
    assert lines[5:11] == [
        "FAILED LIQ-001  rule of LIQ-001",
        "  LP: expected 100, observed 101.5, deviation 1.5 USDT, tolerance 0.1 USDT",
        "  Reproduce with: perpcheck run --venue sim --seed 3 -k LIQ-001",
        "ERROR LIQ-002  rule of LIQ-002",
        "  harness.errors.Unavailable: no answer",
        "  Reproduce with: perpcheck run --venue sim --seed 3 -k LIQ-002",
    ]
    assert lines[11:] == [
        "skipped ×1: sim lacks READ_BAND",
        "perpcheck report: reports/r1/index.html",
    ]


def test_end_table_says_when_a_run_stopped_early() -> None:
    lines = end_of_run_lines(
        _run_info(config={"checks_selected": 9}), [_result("ORD-001", Status.PASSED)]
    )
    assert lines[0] == "perpcheck: 1 passed on sim (seed 3); stopped after 1 of 9 checks"


def test_live_display_only_on_a_terminal_and_never_under_ci() -> None:
    assert wants_live_display(True, {"TERM": "xterm"})
    assert not wants_live_display(False, {"TERM": "xterm"})
    assert not wants_live_display(True, {"TERM": "xterm", "CI": "true"})
    assert not wants_live_display(True, {"TERM": "dumb"})
    assert wants_live_display(True, {"TERM": "xterm", "CI": "false"})


def test_live_display_redraws_one_line_per_area_in_place(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_live='''
from decimal import Decimal
from harness.checks import check

@check("ORD-981")
async def test_a(venue, ctx):
    """A.

    Source: x §1
    """
    ctx.equal("a", expected=Decimal(1), observed=Decimal(1))

@check("MARK-981")
async def test_b(venue, ctx):
    """B.

    Source: x §2
    """
    ctx.equal("b", expected=Decimal(1), observed=Decimal(2))
'''
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--report-dir", "out", "--seed", "1", "-qq", "--tb=no",
        plugins=[ProgressReporter(live=True)],
    )  # fmt: skip
    out = result.stdout.str()
    assert "\x1b[2F" in out  # cursor back up over the two area lines
    assert "\x1b[2KORD  " in out
    assert "running MARK-981" in out
    assert "1/1   0 passed, 1 failed\n" in out
    assert "FAILED MARK-981  B." in out


def test_venue_trouble_names_an_unreachable_venue_only_when_nothing_could_run() -> None:
    down = "harness.errors.Unavailable: bybit-testnet did not answer"
    refused = "harness.errors.AuthError: invalid api key"
    assert (
        venue_trouble(
            [_result("ORD-001", Status.ERROR, down)] * 2
            + [_result("ORD-002", Status.SKIPPED, "lacks X")]
        )
        == f"is unreachable: no check could run (2 errored): {down}"
    )
    assert venue_trouble([_result("ORD-001", Status.ERROR, refused)]) == (
        f"refused the API keys: no check could run (1 errored): {refused}"
    )
    assert (
        venue_trouble([_result("ORD-001", Status.ERROR, down), _result("ORD-2", Status.PASSED)])
        is None
    )
    assert venue_trouble([_result("ORD-001", Status.ERROR, "ValueError: bug")]) is None
    assert venue_trouble([]) is None


def test_unfinished_run_ignores_finished_and_still_running_runs(tmp_path: Path) -> None:
    assert unfinished_run(tmp_path / "nothing-here") is None
    run_dir = tmp_path / "r1"
    ResultsWriter(run_dir, _run_info(config={"pid": os.getpid()})).close()
    assert unfinished_run(tmp_path) is None  # its process (this one) is alive: still running
    data = json.loads((run_dir / "run.json").read_text())
    data["finished_at"] = "2026-01-01T00:01:00.000+00:00"
    data["config"] = {}
    (run_dir / "run.json").write_text(json.dumps(data))
    assert unfinished_run(tmp_path) is None


def test_open_without_a_browser_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "index.html"
    assert open_in_browser(page, opener=lambda url: False) is False

    def broken(url: str) -> bool:
        msg = "could not locate runnable browser"
        raise webbrowser.Error(msg)

    assert open_in_browser(page, opener=broken) is False
    err = capsys.readouterr().err.splitlines()
    assert err == [f"perpcheck: no browser to open {page}; open it yourself"] * 2
    seen: list[str] = []

    def fake(url: str) -> bool:
        seen.append(url)
        return True

    assert open_in_browser(page, opener=fake) is True
    assert seen == [page.resolve().as_uri()]
