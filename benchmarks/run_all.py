"""Run every benchmark of issue 9; exit 1 when any target is missed.

Usage: python benchmarks/run_all.py [--quick] [--profile]

Each benchmark runs in its own process (so the memory figure is its own) and prints its
``name: measured (target)`` lines; a summary follows. ``--quick`` runs small workloads (a smoke
test: the figures are not the targets' workloads); ``--profile`` saves the hot paths' cProfile
dumps to benchmarks/out/.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (script, arguments for the full run, arguments for --quick)
BENCHMARKS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("bench_matching.py", (), ("--actions", "50000", "--nautilus-actions", "5000")),
    ("bench_liquidation_scan.py", (), ("--large", "10000")),
    ("bench_virtual_time.py", (), ("--hours", "48")),
    ("bench_memory.py", (), ("--accounts", "5000")),
    # three of each suite run, interleaved, the fastest of each kept: one run of each is at the
    # mercy of whatever else the machine does in that half-minute (spread seen: 2.65-3.26x)
    ("bench_suite.py", ("--repeat", "3"), ("--quick",)),
    ("bench_http.py", (), ("--rounds", "1", "--duration", "2", "--no-shape")),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small workloads (smoke test)")
    parser.add_argument("--profile", action="store_true", help="save cProfile dumps")
    args = parser.parse_args(argv)
    failed: list[str] = []
    for script, full, quick in BENCHMARKS:
        cmd = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        if args.profile:
            cmd.append("--profile")
        print(f"== {script} {' '.join(cmd[2:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.run(cmd, check=False).returncode  # noqa: S603 - our own scripts
        print(f"   ({time.perf_counter() - start:.0f} s, exit {code})", flush=True)
        if code:
            failed.append(script)
    print(
        f"run_all: {len(BENCHMARKS) - len(failed)}/{len(BENCHMARKS)} benchmarks met their targets"
    )
    if failed:
        print(f"missed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
