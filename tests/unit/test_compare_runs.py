"""benchmarks/compare_runs.py: run folders equal apart from timings, one pair or a matrix."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def compare_runs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare_runs", BENCHMARKS / "compare_runs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(folder: Path, run_id: str, rows: list[dict[str, object]]) -> None:
    run = folder / run_id
    run.mkdir(parents=True)
    lines = [json.dumps({**row, "run_id": run_id}) for row in rows]
    (run / "results.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_matrix_compares_each_label_apart_from_timings(
    tmp_path: Path, compare_runs: ModuleType
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    row: dict[str, object] = {"id": "ORD-001", "status": "passed", "observed": "4"}
    _run(a / "seed-7", "r1", [{**row, "duration_s": 0.5}])
    _run(b / "seed-7", "r2", [{**row, "duration_s": 0.9}])  # timings and run ids differ only
    _run(a / "seed-11", "r3", [row])
    _run(b / "seed-11", "r4", [{**row, "observed": "5"}])
    _run(a / "defect-x", "r5", [row])
    labels, problems = compare_runs.compare_matrix(a, b)
    assert labels == 2
    assert problems[0] == f"label only in {a}: defect-x"
    assert len(problems) == 2
    assert problems[1].startswith("[seed-11] results.jsonl ORD-001:")
    assert compare_runs.main(["--matrix", str(a / "seed-7"), str(b / "seed-7")]) == 1  # not labels
    assert compare_runs.main([str(a / "seed-7"), str(b / "seed-7")]) == 0
