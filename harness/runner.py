"""``perpcheck run``, ``report``, ``venues``, ``defects``, ``scenarios`` (and entry-point commands).

``run`` is a front end over pytest: it runs the installed ``suites`` package with the perpcheck
plugin, choosing the seed and the run folder up front so it can say where the report is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import webbrowser
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, VenueUnavailable
from harness.loops import CHOICES
from harness.results import CheckResult

__all__ = ["EXIT_CODES_HELP", "open_in_browser", "register"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_VENUE_UNAVAILABLE = 3
EXIT_INTERNAL = 4
EXIT_NO_TESTS = 5
EXIT_INTERRUPTED = 130
#: pytest's exit codes (``pytest.ExitCode``) as perpcheck's.
_FROM_PYTEST = {0: EXIT_OK, 1: EXIT_FAILED, 2: EXIT_INTERRUPTED, 3: EXIT_INTERNAL, 4: EXIT_USAGE}
EXIT_CODES_HELP = """\
exit codes:
  0    every check that ran passed (skipped checks and documented deviations do not fail a run)
  1    a check failed, or could not finish (error)
  2    bad input: unknown venue, defect or scenario, a bad option, not a run folder
  3    the venue is unavailable (no API keys, unreachable, keys refused): no check could run
  4    internal error in perpcheck or pytest; please report it
  5    no check matched -k
  130  interrupted (Ctrl-C); the partial report is still written
"""
COMMANDS_GROUP = "perpcheck.commands"  # entry points: ``register(subparsers)`` functions


def register(sub: Any, *, plugin_commands: bool = True) -> None:
    """Add perpcheck's own commands and, with ``plugin_commands``, those of the entry points
    (``serve``: importing them costs a run's start-up a third of a second, so ``perpcheck run``
    and the other built-in commands skip it)."""
    run = sub.add_parser(
        "run",
        help="run the conformance checks and write a report",
        description="Run the conformance checks against a venue and write reports/<run-id>/.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        "-n",
        "--workers",
        dest="workers",
        default=None,
        metavar="N",
        help="run the checks in N processes (pytest-xdist; 'auto': one per CPU); one run "
        "folder, the same results as a serial run",
    )
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
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="pytest's output: one line per check, tracebacks (instead of progress per area)",
    )
    run.add_argument(
        "--allure",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write Allure results to reports/<run-id>/allure-results (default: on)",
    )
    run.add_argument(
        "--allow-mainnet",
        action="store_true",
        help="allow production endpoints (real money); refused without it",
    )
    run.add_argument(
        "--cleanup",
        action="store_true",
        help="cancel the run's orders and flatten its positions after each check, also on "
        "simulated venues (always done on real ones)",
    )
    run.add_argument(
        "--max-order-notional",
        default=None,
        metavar="USDT",
        help="refuse orders above this notional before sending (default: 5000 on real venues)",
    )
    run.add_argument(
        "--max-run-notional",
        default=None,
        metavar="USDT",
        help="refuse orders once the run's notional reaches this (default: 50000 on real venues)",
    )
    run.add_argument(
        "--known-deviations",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a known-deviations registry (TOML) to judge the venue by, besides its own "
        "(repeatable)",
    )
    run.add_argument(
        "--event-loop",
        default=None,
        choices=CHOICES,
        help="event loop of the checks (default: auto, uvloop where installed)",
    )
    run.add_argument("--open", action="store_true", help="open the report in a browser at the end")
    run.set_defaults(handler=_run)

    report = sub.add_parser("report", help="(re)render the HTML report of a run folder")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    report.add_argument("--open", action="store_true", help="open the report in a browser")
    report.set_defaults(handler=_report)

    compare = sub.add_parser(
        "compare",
        help="compare run folders: checks x runs matrix, numbers side by side",
        description="Write compare.html and compare.json for two or more run folders; the "
        "first is the baseline. Rows: new failures first, then fixed, changed deviation, "
        "unchanged.",
    )
    compare.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    compare.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output folder (default: compare-<time> next to the first run folder)",
    )
    compare.set_defaults(handler=_compare)

    venues = sub.add_parser(
        "venues",
        help="list the installed venues and their capabilities",
        description="List the installed venues, what each can do (from its adapter, without "
        "connecting or needing keys) and how many of the checks it can run.",
    )
    venues.set_defaults(handler=_venues)

    defects = sub.add_parser("defects", help="list the simulator's named defects")
    defects.set_defaults(handler=_defects)

    scenarios = sub.add_parser("scenarios", help="list the installed scenarios for --scenario")
    scenarios.set_defaults(handler=_scenarios)

    # Commands that live with the adapters (e.g. ``serve``), reached through entry points.
    from importlib.metadata import entry_points

    for ep in entry_points(group=COMMANDS_GROUP) if plugin_commands else ():
        ep.load()(sub)


def _safety_args(args: argparse.Namespace) -> list[str]:
    """The safety, judging and event-loop options of ``perpcheck run``, for the plugin."""
    out = []
    if args.allow_mainnet:
        out.append("--allow-mainnet")
    if args.cleanup:
        out.append("--cleanup")
    if args.max_order_notional is not None:
        out += ["--max-order-notional", args.max_order_notional]
    if args.max_run_notional is not None:
        out += ["--max-run-notional", args.max_run_notional]
    for path in args.known_deviations:
        out += ["--known-deviations", str(path)]
    if args.event_loop is not None:
        out += ["--event-loop", args.event_loop]
    return out


#: pytest plugins installed beside perpcheck (its test tools) that the suites never use: blocked
#: in ``perpcheck run``, they cost each process (and each xdist worker) over a second of imports.
_UNUSED_PLUGINS = ("-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:anyio")


def _run(args: argparse.Namespace) -> int:
    import pytest

    from harness.distributed import workers_args
    from harness.recording import preflight
    from harness.venue import VenueConfig

    if args.seed is not None and args.seed < 0:
        msg = f"--seed {args.seed} must be a non-negative integer"
        raise ConfigError(msg)
    distributed = bool(workers_args(args.workers))  # a bad -n: one line, before anything runs
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
    for path in args.known_deviations:  # a missing or malformed file: one line, before the run
        from harness.deviations import load_registry

        load_registry(path)  # (check IDs are validated by the plugin, which knows the suites)
    unavailable = False
    # Open the venue once first: a bad venue, defect, scenario or option ends the run with one
    # clear line. With xdist workers and none of those given, the workers' own opening says all
    # there is to say (an unavailable venue: read back from run.json below) and this process,
    # which runs no check, is spared the venue's imports before it can start them.
    if not distributed or config.defects or config.scenario or config.options:
        try:
            asyncio.run(preflight(args.venue, config))
        except VenueUnavailable as exc:  # e.g. no API keys: the run records every check skipped
            print(f"perpcheck run: {exc}; its checks are skipped", file=sys.stderr)
            unavailable = True
    unfinished = unfinished_run(args.report_dir)
    if unfinished is not None:
        print(f"perpcheck run: {unfinished}", file=sys.stderr)
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
        *_UNUSED_PLUGINS,
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
    ]
    plugins: list[object] = []
    if args.verbose:
        pytest_args.append("-v")
    else:  # the progress lines and the end-of-run table replace pytest's dots and tracebacks
        from harness.progress import ProgressReporter

        pytest_args += ["-qq", "--tb=no", "-rN", "-o", "console_output_style=classic"]
        plugins.append(ProgressReporter())
    if args.allure:
        from harness.allure import ALLURE_DIR

        pytest_args += ["--alluredir", str(args.report_dir / run_id / ALLURE_DIR)]
    else:  # not even loaded: one import less in every process (and xdist worker)
        pytest_args += ["-p", "no:allure_pytest"]
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    pytest_args += workers_args(args.workers)
    for defect in args.defect:
        pytest_args += ["--defect", defect]
    if args.scenario:
        pytest_args += ["--scenario", args.scenario]
    for option in args.venue_option:
        pytest_args += ["--venue-option", option]
    pytest_args += _safety_args(args)
    code = int(pytest.main(pytest_args, plugins=plugins))
    run_dir = args.report_dir / run_id
    index = run_dir / "index.html"
    if not (run_dir / "run.json").exists():  # no check started: only --alluredir was created
        for empty in (run_dir / "allure-results", run_dir):
            with contextlib.suppress(OSError):
                empty.rmdir()
    if code == EXIT_NO_TESTS:
        print(f"perpcheck run: no check matched -k {args.keyword!r}", file=sys.stderr)
        return EXIT_NO_TESTS
    if args.open and index.exists():
        open_in_browser(index)
    exit_code = _FROM_PYTEST.get(code, EXIT_INTERNAL)
    if exit_code == EXIT_INTERRUPTED:
        where = f"; the partial report is {index}" if index.exists() else ""
        print(f"perpcheck run: interrupted{where}", file=sys.stderr)
    if exit_code not in (EXIT_OK, EXIT_FAILED):
        return exit_code
    if not unavailable and distributed and run_dir.is_dir():
        unavailable = _unavailable_in(run_dir)
    if unavailable:
        return EXIT_VENUE_UNAVAILABLE
    from harness.results import load_results

    trouble = venue_trouble(load_results(run_dir) if run_dir.is_dir() else [])
    if trouble is not None:
        print(f"perpcheck run: {args.venue} {trouble}", file=sys.stderr)
        return EXIT_VENUE_UNAVAILABLE
    return exit_code


#: Errors that mean the venue, not the check, is the problem (crash messages name the class).
_VENUE_ERRORS = {"Unavailable": "is unreachable", "AuthError": "refused the API keys"}


def _unavailable_in(run_dir: Path) -> bool:
    """Did the run's venue say it is unavailable when a worker opened it? (Said once, here.)"""
    from harness.results import load_run

    try:
        versions = load_run(run_dir).versions
    except ConfigError:  # no run.json: nothing ran
        return False
    for key, message in versions.items():
        if key.endswith(":unavailable"):
            print(f"perpcheck run: {message}; its checks are skipped", file=sys.stderr)
            return True
    return False


def venue_trouble(results: Sequence[CheckResult]) -> str | None:
    """``"is unreachable: <first message>"`` when every check that ran ended in the same kind
    of venue error (no answer, keys refused): nothing was tested. ``None`` otherwise."""
    from harness.results import Status

    ran = [r for r in results if r.status is not Status.SKIPPED]
    if not ran or any(r.status is not Status.ERROR for r in ran):
        return None
    kinds = {_venue_error_kind(r.message) for r in ran}
    kind = kinds.pop()
    if kinds or kind is None:
        return None
    return f"{kind}: no check could run ({len(ran)} errored): {ran[0].message}"


def _venue_error_kind(message: str) -> str | None:
    head = message.split(":", 1)[0].rsplit(".", 1)[-1].strip()
    return _VENUE_ERRORS.get(head)


def unfinished_run(report_dir: Path) -> str | None:
    """One line about the latest run folder in ``report_dir`` when that run never finished
    (killed: ``run.json`` without ``finished_at``, its process gone), else ``None``."""
    if not report_dir.is_dir():
        return None
    runs = [p for p in report_dir.iterdir() if (p / "run.json").is_file()]
    if not runs:
        return None
    latest = max(runs, key=lambda p: ((p / "run.json").stat().st_mtime, p.name))
    try:
        data = json.loads((latest / "run.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        data = {}
    if not isinstance(data, dict) or data.get("finished_at"):
        return None
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    pid = config.get("pid") if isinstance(config, dict) else None
    if isinstance(pid, int) and _alive(pid):
        return None  # still running (another perpcheck run writing to the same folder)
    counts = data.get("counts") if isinstance(data.get("counts"), dict) else {}
    done = sum(v for v in counts.values() if isinstance(v, int)) if counts else 0
    selected = config.get("checks_selected") if isinstance(config, dict) else None
    of = f" of {selected}" if isinstance(selected, int) else ""
    return (
        f"the last run {latest} did not finish (killed?) after {done}{of} checks; "
        f"'perpcheck report {latest}' renders what it recorded"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def open_in_browser(path: Path, opener: Callable[[str], bool] | None = None) -> bool:
    """Open ``path`` in the user's browser; one line saying so when there is none."""
    open_url = opener or webbrowser.open
    try:
        opened = bool(open_url(path.resolve().as_uri()))
    except webbrowser.Error:
        opened = False
    if not opened:
        print(f"perpcheck: no browser to open {path}; open it yourself", file=sys.stderr)
    return opened


def _compare(args: argparse.Namespace) -> int:
    from harness.report.compare import write_comparison

    html, data = write_comparison(args.run_dirs, args.out)
    print(f"compare: {html}")
    print(f"json: {data}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from harness.report import render_run
    from harness.results import load_run

    run = load_run(args.run_dir)  # a clear error if the folder is not a run
    index = render_run(args.run_dir)
    print(f"report: {index}")
    if run.finished_at is None or not run.complete:
        from harness.results import read_results

        read = read_results(args.run_dir)
        done, selected = len(read.results), run.config.get("checks_selected", "?")
        how = "did not finish" if run.finished_at is None else "was stopped before its end"
        line = f"perpcheck report: the run {how}; {done} of {selected} checks recorded"
        if read.from_shards:
            line += " (merged from its workers' shards)"
        if read.unreadable:
            line += f"; {read.unreadable} unreadable line(s) cut short by the stop, left out"
        print(line)
    if args.open:
        open_in_browser(index)
    return 0


def _venues(args: argparse.Namespace) -> int:
    import textwrap

    from harness.venue import ENTRY_POINT_GROUP, Capability

    checks = _all_checks()
    everything = frozenset(Capability)
    for ep in sorted(entry_points_of(ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            declared = getattr(ep.load(), "capabilities", None)
        except Exception as exc:  # a broken adapter is listed, not fatal
            print(f"{ep.name:18} cannot load {ep.value}: {type(exc).__name__}: {exc}")
            continue
        if not isinstance(declared, frozenset):
            print(f"{ep.name:18} capabilities not declared by {ep.value}")
            continue
        runnable = sum(1 for needs in checks if needs <= declared)
        caps = "all" if declared >= everything else " ".join(sorted(c.value for c in declared))
        line = f"{ep.name:18} up to {runnable:>2} of {len(checks)} checks; can: {caps}"
        print(textwrap.fill(line, 100, subsequent_indent=" " * 19))
    return 0


def entry_points_of(group: str) -> list[Any]:
    from importlib.metadata import entry_points

    return list(entry_points(group=group))


def _all_checks() -> list[frozenset[Any]]:
    """What each installed check needs (imports the ``suites`` package, as a run does)."""
    import importlib
    import pkgutil

    from harness.checks import REGISTRY

    try:
        import suites
    except ImportError:
        return []
    for info in pkgutil.walk_packages(suites.__path__, "suites."):
        importlib.import_module(info.name)
    return [spec.needs for spec in REGISTRY]


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
