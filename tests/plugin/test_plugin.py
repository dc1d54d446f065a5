"""The pytest plugin end to end, driven by pytester: options, recording, skips, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.loops import loop_name, loop_policy

HEADER = """
from decimal import Decimal
from harness.checks import check
from harness.venue import Capability
"""


@pytest.fixture(autouse=True)
def _ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def _results(path: Path) -> list[dict[str, object]]:
    (run_dir,) = [p for p in path.iterdir() if p.is_dir()]
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


def _run_json(path: Path) -> dict[str, object]:
    (run_dir,) = [p for p in path.iterdir() if p.is_dir()]
    data: dict[str, object] = json.loads((run_dir / "run.json").read_text())
    return data


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "-p", "no:cacheprovider", "--report-dir", str(pytester.path / "out"), "--seed", "7", *args
    )


def test_passing_check_writes_result_run_json_and_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a=HEADER
        + '''
@check("ORD-901")
async def test_ok(venue, ctx):
    """Two plus two is four.

    Source: arithmetic §1
    """
    ctx.equal("sum", expected=Decimal(4), observed=Decimal(2) + Decimal(2), unit="apples")
'''
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    (row,) = _results(pytester.path / "out")
    assert row["id"] == "ORD-901"
    assert row["status"] == "passed"
    assert row["expected"] == "4"
    assert row["observed"] == "4"
    assert row["unit"] == "apples"
    assert row["source"] == "arithmetic §1"
    assert row["venue"] == "sim"
    assert row["seed"] == 7
    run = _run_json(pytester.path / "out")
    assert run["complete"] is True
    assert run["seed"] == 7
    assert run["counts"] == {"passed": 1}
    assert any(str(k).startswith("sim:") for k in run["versions"])  # type: ignore[attr-defined]
    assert run["versions"]["event loop"] == loop_name(loop_policy("auto"))  # type: ignore[index]
    (run_dir,) = [p for p in (pytester.path / "out").iterdir() if p.is_dir()]
    assert (run_dir / "index.html").exists()
    result.stdout.fnmatch_lines(["*perpcheck report: *index.html"])


def test_collect_only_lists_the_checks_and_writes_no_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a=HEADER
        + '''
@check("ORD-932")
async def test_ok(venue, ctx):
    """Listed, not run.

    Source: arithmetic §1
    """
    ctx.equal("sum", expected=Decimal(4), observed=Decimal(4))
'''
    )
    result = _run(pytester, "--collect-only", "-q")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["test_a.py::test_ok"])
    assert "perpcheck report" not in result.stdout.str()
    assert not (pytester.path / "out").exists() or not any((pytester.path / "out").iterdir())


def test_event_loop_choice_is_used_and_recorded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a=HEADER
        + '''
import asyncio

@check("ORD-931")
async def test_loop(venue, ctx):
    """The checks run on the loop the run asked for.

    Source: harness/loops.py
    """
    name = type(asyncio.get_running_loop()).__module__.split(".")[0]
    ctx.require("loop", name == "asyncio", expected="asyncio", observed=name)
'''
    )
    _run(pytester, "--event-loop", "asyncio").assert_outcomes(passed=1)
    assert _run_json(pytester.path / "out")["versions"]["event loop"] == "asyncio"  # type: ignore[index]


def test_unknown_event_loop_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a=HEADER)
    result = _run(pytester, "--event-loop", "trio")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--event-loop 'trio': choose one of auto, uvloop, asyncio*"])


def test_failed_comparison_fails_with_expected_observed_and_reproduce_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_b=HEADER
        + '''
@check("ORD-902")
async def test_bad(venue, ctx):
    """A rule that the venue breaks.

    Source: perp-mechanics.md §5
    """
    ctx.equal("fee", expected=Decimal("0.5"), observed=Decimal("0.7"), tolerance=Decimal("0.1"))
'''
    )
    result = _run(pytester, "--defect", "mark-is-last")
    assert result.ret == 1
    (row,) = _results(pytester.path / "out")
    assert row["status"] == "failed"
    assert row["expected"] == "0.5"
    assert row["observed"] == "0.7"
    assert row["deviation"] == "0.2"
    assert "fee: expected 0.5, observed 0.7" in str(row["message"])
    assert row["reproduce"] == (
        "perpcheck run --venue sim --seed 7 -k ORD-902 --defect mark-is-last"
    )
    result.stdout.fnmatch_lines(
        ["*FAILED ORD-902*", "*Reproduce with: perpcheck run --venue sim --seed 7 -k ORD-902*"]
    )


def test_check_that_measures_nothing_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_c=HEADER
        + '''
@check("ORD-903")
async def test_empty(venue, ctx):
    """Nothing is compared.

    Source: nowhere §0
    """
'''
    )
    result = _run(pytester)
    assert result.ret == 1
    (row,) = _results(pytester.path / "out")
    assert row["status"] == "failed"
    assert "recorded no comparison" in str(row["message"])


def test_unexpected_exception_is_an_error_not_a_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_d=HEADER
        + '''
@check("ORD-904")
async def test_boom(venue, ctx):
    """Crashes.

    Source: nowhere §0
    """
    raise RuntimeError("venue went away")
'''
    )
    result = _run(pytester)
    assert result.ret == 1
    (row,) = _results(pytester.path / "out")
    assert row["status"] == "error"
    assert "venue went away" in str(row["message"])


def test_missing_capability_skips_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
import pytest
from harness.venue import Capability

@pytest.fixture(autouse=True)
def _no_accounts(monkeypatch):
    from adapters.sim.venue import SimVenue
    monkeypatch.setattr(
        SimVenue, "capabilities",
        property(lambda self: frozenset(Capability) - {Capability.CONTROL_ACCOUNTS}),
    )
"""
    )
    pytester.makepyfile(
        test_e=HEADER
        + '''
@check("ORD-905", needs={Capability.CONTROL_ACCOUNTS})
async def test_needs_accounts(venue, ctx):
    """Needs accounts.

    Source: nowhere §0
    """
    ctx.equal("x", expected=Decimal(1), observed=Decimal(1))
'''
    )
    result = _run(pytester)
    result.assert_outcomes(skipped=1)
    (row,) = _results(pytester.path / "out")
    assert row["status"] == "skipped"
    assert row["message"] == "sim lacks CONTROL_ACCOUNTS"


def test_results_are_flushed_as_each_check_ends(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_f=HEADER
        + '''
import json
from pathlib import Path

@check("ORD-906")
async def test_first(venue, ctx):
    """First.

    Source: nowhere §0
    """
    ctx.equal("x", expected=Decimal(1), observed=Decimal(1))

@check("ORD-907")
async def test_second(venue, ctx, request):
    """Second: the first result is already on disk.

    Source: nowhere §0
    """
    out = Path(request.config.getoption("perpcheck_report_dir"))
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    ctx.equal("lines on disk", expected=Decimal(1), observed=Decimal(len(lines)))
    ctx.require("it is the first check", json.loads(lines[0])["id"] == "ORD-906",
                expected="ORD-906", observed=json.loads(lines[0])["id"])
'''
    )
    result = _run(pytester)
    result.assert_outcomes(passed=2)


def test_check_ids_are_keywords(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_g=HEADER
        + '''
@check("MARK-908")
async def test_one(venue, ctx):
    """One.

    Source: nowhere §0
    """
    ctx.equal("x", expected=Decimal(1), observed=Decimal(1))

@check("LIQ-909")
async def test_two(venue, ctx):
    """Two.

    Source: nowhere §0
    """
    ctx.equal("x", expected=Decimal(1), observed=Decimal(1))
'''
    )
    result = _run(pytester, "-k", "LIQ-909")
    result.assert_outcomes(passed=1, deselected=1)
    result = pytester.runpytest("-p", "no:cacheprovider", "--report-dir", "out2", "-k", "MARK")
    result.assert_outcomes(passed=1, deselected=1)


def test_plain_tests_write_no_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_h="def test_plain():\n    assert True\n")
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "out").exists()


def test_bad_seed_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_i="def test_plain():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--seed", "minus-one")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--seed 'minus-one' must be a non-negative integer*"])


def test_unknown_venue_is_a_usage_error_listing_choices(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_j="def test_plain():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--venue", "mainnet-yolo")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--venue 'mainnet-yolo' is not installed; choose one of: *sim*"])


def test_unknown_defect_stops_the_run_before_any_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_k=HEADER
        + '''
@check("ORD-910")
async def test_one(venue, ctx):
    """One.

    Source: nowhere §0
    """
    ctx.equal("x", expected=Decimal(1), observed=Decimal(1))
'''
    )
    result = _run(pytester, "--defect", "does-not-exist")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*unknown defect(s) does-not-exist; choose from:*"])
    assert not (pytester.path / "out").exists()


def test_scenario_fixture_and_marker_load_simulator_scenarios(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_l=HEADER
        + '''
import pytest

@check("MARK-911")
async def test_fixture(venue, scenario, ctx):
    """The fast-move scenario moves the index 8 % down.

    Source: scenarios §0
    """
    start = (await venue.mark("BTCUSDT")).index_price
    await scenario("fast-move")
    await venue.control.advance(45_000)
    end = (await venue.mark("BTCUSDT")).index_price
    ctx.within("index end / start", low=Decimal("0.91"), high=Decimal("0.93"),
               observed=end / start)

@pytest.mark.scenario("thin-book")
@check("MARK-912")
async def test_marker(venue, ctx):
    """The thin-book scenario leaves three levels a side.

    Source: scenarios §0
    """
    book = await venue.order_book("BTCUSDT", 100)
    ctx.equal("bid levels", expected=Decimal(3), observed=Decimal(len(book.bids)))
'''
    )
    result = _run(pytester)
    result.assert_outcomes(passed=2)


def test_notes_reach_the_results(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_m=HEADER
        + '''
@check("ORD-913")
async def test_noted(venue, ctx):
    """A check that leaves a note.

    Source: nowhere §0
    """
    ctx.note("13 cycles to liquidation at this rate")
    ctx.equal("x", expected=Decimal(1), observed=Decimal(1))
'''
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    (row,) = _results(pytester.path / "out")
    assert row["notes"] == ["13 cycles to liquidation at this rate"]
    (run_dir,) = [p for p in (pytester.path / "out").iterdir() if p.is_dir()]
    assert "13 cycles to liquidation at this rate" in (run_dir / "index.html").read_text()


def test_order_over_the_notional_cap_skips_the_check_with_the_reason(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_n=HEADER
        + '''
from harness.model import OrderRequest, OrderType, Side

@check("ORD-914")
async def test_big(venue, account, ctx):
    """Places an order larger than the cap.

    Source: nowhere §0
    """
    await account.place_order(OrderRequest(
        symbol="BTCUSDT", side=Side.BUY, type=OrderType.MARKET, quantity=Decimal("0.01")))
    ctx.equal("x", expected=Decimal(1), observed=Decimal(1))
'''
    )
    result = _run(pytester, "--max-order-notional", "100")
    result.assert_outcomes(skipped=1)
    (row,) = _results(pytester.path / "out")
    assert row["status"] == "skipped"
    assert "exceeds the per-order cap 100" in str(row["message"])
    result = _run(pytester, "--max-order-notional", "-5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_rate_002_takes_its_testnet_safe_path_on_a_venue_without_rate_control(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
import pytest
from harness.venue import Capability

@pytest.fixture(autouse=True)
def _like_a_testnet(monkeypatch):
    from adapters.sim.venue import SimVenue
    monkeypatch.setattr(
        SimVenue, "capabilities",
        property(lambda self: frozenset(Capability) - {Capability.CONTROL_RATE_LIMITS}),
    )
"""
    )
    result = _run(pytester, "--pyargs", "suites.test_rate", "-k", "RATE-002")
    result.assert_outcomes(passed=1, deselected=6)
    (row,) = _results(pytester.path / "out")
    measurements = row["measurements"]
    assert isinstance(measurements, list)
    labels = [m["label"] for m in measurements]
    assert "no 429 was provoked on a real venue" in labels
    assert "peak published used weight" in labels
