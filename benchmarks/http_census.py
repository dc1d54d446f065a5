"""Where a ``sim-http`` run's requests go: counted by endpoint and by check (target 1's ratio).

Usage: python benchmarks/http_census.py [--seed S] [-k EXPR] [--top N] [--out FILE]

Runs ``perpcheck run --venue sim-http`` once, as a user does, with benchmarks/census_plugin.py
counting every request the simulator's server answers (virtual-time advances and the other
control calls included), check by check. Prints the total, the endpoints and the checks that
make the most requests (with their shares and the checks' durations), and saves the whole count
to benchmarks/out/http_census.json (or ``--out``). The run's time is not a figure here (the
count costs a little per request): ``bench_suite.py`` measures the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from _common import OUT

HERE = Path(__file__).resolve().parent


def census(seed: int, keyword: str | None) -> tuple[dict[str, dict[str, int]], dict[str, Any]]:
    """``({check id: {"METHOD /route": count}}, {check id: duration_s})`` of one run."""
    with tempfile.TemporaryDirectory(prefix="http-census-") as tmp:
        out = Path(tmp) / "census.json"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
        addopts = [env.get("PYTEST_ADDOPTS"), "-p census_plugin"]
        env["PYTEST_ADDOPTS"] = " ".join(filter(None, addopts))
        env["PERPCHECK_CENSUS"] = str(out)
        cmd = [sys.executable, "-m", "harness.cli", "run", "--venue", "sim-http"]
        cmd += ["--seed", str(seed), "--no-allure", "--report-dir", str(Path(tmp) / "reports")]
        if keyword:
            cmd += ["-k", keyword]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)  # noqa: S603
        if proc.returncode not in (0, 1) or not out.exists():
            print(proc.stdout[-3000:] + proc.stderr[-3000:], file=sys.stderr)
            sys.exit(2)
        by_node = json.loads(out.read_text(encoding="utf-8"))
        (run_dir,) = [p for p in (Path(tmp) / "reports").iterdir() if p.is_dir()]
        rows = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    ids = {r["nodeid"]: r["id"] for r in rows}
    durations = {r["id"]: r["duration_s"] for r in rows}
    return {ids.get(node, node): counts for node, counts in by_node.items()}, durations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("-k", dest="keyword", default=None, help="only checks matching EXPR")
    parser.add_argument("--top", type=int, default=10, help="rows per table (10)")
    parser.add_argument(
        "--out",
        type=Path,
        default=OUT / "http_census.json",
        help="where the whole count is saved (default: benchmarks/out/http_census.json)",
    )
    args = parser.parse_args(argv)
    by_check, durations = census(args.seed, args.keyword)
    endpoints: Counter[str] = Counter()
    for counts in by_check.values():
        endpoints.update(counts)
    total = sum(endpoints.values())
    print(f"sim-http requests: {total:,} over {len(by_check)} checks (seed {args.seed})")
    print("by endpoint:")
    for name, n in endpoints.most_common(args.top):
        print(f"  {n:>7,}  {100 * n / total:5.1f} %  {name}")
    print("by check:")
    per_check = sorted(by_check.items(), key=lambda kv: -sum(kv[1].values()))
    for check_id, counts in per_check[: args.top]:
        n = sum(counts.values())
        print(
            f"  {n:>7,}  {100 * n / total:5.1f} %  {check_id} "
            f"({durations.get(check_id, 0):.2f} s on sim-http)"
        )
    path = args.out
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(by_check, indent=1, sort_keys=True), encoding="utf-8")
    print(f"census: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
