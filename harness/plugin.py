"""pytest plugin: options, fixtures and result recording for perpcheck checks.

Registered under the ``pytest11`` entry point, so it is active in every pytest run of an
environment where perpcheck is installed; it does nothing (no report folder) unless checks
declared with ``@check`` are collected. Heavy work lives in :mod:`harness.recording` (and, for
runs spread over pytest-xdist workers, :mod:`harness.distributed`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from decimal import Decimal
from types import ModuleType
from typing import Any, NamedTuple

import pytest
import pytest_asyncio

from harness.checks import CheckContext, CheckSpec
from harness.errors import CheckFailed, VenueUnavailable
from harness.venue import Account, Venue, VenueControl

__all__ = ["pytest_addoption", "pytest_configure"]

_SETTINGS = pytest.StashKey["Any"]()
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
_CTX = pytest.StashKey[CheckContext]()
_CHECK_FAILED = pytest.StashKey[bool]()
_DEVIATIONS = pytest.StashKey["Any"]()  # harness.deviations.RunDeviations
_LOOP_POLICY = pytest.StashKey["Any"]()  # the policy in force before pytest_configure


def _spec(item: pytest.Item) -> CheckSpec | None:
    fn = getattr(item, "function", None)
    spec = getattr(fn, "perpcheck_spec", None)
    return spec if isinstance(spec, CheckSpec) else None


class _Option(NamedTuple):
    flags: tuple[str, ...]
    dest: str
    help: str
    metavar: str | None = None
    repeatable: bool = False
    ini_default: str = ""


# Every command-line option has an ini twin named like its dest.
_OPTIONS = (
    _Option(("--venue",), "perpcheck_venue", "venue to check (default: sim)", ini_default="sim"),
    _Option(("--seed",), "perpcheck_seed", "run seed (default: random, recorded in run.json)"),
    _Option(("--defect",), "perpcheck_defects", "inject a named simulator defect", "NAME", True),
    _Option(("--scenario",), "perpcheck_scenario", "simulator scenario to load for each check"),
    _Option(
        ("--report-dir", "--perpcheck-report"),
        "perpcheck_report_dir",
        "where run folders are written (default: ./reports)",
        "DIR",
        ini_default="reports",
    ),
    _Option(("--run-id",), "perpcheck_run_id", "run folder name (default: time, venue, seed)"),
    _Option(
        ("--venue-option",), "perpcheck_venue_options", "venue option KEY=VALUE", "KEY=VALUE", True
    ),
    _Option(
        ("--max-order-notional",),
        "perpcheck_max_order_notional",
        "refuse orders above this notional before sending (default: 5000 on real venues)",
        "USDT",
    ),
    _Option(
        ("--max-run-notional",),
        "perpcheck_max_run_notional",
        "refuse orders once the run's notional reaches this (default: 50000 on real venues)",
        "USDT",
    ),
    _Option(
        ("--event-loop",),
        "perpcheck_event_loop",
        "event loop of the checks: auto (uvloop where installed), uvloop or asyncio",
        "LOOP",
        ini_default="auto",
    ),
    _Option(
        ("--known-deviations",),
        "perpcheck_known_deviations",
        "a known-deviations registry (TOML) to judge the venue by, besides its own",
        "FILE",
        True,
    ),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("perpcheck", "perpcheck conformance checks")
    group.addoption(
        "--allow-mainnet",
        dest="perpcheck_allow_mainnet",
        action="store_true",
        default=False,
        help="allow production endpoints (real money); refused without it",
    )
    parser.addini(
        "perpcheck_allow_mainnet", "allow production endpoints", type="bool", default=False
    )
    group.addoption(
        "--cleanup",
        dest="perpcheck_cleanup",
        action="store_true",
        default=False,
        help="cancel the run's orders and flatten its positions after each check, also on "
        "simulated venues (always done on real ones)",
    )
    parser.addini(
        "perpcheck_cleanup", "clean up after each check on every venue", type="bool", default=False
    )
    for option in _OPTIONS:
        group.addoption(
            *option.flags,
            dest=option.dest,
            action="append" if option.repeatable else "store",
            default=[] if option.repeatable else None,
            metavar=option.metavar,
            help=option.help,
        )
        if option.repeatable:
            parser.addini(option.dest, option.help, type="args")
        else:
            parser.addini(option.dest, option.help, default=option.ini_default)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "perpcheck(id): a perpcheck conformance check")
    config.addinivalue_line("markers", "scenario(name): load a simulator scenario first")
    from harness.allure import AllureResults
    from harness.recording import RunSettings

    _use_event_loop(config)
    config.stash[_SETTINGS] = RunSettings.from_config(config)
    config.pluginmanager.register(AllureResults(config), "perpcheck-allure")


def _use_event_loop(config: pytest.Config) -> None:
    """Install the chosen loop's policy (pytest-asyncio makes every loop from the current one)."""
    import asyncio

    from harness.errors import ConfigError
    from harness.loops import loop_policy

    choice = config.getoption("perpcheck_event_loop") or config.getini("perpcheck_event_loop")
    try:
        policy = loop_policy(str(choice))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_LOOP_POLICY] = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(policy)


def pytest_unconfigure(config: pytest.Config) -> None:
    previous = config.stash.get(_LOOP_POLICY, None)
    if previous is not None:
        import asyncio

        asyncio.set_event_loop_policy(previous)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from harness import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        spec = _spec(item)
        if spec is not None:
            item.extra_keyword_matches.add(spec.id)
            item.extra_keyword_matches.add(spec.area)


@pytest.hookimpl(tryfirst=True)  # an xdist worker: its shard exists before it reports collection
def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:  # listing the checks is not a run: no run folder
        return
    checks = []
    for item in session.items:
        spec = _spec(item)
        if spec is not None:
            checks.append((item.nodeid, spec.id, spec.area))
    if checks:
        session.config.stash[_SETTINGS].start(session.config, checks)
        _known_deviations(session.config, None)  # a bad registry file stops the run here


# --------------------------------------------------------------------------- pytest-xdist
@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Controller: every worker records into the run folder and with the seed chosen here."""
    from harness.distributed import configure_node

    configure_node(node.config.stash[_SETTINGS], node.workerinput)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    from harness.distributed import ControllerRecorder

    settings = node.config.stash[_SETTINGS]
    ControllerRecorder.start(settings, node.config, str(node.workerinput["workerid"]))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Controller: ``--dist load`` (``-n``'s default) hands the checks out one at a time, longest
    first by the durations earlier runs in the report folder recorded (harness.scheduling)."""
    settings = config.stash.get(_SETTINGS, None)
    if settings is None or config.getvalue("dist") != "load":
        return None
    from harness.distributed import recorded_costs
    from harness.scheduling import LongestFirstScheduling, durations_in_background

    durations = durations_in_background(settings.report_dir, settings.venue)  # workers start
    return LongestFirstScheduling(config, log, lambda: recorded_costs(config, durations))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    spec = _spec(item)
    if spec is not None:
        item.stash.setdefault(_REPORTS, {})[report.when] = report
        if call.when == "call" and call.excinfo is not None:
            item.stash[_CHECK_FAILED] = call.excinfo.errisinstance(CheckFailed)
        settings = item.config.stash.get(_SETTINGS, None)
        # The teardown report is the check's last: its result is final here, and pytest has not
        # closed the item yet, so handlers of pytest_perpcheck_check_finished (Allure) can still
        # add to the test they are writing.
        if report.when == "teardown" and settings is not None and settings.recorder is not None:
            result = settings.recorder.record(
                item,
                spec,
                item.stash.get(_REPORTS, {}),
                item.stash.get(_CTX, None),
                item.stash.get(_CHECK_FAILED, False),
            )
            if settings.worker is not None:  # for the xdist controller's count and progress
                from harness.distributed import attach

                attach(report, result)
    return report


# Last: pytest tears the checks' fixtures down first (after Ctrl-C too, which is when the
# ``account`` fixtures clean the venue up), and xdist has stopped its workers, so the run's
# record is complete when it is written.
@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    settings = session.config.stash.get(_SETTINGS, None)
    if settings is not None:
        settings.record_uncleaned()  # accounts whose fixture teardown never ran
    if settings is not None and settings.recorder is not None:
        settings.recorder.finish(int(exitstatus))
        if settings.worker is None:  # the run's end is the controller's, not a worker's
            from harness.report.known_issues import write_allure_known_issues

            write_allure_known_issues(settings.recorder.run_dir)  # if the run has allure-results


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    settings = config.stash.get(_SETTINGS, None)
    if settings is not None and settings.recorder is not None and settings.worker is None:
        for line in settings.recorder.summary_lines():
            terminalreporter.write_line(line)


# --------------------------------------------------------------------------- fixtures
@pytest_asyncio.fixture
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[Venue]:
    """A fresh venue per check (simulators start clean, seeded from the run seed and check ID)."""
    settings = request.config.stash[_SETTINGS]
    spec = _spec(request.node) if isinstance(request.node, pytest.Item) else None
    try:
        opened = await settings.open_venue(spec.id if spec else request.node.nodeid)
    except VenueUnavailable as exc:
        pytest.skip(str(exc))
    try:
        if spec is not None:
            missing = sorted(spec.needs - opened.capabilities)
            if missing:
                pytest.skip(f"{opened.name} lacks {', '.join(m.value for m in missing)}")
        marker = request.node.get_closest_marker("scenario")
        if marker is not None:
            if opened.control is None:
                pytest.skip(f"{opened.name} cannot load scenarios")
            await opened.control.load_scenario(str(marker.args[0]))
        yield opened
    finally:
        if spec is not None and settings.recorder is not None:  # the parameter audit log
            from harness.params import write_audit

            await write_audit(opened, settings.recorder.run_dir / "audit" / f"{spec.id}.jsonl")
        await opened.close()


@pytest_asyncio.fixture
async def account(request: pytest.FixtureRequest, venue: Venue) -> AsyncIterator[Account]:
    """The venue's trading account behind the run's safety wrapper (harness.safety).

    Orders carry the run's client-id prefix and are checked against the notional caps before
    they are sent; after the check, on a real venue (or with ``--cleanup``), the run's open orders
    are cancelled and the positions it opened flattened, and what was cleaned is recorded. That
    holds when the run is interrupted (Ctrl-C) mid-check too: pytest tears the fixtures down
    before the session ends, and an account whose teardown never ran is recorded as not cleaned
    (:func:`pytest_sessionfinish`).
    """
    from harness.safety import SafeAccount

    settings = request.config.stash[_SETTINGS]

    async def mark_of(symbol: str) -> Decimal:
        return (await venue.mark(symbol)).mark_price

    safe = SafeAccount(
        venue.account(),
        prefix=settings.client_prefix(),
        guard=settings.guard_for(venue),
        mark_of=mark_of,
    )
    if settings.cleans(venue):
        settings.live_accounts[request.node.nodeid] = venue.name
    try:
        yield safe
    finally:  # also when the run is interrupted mid-check: pytest tears fixtures down then too
        try:
            if settings.cleans(venue):
                report = await safe.cleanup()
                settings.record_cleanup(request.node.nodeid, report)
        finally:
            settings.live_accounts.pop(request.node.nodeid, None)


@pytest.fixture
def control(venue: Venue) -> VenueControl:
    """The venue's control interface; skips on venues without one."""
    if venue.control is None:
        pytest.skip(f"{venue.name} has no control interface")
    return venue.control


@pytest.fixture
def scenario(venue: Venue) -> Callable[[str], Awaitable[None]]:
    """Load a named scenario into the venue: ``await scenario("fast-move")``.

    Skips on venues that cannot load scenarios (testnets); the ``@pytest.mark.scenario(name)``
    marker does the same before the check starts.
    """
    control = venue.control
    if control is None:
        pytest.skip(f"{venue.name} cannot load scenarios")

    async def load(name: str) -> None:
        await control.load_scenario(name)

    return load


@pytest.fixture
def oracle() -> ModuleType:
    """The independent oracle (``harness.oracle``)."""
    import harness.oracle

    return harness.oracle


@pytest.fixture
def ctx(request: pytest.FixtureRequest, venue: Venue) -> CheckContext:
    """Where the running check records its comparisons and evidence."""
    spec = _spec(request.node) if isinstance(request.node, pytest.Item) else None
    if spec is None:
        msg = "the 'ctx' fixture is only for functions declared with @check"
        raise pytest.UsageError(msg)
    settings = request.config.stash[_SETTINGS]
    context = CheckContext(
        spec=spec,
        venue=venue.name,
        seed=settings.seed,
        deviations=_known_deviations(request.config, venue).for_check(spec.id),
    )
    request.node.stash[_CTX] = context
    return context


def _known_deviations(config: pytest.Config, venue: Venue | None) -> Any:
    """The venue's known-deviations registry merged with ``--known-deviations`` files
    (harness.deviations); without a venue, the files alone. A bad file ends the run."""
    from pathlib import Path

    from harness.checks import REGISTRY
    from harness.deviations import RunDeviations
    from harness.errors import ConfigError

    settings = config.stash[_SETTINGS]
    run = config.stash.get(_DEVIATIONS, None)
    if run is None:
        files = config.getoption("perpcheck_known_deviations") or config.getini(
            "perpcheck_known_deviations"
        )
        run = config.stash[_DEVIATIONS] = RunDeviations(tuple(Path(str(f)) for f in files))
    ids = [spec.id for spec in REGISTRY]
    try:
        if venue is None:
            registry = run.from_files(settings.venue, ids)
        else:
            registry = run.for_venue(venue, ids)
    except ConfigError as exc:
        pytest.exit(f"perpcheck: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
    recorder = settings.recorder
    files = list(registry.origins)
    if (
        recorder is not None
        and files
        and recorder.writer.run.config.get("known_deviations") != files
    ):
        recorder.writer.run.config["known_deviations"] = files
        recorder.writer.write_run()
    return registry
