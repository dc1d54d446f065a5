"""Record a matrix of perpcheck runs from a source tree, for before/after equivalence.

Usage: python benchmarks/record_runs.py --tree DIR --out DIR [--quick]

Runs ``perpcheck run`` with the code of ``--tree`` (put first on PYTHONPATH) for seeds 7 and 11, and
(unless ``--quick``) once per simulator defect and once per scenario at seed 7. Each run goes to
``OUT/<label>/``. Compare two such folders with ``python benchmarks/compare_runs.py --matrix A B``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

SEEDS = (7, 11)


def _catalog(tree: Path, kind: str) -> list[str]:
    code = (
        "import importlib.metadata as m\n"
        f"ep = [e for e in m.entry_points(group='perpcheck.{kind}') if e.name == 'sim'][0]\n"
        "print('\\n'.join(sorted(ep.load()())))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(  # noqa: S603 - our interpreter running our code
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return [line for line in out.stdout.splitlines() if line]


def _run(tree: Path, out: Path, label: str, extra: list[str]) -> int:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())"]
    cmd += ["run", "--report-dir", str(out / label), *extra]
    proc = subprocess.run(  # noqa: S603 - our interpreter running perpcheck
        cmd, env=env, cwd=tree, capture_output=True, text=True, check=False
    )
    summary = (proc.stdout.strip().splitlines() or ["(no output)"])[0]
    print(f"{label}: exit {proc.returncode}: {summary}", flush=True)
    return proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="seeds only")
    args = parser.parse_args(argv)
    tree, out = args.tree.resolve(), args.out.resolve()
    for seed in SEEDS:
        _run(tree, out, f"seed-{seed}", ["--seed", str(seed)])
    if not args.quick:
        for name in _catalog(tree, "defects"):
            _run(tree, out, f"defect-{name}", ["--seed", "7", "--defect", name])
        for name in _catalog(tree, "scenarios"):
            _run(tree, out, f"scenario-{name}", ["--seed", "7", "--scenario", name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
