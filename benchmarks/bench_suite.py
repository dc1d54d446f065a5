"""Target 1: the full default suite on ``sim`` in ≤ 20 s, on ``sim-http`` in ≤ 3× that, and with
two xdist workers ≥ 1.6× faster than serial with identical results.

Usage: python benchmarks/bench_suite.py [--seed S] [--repeat N] [--quick] [--profile]

Runs ``perpcheck run`` as a user does, one process after the other in this one run (so the
ratios compare like with like on the same machine at the same time): ``--venue sim``,
``--venue sim-http`` and ``--venue sim -n 2``, each ``--seed S --no-allure`` into a temporary
report folder, and times each from start to exit (wall clock: start-up, collection, the checks,
the report). Then it compares the ``-n 2`` run's ``results.jsonl`` with the serial one's apart
from timings (``duration_s``, ``started_at``, ``finished_at``): they must be equal, line for line.
For information it prints each run's sum of check durations and the rest of its wall time (the
fixed costs: interpreter, imports, collection, worker start-up, report).

The timed runs share one report folder, as a user's runs share ``./reports``: the ``-n 2`` run
hands the checks out one at a time, longest first by the durations the serial run before it
recorded there (harness.scheduling). For information it also times ``-n 2`` in an empty report
folder, as a first run ever (a fresh clone, a CI job) is scheduled: longest first by the table
the suites ship (suites/durations.json), nothing recorded to go by (its results must be equal
too).

The runs use Python's bytecode cache as an installed perpcheck does (in a private temporary
folder, ``PYTHONPYCACHEPREFIX``, filled by an untimed warm-up run first), even where the
environment turns it off (``PYTHONDONTWRITEBYTECODE``): every process of a run would otherwise
compile the project again, a fixed cost per xdist worker. ``--no-bytecode-cache`` measures
without it.

``--repeat N`` runs each configuration N times, interleaved, and keeps the fastest of each
(on a machine shared with other work). ``--quick`` runs a few areas only (a smoke test: its
figures are not the target's workload); ``--profile`` saves a cProfile of the serial ``sim``
run to benchmarks/out/suite_sim.prof and of the ``sim-http`` run (client, server and simulator
share its process) to benchmarks/out/suite_sim_http.prof, each with a text summary, after the
timed runs (profiling slows a run down).
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import OUT, Target, report

SIM_LIMIT_S = 20.0
HTTP_RATIO = 3.0
SPEEDUP = 1.6
TIMINGS = ("duration_s", "started_at", "finished_at")
QUICK = "ORD or MARK or LIQ"


def run_suite(
    report_dir: Path,
    venue: str,
    seed: int,
    extra: list[str],
    profile: Path | None = None,
    env: dict[str, str] | None = None,
) -> tuple[float, float, Path]:
    """Run ``perpcheck run`` once into ``report_dir``: its wall time, the CPU time of all its
    processes (xdist workers included) and the run folder it added. Exits on a failed run."""
    cli = ["-m", "harness.cli"]
    if profile is not None:
        cli = ["-m", "cProfile", "-o", str(profile), "-m", "harness.cli"]
    cmd = [sys.executable, *cli, "run", "--venue", venue, "--seed", str(seed), "--no-allure"]
    cmd += ["--report-dir", str(report_dir), *extra]
    before = set(report_dir.iterdir()) if report_dir.is_dir() else set()
    cpu_before = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)  # noqa: S603
    wall = time.perf_counter() - start
    cpu = _children_cpu() - cpu_before
    if proc.returncode != 0:
        print(f"bench_suite: {' '.join(cmd[1:])} exited {proc.returncode}", file=sys.stderr)
        print(proc.stdout[-3000:] + proc.stderr[-3000:], file=sys.stderr)
        sys.exit(2)
    (run_dir,) = [p for p in report_dir.iterdir() if p.is_dir() and p not in before]
    return wall, cpu, run_dir


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def results(run_dir: Path) -> list[dict[str, Any]]:
    """The run's results without their timings, in file order."""
    rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMINGS} for row in rows]


def check_time(run_dir: Path) -> float:
    rows = (json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines())
    return sum(float(r.get("duration_s", 0)) for r in rows)


def _profile_summary(path: Path) -> None:
    text = path.with_suffix(".txt")
    with text.open("w", encoding="utf-8") as fh:
        stats = pstats.Stats(str(path), stream=fh)
        stats.sort_stats("cumulative").print_stats(50)
        stats.sort_stats("tottime").print_stats(30)
    print(f"profile: {path} (summary {text})", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="run seed (default 1)")
    parser.add_argument("--quick", action="store_true", help=f"only -k {QUICK!r} (smoke test)")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the serial sim and sim-http runs"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run each configuration N times, interleaved, and keep the fastest (a busy machine)",
    )
    parser.add_argument(
        "--no-bytecode-cache", action="store_true", help="as the environment says (see above)"
    )
    args = parser.parse_args(argv)
    select = ["-k", QUICK] if args.quick else []
    profiles: dict[str, Path] = {}
    if args.profile:
        OUT.mkdir(parents=True, exist_ok=True)
        profiles = {"sim": OUT / "suite_sim.prof", "sim-http": OUT / "suite_sim_http.prof"}
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        base = Path(tmp)
        env = dict(os.environ)
        if not args.no_bytecode_cache:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
            for venue in ("sim", "sim-http"):  # warm-up, untimed: fills the bytecode cache
                run_suite(base / f"warm-{venue}", venue, args.seed, ["-k", "ORD-002"], env=env)
        load_before = os.getloadavg()[0]
        configs = {  # in this order: "n2" schedules by what "sim" recorded just before
            "sim": ("sim", select),
            "http": ("sim-http", select),
            "n2": ("sim", [*select, "-n", "2"]),
            "cold": ("sim", [*select, "-n", "2"]),
        }
        best: dict[str, tuple[float, float, Path]] = {}
        for n in range(args.repeat):  # interleaved; the fastest of each (others' load only adds)
            for key, (venue, extra) in configs.items():
                where = base / (f"cold-{n}" if key == "cold" else "reports")  # cold: no history
                got = run_suite(where, venue, args.seed, extra, env=env)
                if key not in best or got[0] < best[key][0]:
                    best[key] = got
        (sim_s, sim_cpu, sim_dir), (http_s, http_cpu, http_dir), (par_s, par_cpu, par_dir) = (
            best["sim"],
            best["http"],
            best["n2"],
        )
        cold_s, cold_cpu, cold_dir = best["cold"]
        load_after = os.getloadavg()[0]
        for venue, profile in profiles.items():  # after the timed runs: profiling slows a run
            run_suite(base / "prof", venue, args.seed, select, profile, env=env)
            _profile_summary(profile)
        serial, spread = results(sim_dir), results(par_dir)
        same = serial == spread == results(cold_dir)
        http_same = [(r["id"], r["status"]) for r in results(http_dir)] == [
            (r["id"], r["status"]) for r in serial
        ]
        info = [
            (name, wall, cpu, check_time(d))
            for name, wall, cpu, d in (
                ("sim", sim_s, sim_cpu, sim_dir),
                ("sim-http", http_s, http_cpu, http_dir),
                ("sim -n 2", par_s, par_cpu, par_dir),
                ("sim -n 2 (first run)", cold_s, cold_cpu, cold_dir),
            )
        ]
    checks = len(serial)
    targets = [
        Target(
            f"suite on sim ({checks} checks)",
            f"{sim_s:.1f} s",
            f"<= {SIM_LIMIT_S:.0f} s",
            sim_s <= SIM_LIMIT_S,
        ),
        Target(
            "suite on sim-http vs sim",
            f"{http_s / sim_s:.2f}x ({http_s:.1f} s)",
            f"<= {HTTP_RATIO:.0f}x",
            http_s <= HTTP_RATIO * sim_s,
        ),
        Target(
            "suite on sim, -n 2 speed-up over serial",
            f"{sim_s / par_s:.2f}x ({par_s:.1f} s)",
            f">= {SPEEDUP}x",
            sim_s >= SPEEDUP * par_s,
        ),
        Target(
            "  -n 2 in an empty report folder (first run: nothing recorded to schedule by)",
            f"{sim_s / cold_s:.2f}x ({cold_s:.1f} s)",
            "for information: longest first by suites/durations.json",
            None,
        ),
        Target(
            "-n 2 results.jsonl equal to serial (apart from timings)",
            "equal" if same else "DIFFERENT",
            "equal",
            same,
        ),
        Target("sim-http verdicts equal to sim", "equal" if http_same else "DIFFERENT", "", None),
    ]
    for name, wall, cpu, checks_s in info:
        workers = 2 if "-n 2" in name else 1
        targets.append(
            Target(
                f"  {name}: checks / fixed costs / CPU",
                f"{checks_s:.1f} s / {wall - checks_s / workers:.1f} s / {cpu:.1f} s",
                "sum of check durations"
                + (" over both workers" if workers > 1 else "")
                + " / the rest of the wall time"
                + (" (wall - sum/2)" if workers > 1 else "")
                + " / CPU time of all its processes",
                None,
            )
        )
    cores = os.cpu_count() or 1
    targets.append(
        Target(
            "  load average before / after",
            f"{load_before:.2f} / {load_after:.2f}",
            f"{cores} cores; other work on the machine slows the -n 2 run most",
            None,
        )
    )
    if args.quick:
        print(f"bench_suite: --quick (-k {QUICK!r}): not the target's workload")
    return report(targets)


if __name__ == "__main__":
    sys.exit(main())
