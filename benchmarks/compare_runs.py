"""Compare two perpcheck run folders, ignoring timing fields.

Usage: python benchmarks/compare_runs.py RUN_A RUN_B
       python benchmarks/compare_runs.py --matrix OUT_A OUT_B   (two record_runs.py --out folders)

Each argument is a run folder (the one holding results.jsonl) or a report directory holding exactly
one run folder. results.jsonl and the audit logs must be identical apart from durations and
wall-clock timestamps; the exit status is 1 when they differ (each difference is printed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# Wall-clock fields: they change from run to run and carry no result.
TIMING_KEYS = frozenset({"duration_s", "started_at", "finished_at", "run_id"})


def _run_folder(path: Path) -> Path:
    if (path / "results.jsonl").is_file():
        return path
    runs = [p for p in path.iterdir() if (p / "results.jsonl").is_file()]
    if len(runs) != 1:
        msg = f"{path} holds {len(runs)} run folders; pass the run folder itself"
        raise SystemExit(msg)
    return runs[0]


def _strip(value: Any, run_ids: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v, run_ids) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_strip(v, run_ids) for v in value]
    if isinstance(value, str):
        for run_id in run_ids:
            value = value.replace(run_id, "<run>")
        return value
    return value


def _records(path: Path, run_ids: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            key = str(record.get("nodeid") or record.get("id") or len(out))
            out[key] = _strip(record, run_ids)
    return out


def _jsonl_files(run: Path) -> dict[str, Path]:
    return {str(p.relative_to(run)): p for p in sorted(run.rglob("*.jsonl"))}


def compare(a: Path, b: Path) -> list[str]:
    """Return the differences between two run folders (empty when equivalent)."""
    run_a, run_b = _run_folder(a), _run_folder(b)
    run_ids = (run_a.name, run_b.name)
    files_a, files_b = _jsonl_files(run_a), _jsonl_files(run_b)
    problems = [f"only in {run_a}: {n}" for n in sorted(files_a.keys() - files_b.keys())]
    problems += [f"only in {run_b}: {n}" for n in sorted(files_b.keys() - files_a.keys())]
    for name in sorted(files_a.keys() & files_b.keys()):
        ra, rb = _records(files_a[name], run_ids), _records(files_b[name], run_ids)
        for key in sorted(ra.keys() | rb.keys()):
            if ra.get(key) != rb.get(key):
                left = json.dumps(ra.get(key), sort_keys=True)[:400]
                right = json.dumps(rb.get(key), sort_keys=True)[:400]
                problems.append(f"{name} {key}:\n  a: {left}\n  b: {right}")
    return problems


def compare_matrix(a: Path, b: Path) -> tuple[int, list[str]]:
    """Compare two folders written by record_runs.py, label by label (``a/<label>`` with
    ``b/<label>``); returns how many labels were compared and the differences."""
    labels_a = {p.name for p in a.iterdir() if p.is_dir()}
    labels_b = {p.name for p in b.iterdir() if p.is_dir()}
    problems = [f"label only in {a}: {n}" for n in sorted(labels_a - labels_b)]
    problems += [f"label only in {b}: {n}" for n in sorted(labels_b - labels_a)]
    both = sorted(labels_a & labels_b)
    for label in both:
        problems += [f"[{label}] {p}" for p in compare(a / label, b / label)]
    return len(both), problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument(
        "--matrix", action="store_true", help="A and B are record_runs.py --out folders"
    )
    args = parser.parse_args(argv)
    if args.matrix:
        labels, problems = compare_matrix(args.a, args.b)
    else:
        labels, problems = 1, compare(args.a, args.b)
    for problem in problems:
        print(problem)
    print(f"compare_runs: {labels} run(s) compared, {len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
