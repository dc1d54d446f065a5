"""One run folder for a run spread over pytest-xdist workers (``pytest -n 2``, ``run -n 2``).

The rule: a distributed run is one run, exactly as a serial one would record it.

* The controller chooses the seed and the run folder before any worker starts and hands both to
  each worker (``pytest_configure_node``, ``workerinput``): every check gets the same seed
  (derived from the run seed and its ID) as in a serial run, and no worker opens a folder of its
  own.
* Each worker records its checks into a shard of that folder (``shards/gw0.jsonl``, flushed per
  check, and ``shards/gw0.json``: the checks it collected, in collection order, and its view of
  ``run.json``). Allure results are per-test files, so workers share ``allure-results``.
* The controller learns of each check as its worker reports the check's teardown (its ID, area
  and status ride on the report as ``perpcheck_result``; the rest is in the shard): it keeps
  ``run.json``'s counts current and drives the progress display. When the session ends it
  merges the shards into ``results.jsonl`` in collection order (the serial order, whichever
  worker ran what), writes ``run.json`` and renders ``index.html`` once.
* The merge starts as soon as the last worker has said it finished (every shard is final then),
  in a thread, with the report renderer's imports and templates: xdist waits for the worker
  processes to exit meanwhile (a tenth of a second or two that the run's end would otherwise
  add on top). Any other end (a worker lost, Ctrl-C) merges when the session ends.
* A run killed before the merge keeps its shards; readers merge them the same way
  (:func:`harness.results.read_results`), so ``perpcheck report`` renders it as incomplete.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.errors import ConfigError
from harness.results import (
    SHARDS_DIR,
    CheckResult,
    ResultsRead,
    RunWriter,
    merge_shards,
    shard_metas,
    write_merged,
)

if TYPE_CHECKING:
    from harness.recording import RunSettings, SelectedCheck

__all__ = [
    "RESULT_ATTR",
    "ControllerRecorder",
    "Finished",
    "Shared",
    "attach",
    "from_controller",
    "is_worker_report",
    "recorded_costs",
    "workers_args",
]

#: The attribute of a check's teardown report that tells the controller the check ended.
RESULT_ATTR = "perpcheck_result"
_RUN_DIR = "perpcheck_run_dir"
_SEED = "perpcheck_seed"


@dataclass(frozen=True, slots=True)
class Shared:
    """What an xdist worker takes from its controller."""

    run_dir: Path
    seed: int
    worker: str


def workers_args(workers: str | None) -> list[str]:
    """``-n N`` for pytest-xdist; a clear line when the value is bad or xdist is missing."""
    if workers is None:
        return []
    if workers != "auto" and not (workers.isdigit() and int(workers) >= 0):
        msg = f"-n {workers!r} must be a number of processes or 'auto'"
        raise ConfigError(msg)
    if workers in ("0", "1"):
        return []  # one process: the serial run
    if find_spec("xdist") is None:
        msg = "-n needs pytest-xdist: pip install pytest-xdist"
        raise ConfigError(msg)
    return ["-n", workers]


def from_controller(config: pytest.Config) -> Shared | None:
    """The controller's run folder and seed when this process is an xdist worker, else None."""
    given = getattr(config, "workerinput", None)
    if not isinstance(given, dict) or _RUN_DIR not in given:
        return None
    return Shared(Path(given[_RUN_DIR]), int(given[_SEED]), str(given["workerid"]))


def configure_node(settings: RunSettings, workerinput: dict[str, Any]) -> None:
    """On the controller, before a worker starts: hand it the run's folder and seed.

    Before the first, when defects, a scenario or venue options are given, the venue is opened
    once here: a bad one ends the run with one line instead of every worker failing on its own
    (the venue's name is checked when pytest starts; without any of these, an xdist run of
    other tests pays nothing)."""
    if settings.run_dir is None:
        if settings.defects or settings.scenario or settings.options:
            settings.preflight()
        try:
            settings.reserve_run_dir()
        except pytest.UsageError as exc:  # e.g. --run-id of an existing folder
            pytest.exit(f"perpcheck: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
    workerinput[_RUN_DIR] = str(settings.reserve_run_dir())
    workerinput[_SEED] = settings.seed


@dataclass(frozen=True, slots=True)
class Finished:
    """What the controller learns of a worker's check when it ends (the rest is in the shard)."""

    id: str
    area: str
    status: str


def attach(report: pytest.TestReport, result: CheckResult) -> None:
    """In a worker: put what the controller needs of ``result`` on the check's last report."""
    setattr(report, RESULT_ATTR, [result.id, result.area, result.status.value])


def is_worker_report(report: pytest.TestReport) -> Finished | None:
    """On the controller: the check a worker's teardown report says has ended, if it is one."""
    data = getattr(report, RESULT_ATTR, None)
    if report.when != "teardown" or getattr(report, "worker_id", None) is None:
        return None
    if not isinstance(data, list | tuple) or len(data) != 3:
        return None
    return Finished(*(str(x) for x in data))


@dataclass(slots=True)
class ControllerRecorder:
    """The controller's side of a distributed run: ``run.json``, the merge, the report."""

    settings: RunSettings
    config: pytest.Config
    checks: list[SelectedCheck]
    writer: RunWriter = field(init=False)
    results: list[CheckResult] = field(default_factory=list)
    _workers_down: int = 0
    _worker_lost: bool = False
    _merging: threading.Thread | None = None
    _merge_error: BaseException | None = None
    _merged: tuple[list[dict[str, Any]], ResultsRead] | None = None

    def __post_init__(self) -> None:
        from harness.recording import run_info

        run_dir = self.settings.reserve_run_dir()
        self.writer = RunWriter(
            run_dir, run_info(self.settings, self.config, run_dir, self.expected)
        )

    @property
    def expected(self) -> int:
        return len(self.checks)

    @property
    def run_dir(self) -> Path:
        return self.writer.run_dir

    @classmethod
    def start(cls, settings: RunSettings, config: pytest.Config, worker: str) -> None:
        """When a worker has collected: start the run if it collected checks (its meta file).

        The worker writes that file before it reports its collection (its
        ``pytest_collection_finish`` runs first), so it is there when this runs.
        """
        if settings.recorder is not None or settings.run_dir is None:
            return
        meta = _meta(settings.run_dir, worker)
        if meta is None:
            return  # no check among what the worker collected: no run folder
        checks = [(str(c[0]), str(c[1]), str(c[2])) for c in meta.get("checks", ())]
        from harness.recording import SELECTED_CHECKS, freeze_imports

        freeze_imports()
        recorder = cls(settings, config, checks)
        versions = (meta.get("run") or {}).get("versions") or {}
        recorder.writer.run.versions.update({str(k): str(v) for k, v in versions.items()})
        recorder.writer.write_run()
        settings.recorder = recorder
        config.stash[SELECTED_CHECKS] = checks
        config.pluginmanager.register(recorder, "perpcheck-controller")  # for the reports
        config.hook.pytest_perpcheck_run_started(
            config=config, run_dir=recorder.run_dir, run=recorder.writer.run
        )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        finished = is_worker_report(report)
        if finished is not None:
            self.note(finished)

    def note(self, finished: Finished) -> None:
        """A worker's check ended: count it in ``run.json`` (its line is in the shard)."""
        counts = self.writer.run.counts
        counts[finished.status] = counts.get(finished.status, 0) + 1
        self.writer.write_run()

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """A worker ended. Once every worker has ended cleanly, merge (see the module docstring)."""
        if error is not None:
            self._worker_lost = True  # xdist may start a replacement: merge at the session's end
            return
        self._workers_down += 1
        count = int(getattr(node, "workerinput", {}).get("workercount", 0))
        if self._worker_lost or self._merging is not None or self._workers_down < count:
            return
        self._merging = threading.Thread(target=self._merge_early, name="perpcheck-merge")
        self._merging.start()

    def _merge_early(self) -> None:
        try:
            self._merge()
            from harness.report import render_html

            render_html(self.writer.run, [])  # imports and compiles the templates, writes nothing
        except BaseException as exc:  # re-raised in finish, on pytest's thread
            self._merge_error = exc

    def _merge(self) -> tuple[list[dict[str, Any]], ResultsRead]:
        """The workers' meta files and their merged results (``results.jsonl`` written once)."""
        if self._merged is None:
            metas = shard_metas(self.run_dir)  # read before the merge drops the shards
            merged = merge_shards(self.run_dir)
            write_merged(self.run_dir, merged)
            self._merged = (metas, merged)
        return self._merged

    def finish(self, exitstatus: int) -> None:
        """Merge the shards into ``results.jsonl`` (unless done already), finish ``run.json``,
        render the report."""
        run = self.writer.run
        if self._merging is not None:
            self._merging.join()
            if self._merge_error is not None:
                raise self._merge_error
        metas, merged = self._merge()
        self.results = merged.results
        cleanups: list[Any] = []
        for meta in metas:
            config = (meta.get("run") or {}).get("config") or {}
            cleanups += config.get("cleanup") or []
            if config.get("known_deviations"):
                run.config["known_deviations"] = config["known_deviations"]
        if cleanups:
            order = {c[0]: i for i, c in enumerate(self.checks)}
            cleanups.sort(key=lambda c: order.get(str(c.get("check")), len(order)))
            run.config["cleanup"] = cleanups
        run.counts = {}
        for result in merged.results:
            run.counts[result.status.value] = run.counts.get(result.status.value, 0) + 1
        from harness.recording import end_run

        end_run(self.config, self.writer, self.results, self.expected, exitstatus)

    def summary_lines(self) -> list[str]:
        from harness.progress import end_of_run_lines

        return end_of_run_lines(self.writer.run, self.results, self.run_dir / "index.html")


def recorded_costs(
    config: pytest.Config, durations: Callable[[], Mapping[str, float]]
) -> dict[str, float] | None:
    """On the controller, once every worker has collected: each selected check's node id -> its
    recorded duration (``durations``: check ID -> seconds, from earlier runs), for the
    longest-first schedule (:mod:`harness.scheduling`); ``None`` when no check was selected (a
    run of other tests: xdist's own schedule)."""
    from harness.recording import SELECTED_CHECKS

    checks = config.stash.get(SELECTED_CHECKS, [])
    if not checks:
        return None
    known = durations()
    return {nodeid: known[check] for nodeid, check, _ in checks if check in known}


def _meta(run_dir: Path, worker: str) -> dict[str, Any] | None:
    import json

    path = run_dir / SHARDS_DIR / f"{worker}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("checks") else None
