"""Check power: the clean simulator passes every check, each named defect fails its checks.

DESIGN.md "Check power": a check that cannot fail proves nothing. Every suite check ID must be
broken by at least one defect, and every defect must make the checks it names fail when
``perpcheck run --defect NAME`` runs the suites against the broken simulator.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import suites
from adapters.sim.defects import DEFECTS
from harness.checks import REGISTRY

SEED = "20261125"


def _suite_ids() -> set[str]:
    """Every check ID the installed suites declare (each ``suites/test_*.py`` module)."""
    names = set()
    for module in pkgutil.iter_modules(suites.__path__):
        if module.name.startswith("test_"):
            names.add(importlib.import_module(f"suites.{module.name}").__name__)
    return {spec.id for spec in REGISTRY if spec.module in names}


def _run(report_dir: Path, defect: str = "") -> dict[str, str]:
    """The clean run runs every check; a defect's run only the checks it must break."""
    args = [
        sys.executable,
        "-m",
        "harness.cli",
        "run",
        "--seed",
        SEED,
        "--report-dir",
        str(report_dir),
    ]
    if defect:
        args += ["--defect", defect, "-k", " or ".join(DEFECTS[defect].breaks)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)  # noqa: S603
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    (run_dir,) = [p for p in report_dir.iterdir() if p.is_dir()]  # beside allurerc.mjs
    rows = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    return {row["id"]: row["status"] for row in rows}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """One clean run and one run per defect, two at a time (the machine has two cores)."""
    base = tmp_path_factory.mktemp("power")
    names = ["", *sorted(DEFECTS)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = pool.map(lambda name: _run(base / (name or "clean"), name), names)
        return dict(zip(names, runs, strict=True))


def test_every_suite_check_title_is_a_whole_sentence() -> None:
    """The report and the CLI show a check's docstring's first line as its title."""
    ids = _suite_ids()
    cut = {s.id: s.title for s in REGISTRY if s.id in ids and not s.title.endswith(".")}
    assert cut == {}


def test_every_suite_check_is_broken_by_some_defect() -> None:
    covered = {check_id for d in DEFECTS.values() for check_id in d.breaks}
    assert _suite_ids() - covered == set()
    assert covered - _suite_ids() == set(), "a defect names a check that does not exist"


def test_clean_simulator_passes_every_check(outcomes: dict[str, dict[str, str]]) -> None:
    clean = outcomes[""]
    assert set(clean) == _suite_ids()
    assert {k: v for k, v in clean.items() if v != "passed"} == {}


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_defect_fails_the_checks_it_names(defect: str, outcomes: dict[str, dict[str, str]]) -> None:
    statuses = outcomes[defect]
    expected = set(DEFECTS[defect].breaks)
    assert {c: statuses.get(c) for c in expected} == dict.fromkeys(expected, "failed")
