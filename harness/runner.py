"""``perpcheck run``, ``report``, ``venues``, ``defects``, ``scenarios`` (and entry-point commands).

``run`` is a front end over pytest: it runs the installed ``suites`` package with the perpcheck
plugin, choosing the seed and the run folder up front so it can say where the report is.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, VenueUnavailable

__all__ = ["register"]

EXIT_NO_TESTS = 5
COMMANDS_GROUP = "perpcheck.commands"  # entry points: ``register(subparsers)`` functions


def register(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="run the conformance checks and write a report",
        description="Run the conformance checks against a venue and write reports/<run-id>/.",
    )
    run.add_argument("--venue", default="sim", help="venue to check (default: sim)")
    run.add_argument(
        "-k",
        dest="keyword",
        default=None,
        metavar="EXPR",
        help="only checks matching EXPR (IDs like LIQ-001, areas like MARK)",
    )
    run.add_argument("--seed", type=int, default=None, help="run seed (default: random)")
    run.add_argument(
        "--defect",
        action="append",
        default=[],
        metavar="NAME",
        help="inject a named simulator defect (repeatable); see 'perpcheck defects'",
    )
    run.add_argument("--scenario", default=None, help="simulator scenario to load for each check")
    run.add_argument(
        "--report-dir",
        type=Path,
        default=Path("reports"),
        metavar="DIR",
        help="where the run folder is written (default: ./reports)",
    )
    run.add_argument(
        "--venue-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="venue-specific option, e.g. balance=10000 (repeatable)",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="one line per check")
    run.set_defaults(handler=_run)

    report = sub.add_parser("report", help="(re)render the HTML report of a run folder")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    report.set_defaults(handler=_report)

    venues = sub.add_parser("venues", help="list the installed venues")
    venues.set_defaults(handler=_venues)

    defects = sub.add_parser("defects", help="list the simulator's named defects")
    defects.set_defaults(handler=_defects)

    scenarios = sub.add_parser("scenarios", help="list the installed scenarios for --scenario")
    scenarios.set_defaults(handler=_scenarios)

    # Commands that live with the adapters (e.g. ``serve``), reached through entry points.
    from importlib.metadata import entry_points

    for ep in entry_points(group=COMMANDS_GROUP):
        ep.load()(sub)


def _run(args: argparse.Namespace) -> int:
    import pytest

    from harness.recording import preflight
    from harness.venue import VenueConfig

    if args.seed is not None and args.seed < 0:
        msg = f"--seed {args.seed} must be a non-negative integer"
        raise ConfigError(msg)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    options: dict[str, str] = {}
    for raw in args.venue_option:
        key, sep, value = raw.partition("=")
        if not sep or not key:
            msg = f"--venue-option {raw!r} must look like KEY=VALUE"
            raise ConfigError(msg)
        options[key] = value
    config = VenueConfig(
        seed=seed, defects=tuple(args.defect), scenario=args.scenario, options=options
    )
    try:
        asyncio.run(preflight(args.venue, config))  # bad venue, defect, scenario: one clear line
    except VenueUnavailable as exc:  # e.g. no API keys: the run records every check as skipped
        print(f"perpcheck run: {exc}; its checks are skipped", file=sys.stderr)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id = f"{stamp}-{args.venue}-s{seed}"
    n = 1
    while (args.report_dir / run_id).exists():
        n += 1
        run_id = f"{stamp}-{args.venue}-s{seed}-{n}"
    pytest_args = [
        "--pyargs",
        "suites",
        "-p",
        "no:cacheprovider",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        "--venue",
        args.venue,
        "--seed",
        str(seed),
        "--report-dir",
        str(args.report_dir),
        "--run-id",
        run_id,
        "-v" if args.verbose else "-q",
    ]
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    for defect in args.defect:
        pytest_args += ["--defect", defect]
    if args.scenario:
        pytest_args += ["--scenario", args.scenario]
    for option in args.venue_option:
        pytest_args += ["--venue-option", option]
    code = int(pytest.main(pytest_args))
    index = args.report_dir / run_id / "index.html"
    if code == EXIT_NO_TESTS:
        print(f"perpcheck run: no check matched -k {args.keyword!r}", file=sys.stderr)
    elif index.exists():
        print(f"report: {index}")
    return code


def _report(args: argparse.Namespace) -> int:
    from harness.report import render_run
    from harness.results import load_run

    load_run(args.run_dir)  # a clear error if the folder is not a run
    print(f"report: {render_run(args.run_dir)}")
    return 0


def _venues(args: argparse.Namespace) -> int:
    from harness.venue import available_venues

    for name, target in sorted(available_venues().items()):
        print(f"{name:20} {target}")
    return 0


def _defects(args: argparse.Namespace) -> int:
    from importlib.metadata import entry_points

    found = False
    for ep in entry_points(group="perpcheck.defects"):
        found = True
        for name, (description, breaks) in sorted(ep.load()().items()):
            print(f"{name:32} {description}  [breaks {', '.join(breaks)}]")
    if not found:
        print("no venue with named defects is installed")
    return 0


def _scenarios(args: argparse.Namespace) -> int:
    import textwrap
    from importlib.metadata import entry_points

    found = False
    for ep in entry_points(group="perpcheck.scenarios"):
        for name, description in sorted(ep.load()().items()):
            found = True
            print(textwrap.fill(f"{name:24} {description}", 100, subsequent_indent=" " * 25))
    if not found:
        print("no venue with scenarios is installed")
    return 0
