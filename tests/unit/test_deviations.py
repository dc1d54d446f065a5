"""Known-deviations registry: parsing, validation, judging by the venue's documented rule, the
``deviation`` status end to end (exit code), and the export as Allure known issues."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from decimal import Decimal
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from harness.checks import CheckContext, CheckSpec
from harness.deviations import (
    DeviationRegistry,
    KnownDeviation,
    documented_deviation,
    judge,
    load_registry,
    parse_registry,
    registry_from_package,
    registry_of,
)
from harness.errors import CheckFailed, ConfigError
from harness.report.known_issues import (
    ALLURE_CATEGORIES_FILE,
    ALLURE_KNOWN_ISSUES_FILE,
    DEVIATION_CATEGORY,
    write_allure_known_issues,
)
from harness.results import CheckResult, Measurement, ResultsWriter, RunInfo, Status
from harness.venue import VenueConfig, open_venue

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
venue = "bybit-testnet"

[[deviation]]
check = "LIQ-001"
label = "*: LP of *"
rule = "Bybit takes the maintenance margin at the entry value."
source = "https://help.bybit.com/hc/en-us/articles/900000181046 ; perp-mechanics.md §6(a)"
expected = "LP closer to the entry: within 0.15 % of the reference LP"
tolerance = "0.15%"

[[deviation]]
check = "ORD-007"
rule = "The venue answers a duplicate client order id with its own code."
source = "venue API docs, error codes"
expected = "rejected with code 10005"
observed = "rejected 10005"

[[deviation]]
check = "RATE-001"
label = "used weight of *"
rule = "Weights counted per IP and per key."
source = "docs"
expected = "at most 2 more"
tolerance = "2"
"""

KNOWN_IDS = ("LIQ-001", "ORD-007", "RATE-001", "MARK-001")


def _m(
    label: str, expected: str, observed: str, deviation: str | None, **kw: object
) -> Measurement:
    return Measurement(
        label=label,
        expected=expected,
        observed=observed,
        tolerance=str(kw.get("tolerance", "0.1")),
        deviation=deviation,
        unit="USDT",
        passed=bool(kw.get("passed", False)),
    )


def _registry() -> DeviationRegistry:
    return parse_registry(GOOD, origin="bybit.toml", known_ids=KNOWN_IDS)


# --------------------------------------------------------------------------- parsing
def test_a_registry_file_parses_into_entries_with_their_rule_source_and_tolerance() -> None:
    registry = _registry()
    assert registry.venue == "bybit-testnet"
    assert len(registry) == 3
    (lp,) = registry.for_check("LIQ-001")
    assert lp.label == "*: LP of *"
    assert lp.tolerance == Decimal("0.15")
    assert lp.relative
    assert lp.tolerance_text == "0.15%"
    assert lp.source.startswith("https://help.bybit.com/")
    assert lp.origin == "bybit.toml, entry 1 (LIQ-001)"
    (dup,) = registry.for_check("ORD-007")
    assert dup.label is None
    assert dup.observed == "rejected 10005"
    assert registry.for_check("MARK-001") == ()


def test_label_patterns_match_whole_labels_with_star_as_any_text() -> None:
    (lp,) = _registry().for_check("LIQ-001")
    assert lp.covers(_m("long, same tier: LP of 0.050 @ 60001.10 (tier 1)", "1", "2", "1"))
    assert not lp.covers(_m("long: the case really crosses a tier boundary", "a", "b", None))
    literal = KnownDeviation(
        venue="v", check="LIQ-001", rule="r", source="s", expected="e", label="band [a, b] (x)"
    )
    assert literal.covers(_m("band [a, b] (x)", "1", "2", "1"))
    assert not literal.covers(_m("band a (x)", "1", "2", "1"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("venue = 1", "missing venue"),
        ('venue = "x"\ncolour = "red"', "unknown key(s) colour"),
        ('venue = "x"\n[[deviation]]\ncheck = "LIQ-001"', "missing 'rule'"),
        (
            'venue = "x"\n[[deviation]]\ncheck = "LIQ-001"\nrule = "r"\nsource = "s"\n'
            'expected = "e"\ntolerence = "1"',
            "unknown key(s) tolerence; allowed: check, rule",
        ),
        (
            'venue = "x"\n[[deviation]]\ncheck = "LIQ-1"\nrule = "r"\nsource = "s"\nexpected = "e"',
            "check ID 'LIQ-1' must look like 'LIQ-001'",
        ),
        (
            'venue = "x"\n[[deviation]]\ncheck = "LIQ-001"\nrule = "r"\nsource = "s"\n'
            'expected = "e"\ntolerance = "-1"',
            "tolerance '-1' must be a non-negative number",
        ),
        (
            'venue = "x"\n[[deviation]]\ncheck = "LIQ-001"\nrule = "r"\nsource = "s"\n'
            'expected = "e"\ntolerance = "a lot"',
            "tolerance 'a lot' must be a non-negative number, or a percentage like '0.1%'",
        ),
        (
            'venue = "x"\n[[deviation]]\ncheck = "LIQ-001"\nrule = "r"\nsource = ""\n'
            'expected = "e"',
            "'source' must be a non-empty string",
        ),
        ('venue = "x"\ndeviation = 3', "must be an array of tables"),
        ("venue = ", "is not valid TOML"),
    ],
)
def test_malformed_registries_are_refused_naming_the_file_entry_and_fix(
    text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=r"^reg\.toml") as err:
        parse_registry(text, origin="reg.toml")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_two_entries_for_the_same_check_and_label_are_refused() -> None:
    entry = '[[deviation]]\ncheck = "LIQ-001"\nrule = "r"\nsource = "s"\nexpected = "e"\n'
    with pytest.raises(ConfigError, match=r"entry 2 \(LIQ-001\): LIQ-001 with no label is already"):
        parse_registry('venue = "x"\n' + entry + entry, origin="reg.toml")


def test_an_unknown_check_id_is_a_clear_error_suggesting_close_ids() -> None:
    text = GOOD.replace('check = "ORD-007"', 'check = "ORD-070"')
    with pytest.raises(ConfigError) as err:
        parse_registry(text, origin="bybit.toml", known_ids=KNOWN_IDS)
    assert str(err.value) == (
        "bybit.toml, entry 2 (ORD-070): unknown check ID 'ORD-070': no check has this ID; "
        "did you mean ORD-007?"
    )


def test_a_registry_for_another_venue_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "reg.toml"
    path.write_text(GOOD, encoding="utf-8")
    with pytest.raises(ConfigError, match="documents venue 'bybit-testnet', not 'okx-demo'"):
        load_registry(path, venue="okx-demo")
    with pytest.raises(ConfigError, match="but the run is on 'sim'"):
        DeviationRegistry(venue="sim").merged(load_registry(path))
    with pytest.raises(ConfigError, match="does not exist"):
        load_registry(tmp_path / "missing.toml")


def test_every_shipped_registry_parses_and_names_existing_checks() -> None:
    import importlib
    import pkgutil

    import suites
    from harness.checks import REGISTRY

    for module in pkgutil.iter_modules(suites.__path__):  # registers every check
        importlib.import_module(f"suites.{module.name}")
    known = [spec.id for spec in REGISTRY]
    shipped = sorted((ROOT / "adapters").rglob("deviations*/*.toml"))
    files = [*shipped, ROOT / "adapters" / "sim" / "deviations.toml"]
    venues = {ep.name for ep in entry_points(group="perpcheck.venues")}
    assert len(files) >= 4
    for path in files:
        registry = load_registry(path, known_ids=known)
        assert registry.venue in venues, path
        assert path.stem in (registry.venue, "deviations"), path
        for entry in registry.entries:
            assert entry.source
            assert entry.rule
            assert entry.expected
    bybit = registry_from_package(
        "adapters.ccxt_venue", "deviations/bybit-testnet.toml", venue="bybit-testnet"
    )
    assert [e.check for e in bybit.entries] == ["LIQ-001"]
    assert (
        registry_from_package("adapters.ccxt_venue", "deviations/nope.toml", venue="x").entries
        == ()
    )


def test_a_venue_exposes_its_registry_and_one_without_has_an_empty_one() -> None:
    async def sim_registry() -> DeviationRegistry:
        venue = await open_venue("sim", VenueConfig(seed=1))
        try:
            return registry_of(venue)
        finally:
            await venue.close()

    registry = asyncio.run(sim_registry())
    assert registry.venue == "sim"
    assert registry.entries == ()

    class Bare:
        name = "bare"

    assert registry_of(Bare()) == DeviationRegistry(venue="bare")


# --------------------------------------------------------------------------- judging
def test_a_failure_within_the_documented_tolerance_is_documented() -> None:
    entries = _registry().for_check("LIQ-001")
    near = _m("long: LP of 0.05 @ 60000", "57229.96", "57262.1", "32.14")  # 0.056 %
    far = _m("short: LP of 0.05 @ 60000", "62743.77", "63400.00", "656.23")  # 1 %
    judgement = judge([near], entries)
    assert judgement.all_documented
    assert judgement.entries == entries
    assert "documented deviation of bybit-testnet" in judgement.message
    assert "within 0.15 % of the reference LP (tolerance 0.15%)" in judgement.note
    assert "source: https://help.bybit.com/" in judgement.note
    both = judge([near, far], entries)
    assert not both.all_documented
    assert both.undocumented == (far,)
    assert any("outside it" in n and far.label in n for n in both.notes())


def test_absolute_tolerance_observed_value_and_behaviour_only_entries() -> None:
    registry = _registry()
    (weights,) = registry.for_check("RATE-001")
    assert judge([_m("used weight of depth", "5", "7", "2")], [weights]).all_documented
    assert not judge([_m("used weight of depth", "5", "8", "3")], [weights]).all_documented
    assert not judge([_m("used weight of depth", "5", "none", None)], [weights]).all_documented
    (dup,) = registry.for_check("ORD-007")
    assert judge([_m("dup rejected", "rejected -4116", "rejected 10005", None)], [dup]).documented
    assert not judge([_m("dup", "rejected -4116", "accepted", None)], [dup]).documented
    anything = KnownDeviation(venue="v", check="ORD-007", rule="r", source="s", expected="e")
    assert judge([_m("dup", "rejected", "accepted", None)], [anything]).all_documented
    assert not judge([], [anything]).all_documented


def _spec(check_id: str = "LIQ-001") -> CheckSpec:
    return CheckSpec(
        id=check_id,
        area=check_id.split("-")[0],
        title="t",
        rule="t",
        source="s",
        needs=frozenset(),
        qualname="f",
        module="m",
    )


def test_a_check_failing_only_where_the_venue_documents_its_rule_ends_as_a_deviation() -> None:
    ctx = CheckContext(
        spec=_spec(), venue="bybit-testnet", seed=1, deviations=_registry().for_check("LIQ-001")
    )
    ctx.equal(
        "long: LP of 0.05 @ 60000",
        expected=Decimal("57229.96"),
        observed=Decimal("57262.1"),
        tolerance=Decimal("0.1"),
    )
    ctx.require("the case crosses a tier boundary", True, expected="yes", observed="yes")
    ctx.finish()  # no CheckFailed: judged by the documented rule
    assert ctx.judgement is not None
    assert ctx.judgement.all_documented
    assert any(n.startswith("documented deviation: long: LP of") for n in ctx.notes)
    assert documented_deviation(Status.PASSED, ctx) is ctx.judgement
    assert documented_deviation(Status.ERROR, ctx) is None
    assert documented_deviation(Status.PASSED, None) is None


def test_an_undocumented_failure_still_fails_and_is_the_headline() -> None:
    ctx = CheckContext(
        spec=_spec(), venue="bybit-testnet", seed=1, deviations=_registry().for_check("LIQ-001")
    )
    ctx.equal(
        "long: LP of 0.05 @ 60000",
        expected=Decimal("57229.96"),
        observed=Decimal("57262.1"),
        tolerance=Decimal("0.1"),
    )
    ctx.require("the case crosses a tier boundary", False, expected="yes", observed="no")
    with pytest.raises(CheckFailed, match=r"^the case crosses a tier boundary: expected yes"):
        ctx.finish()
    assert ctx.headline is not None
    assert ctx.headline.label == "the case crosses a tier boundary"
    assert documented_deviation(Status.FAILED, ctx) is None


# --------------------------------------------------------------------------- end to end
CHECKS = """
from decimal import Decimal
from harness.checks import check

@check("ORD-941")
async def test_documented(venue, ctx):
    '''A comparison the test venue documents differently.

    Source: perp-mechanics.md §5
    '''
    ctx.equal("fee of 1 @ 100", expected=Decimal("0.04"), observed=Decimal("0.05"), unit="USDT")
    ctx.equal("fee of 2 @ 100", expected=Decimal("0.08"), observed=Decimal("0.08"), unit="USDT")
"""

TEST_REGISTRY = """
venue = "sim"

[[deviation]]
check = "ORD-941"
label = "fee of * @ *"
rule = "This test venue charges a flat 0.01 more per fill."
source = "https://example.invalid/fees ; test-only registry"
expected = "fee = rate x notional + 0.01"
tolerance = "0.01"
"""


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_dev=CHECKS)
    return pytester.runpytest(
        "-p", "no:cacheprovider", "--report-dir", str(pytester.path / "out"), "--seed", "7", *args
    )


def _only_result(pytester: pytest.Pytester) -> dict[str, Any]:
    (run_dir,) = [p for p in (pytester.path / "out").iterdir() if p.is_dir()]
    (line,) = (run_dir / "results.jsonl").read_text().splitlines()
    data: dict[str, Any] = json.loads(line)
    return data


def test_documented_deviation_status_and_note_reach_results_and_the_run_does_not_fail(
    pytester: pytest.Pytester,
) -> None:
    registry = pytester.path / "registry.toml"
    registry.write_text(TEST_REGISTRY, encoding="utf-8")
    result = _run(pytester, "--known-deviations", str(registry))
    assert result.ret == 0
    row = _only_result(pytester)
    assert row["status"] == "deviation"
    assert "documented deviation of sim" in str(row["message"])
    assert "flat 0.01 more per fill" in str(row["deviation_note"])
    assert "source: https://example.invalid/fees" in str(row["deviation_note"])
    (record,) = row["known_deviations"]
    assert record["measurements"] == "fee of 1 @ 100"
    (run_dir,) = [p for p in (pytester.path / "out").iterdir() if p.is_dir()]
    run = json.loads((run_dir / "run.json").read_text())
    assert run["counts"] == {"deviation": 1}
    assert str(registry) in run["config"]["known_deviations"]
    assert "deviation" in (run_dir / "index.html").read_text()


def test_without_the_registry_the_same_check_fails_with_exit_1(pytester: pytest.Pytester) -> None:
    result = _run(pytester)
    assert result.ret == 1
    assert _only_result(pytester)["status"] == "failed"


def test_beyond_the_documented_tolerance_the_check_fails(pytester: pytest.Pytester) -> None:
    registry = pytester.path / "registry.toml"
    registry.write_text(TEST_REGISTRY.replace('tolerance = "0.01"', 'tolerance = "0.001"'))
    result = _run(pytester, "--known-deviations", str(registry))
    assert result.ret == 1
    row = _only_result(pytester)
    assert row["status"] == "failed"
    assert any("outside it" in str(n) for n in row["notes"])


def test_a_registry_naming_an_unknown_check_stops_the_run_before_any_check(
    pytester: pytest.Pytester,
) -> None:
    registry = pytester.path / "registry.toml"
    registry.write_text(TEST_REGISTRY.replace("ORD-941", "ORD-949"), encoding="utf-8")
    result = _run(pytester, "--known-deviations", str(registry))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*entry 1 (ORD-949): unknown check ID 'ORD-949'*"])
    result.assert_outcomes()


def test_a_real_simulator_bug_judged_by_a_test_only_registry(tmp_path: Path) -> None:
    """The simulator with the entry-tier defect, judged by a registry that documents that rule."""
    registry = tmp_path / "sim.toml"
    registry.write_text(
        'venue = "sim"\n[[deviation]]\ncheck = "LIQ-001"\nlabel = "*tier boundary*: LP of *"\n'
        'rule = "The liquidation price takes the bracket at the entry notional."\n'
        'source = "test-only registry"\nexpected = "LP with the entry tier"\n',
        encoding="utf-8",
    )
    args = [
        "--pyargs",
        "suites",
        "-p",
        "no:cacheprovider",
        "-q",
        "--seed",
        "3",
        "-k",
        "LIQ-001",
        "--defect",
        "entry-tier-for-liquidation",
        "--report-dir",
        str(tmp_path / "r"),
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    ]
    cases: list[tuple[list[str], int, str]] = [
        ([], 1, "failed"),
        (["--known-deviations", str(registry)], 0, "deviation"),
    ]
    for extra, code, status in cases:
        proc = subprocess.run(  # noqa: S603 - our own test run with fixed arguments
            [sys.executable, "-m", "pytest", *args, "--run-id", status, *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == code, proc.stdout + proc.stderr
        rows = (tmp_path / "r" / status / "results.jsonl").read_text().splitlines()
        assert [json.loads(r)["status"] for r in rows] == [status]


# --------------------------------------------------------------------------- Allure
def _deviation_run(run_dir: Path) -> None:
    info = RunInfo(
        run_id=run_dir.name,
        venue="sim",
        seed=1,
        defects=[],
        versions={},
        config={},
        started_at="2025-01-01T00:00:00.000Z",
    )
    writer = ResultsWriter(run_dir, info)
    record = {"check": "ORD-941", "source": "https://example.invalid/fees ; docs", "rule": "r"}
    for check_id, status in (("ORD-941", Status.DEVIATION), ("ORD-942", Status.FAILED)):
        writer.write(
            CheckResult(
                id=check_id,
                area="ORD",
                title="t",
                topic="",
                source="s",
                venue="sim",
                status=status,
                message="fee: expected 1, observed 2; documented deviation",
                deviation_note="sim documents ... source: https://example.invalid/fees",
                known_deviations=(record,) if status is Status.DEVIATION else (),
                nodeid=f"suites/test_x.py::test_{check_id[-3:]}",
            )
        )
    writer.close()


def test_deviations_export_as_allure_known_issues_into_allure_results(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _deviation_run(run_dir)
    assert write_allure_known_issues(run_dir) == []  # no allure-results: nothing written
    allure = run_dir / "allure-results"
    allure.mkdir()
    for n, check_id in enumerate(("ORD-941", "ORD-942")):
        (allure / f"{n}-result.json").write_text(
            json.dumps(
                {
                    "historyId": f"h{n}",
                    "fullName": f"suites.test_x#test_{check_id[-3:]}",
                    "labels": [{"name": "ID", "value": check_id}],
                }
            )
        )
    (allure / ALLURE_CATEGORIES_FILE).write_text(json.dumps([{"name": "Theirs"}]))
    written = write_allure_known_issues(run_dir)
    assert {p.name for p in written} == {ALLURE_KNOWN_ISSUES_FILE, ALLURE_CATEGORIES_FILE}
    (issue,) = json.loads((allure / ALLURE_KNOWN_ISSUES_FILE).read_text())
    assert issue["historyId"] == "h0"
    assert issue["issues"] == [
        {"type": "issue", "name": "ORD-941: documented rule", "url": "https://example.invalid/fees"}
    ]
    assert "documented deviation" in issue["error"]["message"]
    assert issue["comment"].startswith("sim documents")
    categories = json.loads((allure / ALLURE_CATEGORIES_FILE).read_text())
    assert [c["name"] for c in categories] == [DEVIATION_CATEGORY["name"], "Theirs"]
    write_allure_known_issues(run_dir)  # idempotent
    assert len(json.loads((allure / ALLURE_CATEGORIES_FILE).read_text())) == 2
