"""Run settings and the recorder behind the pytest plugin.

The recorder turns each finished check into a :class:`~harness.results.CheckResult`, hands it to
the run's writers (``results.jsonl`` at once, flushed; the HTML report at the end) and keeps
``run.json`` current, so that a run killed at any point leaves a readable partial report.

Under pytest-xdist each worker's recorder writes a shard of the one run folder the controller
chose (:mod:`harness.distributed`); the controller keeps ``run.json`` and merges the shards.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import platform
import secrets
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.checks import CheckContext, CheckSpec
from harness.clock import WallClock, iso_ms
from harness.deviations import documented_deviation
from harness.errors import ConfigError, PerpcheckError, VenueUnavailable
from harness.results import CheckResult, ResultsWriter, RunInfo, RunWriter, ShardWriter, Status
from harness.safety import CleanupReport, NotionalGuard, run_prefix
from harness.venue import Capability, Venue, VenueConfig, available_venues, open_venue

if TYPE_CHECKING:
    from harness.distributed import ControllerRecorder

__all__ = [
    "SELECTED_CHECKS",
    "Recorder",
    "RunSettings",
    "SelectedCheck",
    "derive_seed",
    "freeze_imports",
    "preflight",
]

_WALL = WallClock()

#: A selected check: (pytest node id, check ID, area), in collection order.
SelectedCheck = tuple[str, str, str]
#: The run's selected checks, set before ``pytest_perpcheck_run_started`` (the progress display
#: reads its areas from it; an xdist controller, which collects nothing, gets it from a shard).
SELECTED_CHECKS = pytest.StashKey[list[SelectedCheck]]()


def derive_seed(run_seed: int, check_id: str) -> int:
    """A check's own seed: stable for (run seed, check ID), whatever else runs or in which order."""
    digest = hashlib.sha256(f"{run_seed}:{check_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


DEFAULT_MAX_ORDER_NOTIONAL = Decimal(5_000)
DEFAULT_MAX_RUN_NOTIONAL = Decimal(50_000)


def _decimal_option(config: pytest.Config, name: str) -> Decimal | None:
    raw = _option(config, name)
    if raw in (None, ""):
        return None
    try:
        value = Decimal(str(raw))
    except ArithmeticError:
        value = Decimal("NaN")
    if not value.is_finite() or value <= 0:
        flag = "--" + name.removeprefix("perpcheck_").replace("_", "-")
        msg = f"{flag} {raw!r} must be a positive number of the margin asset"
        raise pytest.UsageError(msg)
    return value


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(name)
    if value in (None, [], ""):
        value = config.getini(name)
    return value


@dataclass(slots=True)
class RunSettings:
    venue: str
    seed: int
    defects: tuple[str, ...]
    scenario: str | None
    report_dir: Path
    run_id: str | None
    options: dict[str, str]
    allow_mainnet: bool = False
    cleanup: bool = False
    max_order_notional: Decimal | None = None
    max_run_notional: Decimal | None = None
    recorder: Recorder | ControllerRecorder | None = None
    _guard: NotionalGuard | None = None
    cleanups: list[dict[str, Any]] = field(default_factory=list)
    run_dir: Path | None = None  # chosen up front: by an xdist controller for its workers
    live_accounts: dict[str, str] = field(default_factory=dict)  # nodeid -> venue, not cleaned
    worker: str | None = None  # the xdist worker id ("gw0") when this process is one

    @classmethod
    def from_config(cls, config: pytest.Config) -> RunSettings:
        venue = str(_option(config, "perpcheck_venue") or "sim")
        venues = available_venues()
        if venue not in venues:
            msg = f"--venue {venue!r} is not installed; choose one of: {', '.join(sorted(venues))}"
            raise pytest.UsageError(msg)
        seed_text = str(_option(config, "perpcheck_seed") or "")
        if seed_text:
            try:
                seed = int(seed_text)
            except ValueError:
                msg = f"--seed {seed_text!r} must be a non-negative integer"
                raise pytest.UsageError(msg) from None
            if seed < 0:
                msg = f"--seed {seed} must be a non-negative integer"
                raise pytest.UsageError(msg)
        else:
            seed = secrets.randbelow(2**31)
        options: dict[str, str] = {}
        for raw in _option(config, "perpcheck_venue_options") or []:
            key, sep, value = str(raw).partition("=")
            if not sep or not key:
                msg = f"--venue-option {raw!r} must look like KEY=VALUE"
                raise pytest.UsageError(msg)
            options[key] = value
        report_dir = Path(str(_option(config, "perpcheck_report_dir") or "reports"))
        caps = {
            name: _decimal_option(config, f"perpcheck_{name}")
            for name in ("max_order_notional", "max_run_notional")
        }
        from harness.distributed import from_controller

        shared = from_controller(config)  # an xdist worker: the controller's seed and folder
        if shared is not None:
            seed = shared.seed
        return cls(
            run_dir=shared.run_dir if shared is not None else None,
            worker=shared.worker if shared is not None else None,
            allow_mainnet=bool(_option(config, "perpcheck_allow_mainnet")),
            cleanup=bool(_option(config, "perpcheck_cleanup")),
            max_order_notional=caps["max_order_notional"],
            max_run_notional=caps["max_run_notional"],
            venue=venue,
            seed=seed,
            defects=tuple(_option(config, "perpcheck_defects") or ()),
            scenario=str(_option(config, "perpcheck_scenario") or "") or None,
            report_dir=report_dir,
            run_id=str(_option(config, "perpcheck_run_id") or "") or None,
            options=options,
        )

    async def open_venue(self, check_id: str) -> Venue:
        try:
            return await open_venue(self.venue, self.venue_config(derive_seed(self.seed, check_id)))
        except VenueUnavailable:
            raise  # not a usage error: the plugin skips the check with its message
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None

    def reproduce(self, check_id: str) -> str:
        parts = [
            "perpcheck",
            "run",
            "--venue",
            self.venue,
            "--seed",
            str(self.seed),
            "-k",
            check_id,
        ]
        for defect in self.defects:
            parts += ["--defect", defect]
        if self.scenario:
            parts += ["--scenario", self.scenario]
        return shlex.join(parts)

    def preflight(self) -> dict[str, str]:
        """Open and close the venue: its versions; a bad venue, defect or scenario ends the run
        with one line (an unavailable venue does not: each check skips with its message)."""
        try:
            return asyncio.run(preflight(self.venue, self.venue_config(self.seed)))
        except VenueUnavailable as exc:
            return {f"{self.venue}:unavailable": str(exc)}
        except PerpcheckError as exc:
            pytest.exit(f"perpcheck: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)

    def reserve_run_dir(self) -> Path:
        """The run folder's path, chosen once (not created: a run without checks leaves none)."""
        if self.run_dir is None:
            self.run_dir = _new_run_dir(self.report_dir, self.run_id, self.venue, self.seed)
        return self.run_dir

    def start(self, config: pytest.Config, checks: list[SelectedCheck]) -> None:
        """Open the venue once before the first check: a bad venue, defect or scenario ends the
        run at once with one clear line, and the venue's versions go into run.json.

        An xdist worker writes its shard; the run's events are the controller's to emit."""
        if self.recorder is not None:
            return
        versions = self.preflight()
        freeze_imports()
        self.recorder = Recorder(self, config, checks)
        self.recorder.writer.run.versions.update(versions)
        self.recorder.writer.write_run()
        config.stash[SELECTED_CHECKS] = checks
        if self.worker is not None:
            return
        config.hook.pytest_perpcheck_run_started(
            config=config, run_dir=self.recorder.run_dir, run=self.recorder.writer.run
        )

    def venue_config(self, seed: int) -> VenueConfig:
        return VenueConfig(
            seed=seed,
            defects=self.defects,
            scenario=self.scenario,
            options=self.options,
            allow_mainnet=self.allow_mainnet,
        )

    @staticmethod
    def simulated(venue: Venue) -> bool:
        """A venue whose clock the harness drives is a throwaway simulator."""
        return Capability.CONTROL_CLOCK in venue.capabilities

    def client_prefix(self) -> str:
        run_id = self.recorder.run_dir.name if self.recorder is not None else (self.run_id or "")
        return run_prefix(run_id or f"s{self.seed}")

    def guard_for(self, venue: Venue) -> NotionalGuard:
        """The run's notional caps: none on a simulator unless given, 5000/50000 on real venues."""
        if self.simulated(venue):
            return NotionalGuard(per_order=self.max_order_notional, per_run=self.max_run_notional)
        if self._guard is None:
            self._guard = NotionalGuard(
                per_order=self.max_order_notional or DEFAULT_MAX_ORDER_NOTIONAL,
                per_run=self.max_run_notional or DEFAULT_MAX_RUN_NOTIONAL,
            )
        return self._guard

    def cleans(self, venue: Venue) -> bool:
        return self.cleanup or not self.simulated(venue)

    def record_uncleaned(self) -> None:
        """At the session's end: an ``account`` whose teardown never ran (a crash inside pytest
        itself) may have left orders and positions; say so in run.json rather than nothing."""
        for nodeid, venue in sorted(self.live_accounts.items()):
            msg = f"{venue}: the account's cleanup never ran; check the venue for orders"
            self.record_cleanup(nodeid, CleanupReport(errors=[msg]))
        self.live_accounts.clear()

    def record_cleanup(self, nodeid: str, report: CleanupReport) -> None:
        if report.empty:
            return
        entry = {
            "check": nodeid,
            "cancelled": report.cancelled,
            "flattened": [list(f) for f in report.flattened],
            "errors": report.errors,
        }
        self.cleanups.append(entry)
        if self.recorder is not None:
            self.recorder.writer.run.config["cleanup"] = self.cleanups
            self.recorder.writer.write_run()


def freeze_imports() -> None:
    """Before the first check: move everything alive now (modules, classes, the collected
    checks: what lives until the process ends) out of the garbage collector's sight.

    Why: every full collection walks every tracked object, and pytest runs two at the end of a
    session (its unraisable-exception plugin), as the interpreter does on its way out: in each
    xdist worker that is ~0.1 s on the way to the run's end. What is frozen lives on to the end
    anyway (a stray cycle of start-up garbage is kept: bytes, not worth a collection here); the
    checks' own objects are collected as before. Once per process: a process that runs several
    sessions (pytester's in-process runs) does not keep freezing what its earlier ones left."""
    import gc

    if gc.get_freeze_count() == 0:
        gc.freeze()


async def preflight(name: str, config: VenueConfig) -> dict[str, str]:
    """Open and close the venue once; returns its versions. Raises on a bad configuration."""
    venue = await open_venue(name, config)
    try:
        return {f"{venue.name}:{k}": v for k, v in venue.versions.items()}
    finally:
        await venue.close()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    from harness.loops import loop_name

    out = {"python": platform.python_version(), "event loop": loop_name()}
    for dist in ("perpcheck", "pytest", "ccxt"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _new_run_dir(base: Path, run_id: str | None, venue: str, seed: int) -> Path:
    if run_id:
        path = base / run_id
        # allure-pytest creates --alluredir (perpcheck run puts it inside) before the run starts
        if path.exists() and any(p.name != "allure-results" for p in path.iterdir()):
            msg = f"run folder {path} already exists; choose another --run-id"
            raise pytest.UsageError(msg)
        return path
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = f"{stamp}-{venue}-s{seed}"
    path = base / stem
    n = 1
    while path.exists():
        n += 1
        path = base / f"{stem}-{n}"
    return path


def run_info(settings: RunSettings, config: pytest.Config, run_dir: Path, expected: int) -> RunInfo:
    """A new run's ``run.json`` content."""
    s = settings
    return RunInfo(
        run_id=run_dir.name,
        venue=s.venue,
        seed=s.seed,
        defects=list(s.defects),
        versions=_versions(),
        config={
            "scenario": s.scenario,
            "venue_options": s.options,
            "args": list(config.invocation_params.args),
            "checks_selected": expected,
            "pid": os.getpid(),  # tells a killed run from one still running
        },
        started_at=iso_ms(_WALL.now_ms()),
    )


@dataclass(slots=True)
class Recorder:
    """Records each check as it ends: ``results.jsonl`` (serial) or the worker's shard."""

    settings: RunSettings
    config: pytest.Config
    checks: list[SelectedCheck]
    writer: ResultsWriter | ShardWriter = field(init=False)
    results: list[CheckResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        s = self.settings
        run_dir = s.run_dir or _new_run_dir(s.report_dir, s.run_id, s.venue, s.seed)
        info = run_info(s, self.config, run_dir, self.expected)
        if s.worker is not None:
            self.writer = ShardWriter(run_dir, s.worker, info, self.checks)
        else:
            self.writer = ResultsWriter(run_dir, info)

    @property
    def expected(self) -> int:
        return len(self.checks)

    @property
    def run_dir(self) -> Path:
        return self.writer.run_dir

    def record(
        self,
        item: pytest.Item,
        spec: CheckSpec,
        reports: dict[str, pytest.TestReport],
        ctx: CheckContext | None,
        check_failed: bool,
    ) -> CheckResult:
        status, message = _status(reports, check_failed)
        documented = documented_deviation(status, ctx)  # judged by the venue's documented rule
        if documented is not None:
            status, message = Status.DEVIATION, documented.message
        headline = ctx.headline if ctx is not None else None
        duration = sum(r.duration for r in reports.values())
        finished = _WALL.now_ms()
        result = CheckResult(
            id=spec.id,
            area=spec.area,
            title=spec.title,
            topic=spec.topic,
            source=spec.source,
            venue=self.settings.venue,
            status=status,
            expected=headline.expected if headline else None,
            observed=headline.observed if headline else None,
            tolerance=headline.tolerance if headline else None,
            deviation=headline.deviation if headline else None,
            unit=headline.unit if headline else "",
            message=message,
            measurements=tuple(ctx.measurements) if ctx is not None else (),
            notes=tuple(ctx.notes) if ctx is not None else (),
            evidence=dict(ctx.evidence) if ctx is not None else {},
            seed=self.settings.seed,
            defects=self.settings.defects,
            duration_s=round(duration, 3),
            started_at=iso_ms(finished - int(duration * 1000)),
            finished_at=iso_ms(finished),
            reproduce=self.settings.reproduce(spec.id),
            nodeid=item.nodeid,
            deviation_note=documented.note if documented is not None else "",
            known_deviations=documented.records() if documented is not None else (),
        )
        self.results.append(result)
        self.writer.write(result)
        self.config.hook.pytest_perpcheck_check_finished(item=item, result=result)
        return result

    def finish(self, exitstatus: int) -> None:
        if isinstance(self.writer, ShardWriter):  # an xdist worker: the controller ends the run
            self.writer.write_run()
            self.writer.close()
            return
        end_run(self.config, self.writer, self.results, self.expected, exitstatus)

    def summary_lines(self) -> list[str]:
        from harness.progress import end_of_run_lines

        return end_of_run_lines(self.writer.run, self.results, self.run_dir / "index.html")


def _status(reports: dict[str, pytest.TestReport], check_failed: bool) -> tuple[Status, str]:
    setup, call, teardown = reports.get("setup"), reports.get("call"), reports.get("teardown")
    for report in (setup, call):
        if report is not None and report.skipped:
            return Status.SKIPPED, _skip_reason(report)
    if setup is not None and setup.failed:
        return Status.ERROR, f"setup failed: {_crash(setup)}"
    if call is not None and call.failed:
        if check_failed:
            return Status.FAILED, _crash(call).split(": ", 1)[-1]
        return Status.ERROR, _crash(call)
    if teardown is not None and teardown.failed:
        return Status.ERROR, f"teardown failed: {_crash(teardown)}"
    if call is None:
        return Status.ERROR, "the check did not run"
    return Status.PASSED, ""


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _crash(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and crash.message:
        return str(crash.message).splitlines()[0]
    return str(report.longrepr).strip().splitlines()[-1] if report.longrepr else "failed"


def end_run(
    config: pytest.Config,
    writer: RunWriter,
    results: list[CheckResult],
    expected: int,
    exitstatus: int,
) -> None:
    """Finish ``run.json`` (complete only when every selected check recorded a result and pytest
    ended normally), close the writer, render the report and tell the plugins (serial runs and an
    xdist controller alike)."""
    run = writer.run
    run.finished_at = iso_ms(_WALL.now_ms())
    run.exit_status = exitstatus
    run.complete = len(results) >= expected and exitstatus in (0, 1)
    writer.write_run()
    writer.close()
    from harness.report import render_run

    render_run(writer.run_dir)
    config.hook.pytest_perpcheck_run_finished(
        config=config, run_dir=writer.run_dir, run=run, results=tuple(results)
    )
