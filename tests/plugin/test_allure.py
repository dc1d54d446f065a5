"""Allure results of a run, driven by pytester: what each check's result file carries."""

from __future__ import annotations

import json
import xml.dom.minidom
from pathlib import Path
from typing import Any

import pytest

from harness.allure import case_id, history_id, standalone_svg, write_allurerc

CHECKS = '''
from decimal import Decimal
from harness.checks import check
import pytest


@check("ORD-971")
async def test_ok(venue, ctx):
    """Two plus two is four.

    Source: arithmetic §1
    """
    tol = Decimal("0.1")
    ctx.equal("sum", expected=Decimal(4), observed=Decimal(4), tolerance=tol, unit="USDT")
    ctx.equal("sum again", expected=Decimal(4), observed=Decimal(4))
    ctx.add_evidence("prices", {
        "type": "series", "title": "mark vs index", "x_label": "t", "y_label": "USDT",
        "series": {"mark": [[0, "1"], [1, "2"]], "index": [[0, "1.5"], [1, "2.5"]]},
    })


@check("ORD-972")
async def test_bad(venue, ctx):
    """Three is not four.

    Source: arithmetic §2
    """
    ctx.equal("sum", expected=Decimal(4), observed=Decimal(3), unit="USDT")


@check("ORD-973")
async def test_skips(venue, ctx):
    """Skips with its reason.

    Source: arithmetic §3
    """
    pytest.skip("sim has no such market")
'''


@pytest.fixture(autouse=True)
def _ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_checks=CHECKS)


def _run(pytester: pytest.Pytester, name: str, *args: str) -> Path:
    out = pytester.path / name
    pytester.runpytest(
        "-p", "no:cacheprovider", "--report-dir", str(out / "reports"), "--seed", "7",
        "--alluredir", str(out / "allure"), *args,
    )  # fmt: skip
    return out / "allure"


def _root(svg: str) -> xml.dom.minidom.Element:
    """The SVG's root element; parsing fails unless the file is well-formed XML."""
    root = xml.dom.minidom.parseString(svg).documentElement  # noqa: S318 - our own file
    assert root is not None
    return root


def _results(allure_dir: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in allure_dir.glob("*-result.json"):
        data = json.loads(path.read_text())
        labels = {(label["name"], label["value"]) for label in data["labels"]}
        (check_id,) = [v for n, v in labels if n == "id"]
        data["label_set"] = labels
        found[check_id] = data
    return found


def test_each_check_carries_labels_ids_link_parameters_and_status(
    pytester: pytest.Pytester,
) -> None:
    results = _results(_run(pytester, "a"))
    assert sorted(results) == ["ORD-971", "ORD-972", "ORD-973"]
    ok = results["ORD-971"]
    assert ok["name"] == "ORD-971 · Two plus two is four."
    assert ok["status"] == "passed"
    topic = "Small-size experiments validate edge cases before capital is at risk"
    for label in [
        ("id", "ORD-971"),
        ("tag", "ORD-971"),
        ("feature", "ORD"),
        ("story", topic),
        ("venue", "sim"),
        ("parentSuite", "sim"),
        ("suite", "ORD"),
        ("subSuite", topic),
    ]:
        assert label in ok["label_set"], label
    assert [n for n, _ in ok["label_set"]].count("suite") == 1  # pytest's module suite replaced
    assert ok["historyId"] == history_id("ORD-971", "sim")
    assert ok["testCaseId"] == case_id("ORD-971")
    assert ok["links"] == [
        {"type": "source", "url": "arithmetic §1", "name": "Source: arithmetic §1"}
    ]
    params = {p["name"]: p for p in ok["parameters"]}
    assert params["expected"]["value"] == "4 USDT"
    assert params["observed"]["value"] == "4 USDT"
    assert params["tolerance"]["value"] == "0.1 USDT"
    assert params["measurement: sum"]["value"] == (
        "expected 4 · observed 4 · tolerance 0.1 USDT · deviation 0 USDT · ok"
    )
    assert "measurement: sum again" in params
    # Only the venue is part of Allure's identity (Allure 3 keys history by parameters).
    assert "excluded" not in params["venue"]
    assert all(p["excluded"] is True for p in ok["parameters"] if p["name"] != "venue")
    assert "Reproduce with: `perpcheck run --venue sim --seed 7 -k ORD-971`" in ok["description"]

    bad = results["ORD-972"]
    assert bad["status"] == "failed"
    assert bad["statusDetails"]["message"] == "sum: expected 4, observed 3, deviation -1 USDT"
    skipped = results["ORD-973"]
    assert skipped["status"] == "skipped"
    assert skipped["statusDetails"]["message"] == "sim has no such market"


def test_evidence_and_result_are_attached_as_json_and_charts_as_svg(
    pytester: pytest.Pytester,
) -> None:
    allure_dir = _run(pytester, "a", "-k", "ORD-971")
    (ok,) = _results(allure_dir).values()
    attachments = {a["name"]: a for a in ok["attachments"]}
    result = json.loads((allure_dir / attachments["ORD-971 result.json"]["source"]).read_text())
    assert result["id"] == "ORD-971"
    assert result["observed"] == "4"
    evidence = json.loads((allure_dir / attachments["evidence: prices"]["source"]).read_text())
    assert evidence["series"]["mark"] == [[0, "1"], [1, "2"]]
    chart = attachments["chart: mark vs index"]
    assert chart["type"] == "image/svg+xml"
    svg = (allure_dir / chart["source"]).read_text()
    root = _root(svg)  # a well-formed file of its own
    assert root.getAttribute("xmlns") == "http://www.w3.org/2000/svg"
    assert root.getAttribute("width") == "720"
    assert "<style>" in svg
    assert ">mark</text>" in svg  # the legend, drawn under the chart
    assert ">index</text>" in svg


def test_run_files_environment_executor_and_categories(pytester: pytest.Pytester) -> None:
    allure_dir = _run(pytester, "a", "-k", "ORD-971")
    env = dict(
        line.split("=", 1) for line in (allure_dir / "environment.properties").read_text().split()
    )
    assert env["venue"] == "sim"
    assert env["seed"] == "7"
    assert env["complete"] == "true"
    executor = json.loads((allure_dir / "executor.json").read_text())
    assert executor["name"] == "perpcheck"
    assert executor["buildName"].endswith("-sim-s7")
    categories = json.loads((allure_dir / "categories.json").read_text())
    assert {"failed"} in [set(c["matchedStatuses"]) for c in categories]


def test_history_ids_are_stable_across_runs_and_distinct_across_venues(
    pytester: pytest.Pytester,
) -> None:
    first = _results(_run(pytester, "a", "-k", "ORD-971 or ORD-972"))
    again = _results(_run(pytester, "b", "-k", "ORD-971 or ORD-972"))
    http = _results(_run(pytester, "c", "-k", "ORD-971 or ORD-972", "--venue", "sim-http"))
    for check_id in ("ORD-971", "ORD-972"):
        assert first[check_id]["historyId"] == again[check_id]["historyId"]
        assert first[check_id]["historyId"] != http[check_id]["historyId"]
        assert http[check_id]["historyId"] == history_id(check_id, "sim-http")
        assert first[check_id]["testCaseId"] == http[check_id]["testCaseId"]  # one test case
        assert ("venue", "sim-http") in http[check_id]["label_set"]
    assert first["ORD-971"]["historyId"] != first["ORD-972"]["historyId"]


def test_without_alluredir_nothing_is_written(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--report-dir", "out", "--seed", "7", "-k", "ORD-971"
    )
    result.assert_outcomes(passed=1)
    assert not list(pytester.path.rglob("*-result.json"))


def test_allurerc_has_one_environment_per_venue_and_keeps_user_edits(tmp_path: Path) -> None:
    path = write_allurerc(tmp_path, ["sim", "sim-http", "sim"])
    assert path is not None
    text = path.read_text()
    assert '"sim": venue("sim"),' in text
    assert '"sim-http": venue("sim-http"),' in text
    assert "l.name === 'venue'" in text
    path.write_text("export default {};\n")  # the marker line is gone: the user's file now
    assert write_allurerc(tmp_path, ["sim"]) is None
    assert path.read_text() == "export default {};\n"


def test_standalone_svg_leaves_a_non_svg_alone_and_sizes_from_the_viewbox() -> None:
    assert standalone_svg("<p>no chart</p>") == "<p>no chart</p>"
    svg = standalone_svg('<svg viewBox="0 0 100 50"><rect/></svg>', key=[("a", "#000", "")])
    root = _root(svg)
    assert root.getAttribute("viewBox") == "0 0 100 78"
    assert root.getAttribute("height") == "78"
