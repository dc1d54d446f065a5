"""Check results and the files a run writes: ``run.json`` and ``results.jsonl``.

A result is written as one JSON line the moment its check ends (flushed and synced), so a run
killed at any point leaves a readable prefix. Decimals travel as strings, never as JSON numbers.

A run spread over pytest-xdist workers writes one *shard* per worker (``shards/gw0.jsonl``, with
``shards/gw0.json`` naming the checks it collected, in collection order); the controller merges
them into ``results.jsonl`` in collection order when the run ends. A run killed before that
keeps its shards, and every reader here merges them the same way (:func:`read_results`).
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from harness.errors import ConfigError
from harness.safety import REDACTOR

__all__ = [
    "RESULTS_FILE",
    "RUN_FILE",
    "SHARDS_DIR",
    "CheckResult",
    "Measurement",
    "ResultsRead",
    "ResultsWriter",
    "RunInfo",
    "RunWriter",
    "ShardWriter",
    "Status",
    "load_results",
    "load_run",
    "merge_shards",
    "read_results",
    "shard_files",
    "shard_metas",
    "to_jsonable",
    "write_merged",
]

RESULTS_FILE = "results.jsonl"
RUN_FILE = "run.json"
SHARDS_DIR = "shards"


class Status(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR = "error"
    DEVIATION = "deviation"  # failed the reference only where the venue documents its own rule


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    """One comparison a check made: expected vs observed within a tolerance."""

    label: str
    expected: str
    observed: str
    tolerance: str | None
    deviation: str | None
    unit: str
    passed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """One line of ``results.jsonl``."""

    id: str
    area: str
    title: str
    topic: str
    source: str
    venue: str
    status: Status
    expected: str | None = None
    observed: str | None = None
    tolerance: str | None = None
    deviation: str | None = None
    unit: str = ""
    message: str = ""
    measurements: tuple[Measurement, ...] = ()
    notes: tuple[str, ...] = ()
    evidence: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    defects: tuple[str, ...] = ()
    duration_s: float = 0.0
    started_at: str = ""
    finished_at: str = ""
    reproduce: str = ""
    nodeid: str = ""
    deviation_note: str = ""  # status deviation: the venue's documented rule(s) and source(s)
    known_deviations: tuple[Mapping[str, str], ...] = ()  # the registry entries applied

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return to_jsonable(data)  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CheckResult:
        known = set(cls.__dataclass_fields__)
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["status"] = Status(kwargs["status"])
        kwargs["measurements"] = tuple(Measurement(**m) for m in kwargs.get("measurements", ()))
        kwargs["defects"] = tuple(kwargs.get("defects", ()))
        kwargs["notes"] = tuple(kwargs.get("notes", ()))
        kwargs["known_deviations"] = tuple(dict(d) for d in kwargs.get("known_deviations", ()))
        return cls(**kwargs)


@dataclass(slots=True, kw_only=True)
class RunInfo:
    """``run.json``: what was run, where, with which seed, and how it ended."""

    run_id: str
    venue: str
    seed: int
    defects: list[str]
    versions: dict[str, str]
    config: dict[str, Any]
    started_at: str
    finished_at: str | None = None
    complete: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    exit_status: int | None = None

    def to_json(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))  # type: ignore[no-any-return]


def to_jsonable(value: Any) -> Any:
    """Decimals to strings, enums to values, tuples to lists, recursively."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value


class RunWriter:
    """Keeps ``run.json`` current (an xdist controller's writer: its results are in shards)."""

    def __init__(self, run_dir: Path, run: RunInfo) -> None:
        self.run_dir = run_dir
        self.run = run
        run_dir.mkdir(parents=True, exist_ok=True)
        self.write_run()

    def write_run(self) -> None:
        _write_json(self.run_dir / RUN_FILE, self.run.to_json())

    def close(self) -> None:
        """Nothing to close: ``run.json`` is replaced whole at every write."""


class ResultsWriter(RunWriter):
    """Appends results to ``results.jsonl`` and keeps ``run.json`` current."""

    def __init__(self, run_dir: Path, run: RunInfo) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = (run_dir / RESULTS_FILE).open("a", encoding="utf-8")
        super().__init__(run_dir, run)

    def write(self, result: CheckResult) -> None:
        _append(self._fh, result)
        self.run.counts[result.status.value] = self.run.counts.get(result.status.value, 0) + 1
        self.write_run()

    def close(self) -> None:
        self._fh.close()


def _append(fh: IO[str], result: CheckResult) -> None:
    """One line, written with one call and synced: what a kill leaves is whole lines (a kill
    inside the system call may still cut the last one short; readers skip it and say so)."""
    fh.write(REDACTOR(json.dumps(result.to_json())) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


def _write_json(path: Path, data: Any) -> None:
    """Replace ``path`` atomically: a reader sees the old file or the new one, never half."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(REDACTOR(json.dumps(data, indent=2, sort_keys=True)) + "\n", encoding="utf-8")
    tmp.replace(path)


class ShardWriter:
    """One xdist worker's part of a run: ``shards/<worker>.jsonl`` and ``shards/<worker>.json``.

    The shard file takes result lines exactly as ``results.jsonl`` would (flushed and synced);
    the meta file holds the checks the worker collected (nodeid, ID, area, in collection order,
    which the merge sorts by) and the worker's view of ``run.json`` (versions, cleanups, known
    deviations), which the controller folds into the run's. ``run.json`` is the controller's.
    """

    def __init__(
        self, run_dir: Path, worker: str, run: RunInfo, checks: list[tuple[str, str, str]]
    ) -> None:
        self.run_dir = run_dir
        self.run = run
        self.worker = worker
        self.checks = checks
        shards = run_dir / SHARDS_DIR
        shards.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = (shards / f"{worker}.jsonl").open("a", encoding="utf-8")
        self.write_run()

    def write(self, result: CheckResult) -> None:
        _append(self._fh, result)
        self.run.counts[result.status.value] = self.run.counts.get(result.status.value, 0) + 1

    def write_run(self) -> None:
        meta = {"checks": [list(c) for c in self.checks], "run": self.run.to_json()}
        _write_json(self.run_dir / SHARDS_DIR / f"{self.worker}.json", meta)

    def close(self) -> None:
        self._fh.close()


def load_run(run_dir: Path) -> RunInfo:
    """Read ``run.json``; a clear :class:`ConfigError` if the folder is not a run."""
    path = run_dir / RUN_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"{run_dir} is not a perpcheck run folder (no {RUN_FILE})"
        raise ConfigError(msg) from None
    except json.JSONDecodeError as exc:
        msg = f"{path} is not valid JSON: {exc}"
        raise ConfigError(msg) from None
    known = set(RunInfo.__dataclass_fields__)
    return RunInfo(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True, slots=True)
class ResultsRead:
    """What :func:`read_results` found: the results, how many lines could not be read (a line
    cut short by a kill), and whether they came from unmerged xdist shards (a killed run)."""

    results: list[CheckResult]
    lines: list[str]  # each result's line as written (redacted JSON), for merging verbatim
    unreadable: int = 0
    from_shards: bool = False


def _read_lines(path: Path) -> tuple[list[tuple[str, CheckResult]], int]:
    rows: list[tuple[str, CheckResult]] = []
    unreadable = 0
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            stripped = line.strip()
            if not stripped:
                continue
            try:
                rows.append((stripped, CheckResult.from_json(json.loads(stripped))))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                unreadable += 1
    return rows, unreadable


def shard_files(run_dir: Path) -> list[Path]:
    """The run's result shards (``shards/*.jsonl``), in worker order (gw0, gw1, …, gw10)."""
    shards = run_dir / SHARDS_DIR
    if not shards.is_dir():
        return []
    found = [p for p in shards.iterdir() if p.suffix == ".jsonl"]
    return sorted(found, key=lambda p: (len(p.stem), p.stem))


def shard_metas(run_dir: Path) -> list[dict[str, Any]]:
    """Each worker's meta file (``shards/<worker>.json``) that parses, in worker order."""
    shards = run_dir / SHARDS_DIR
    metas = []
    paths = sorted(shards.glob("*.json"), key=lambda p: (len(p.stem), p.stem))
    for path in paths if shards.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict):
            metas.append(data)
    return metas


def merge_shards(run_dir: Path) -> ResultsRead:
    """The shards' results in collection order (as a serial run writes them), whatever worker
    ran each check and whenever it ended; checks outside the collected list go last."""
    order: dict[str, int] = {}
    for meta in shard_metas(run_dir):
        for i, check in enumerate(meta.get("checks") or ()):
            if isinstance(check, list) and check:
                order.setdefault(str(check[0]), i)
    rows: list[tuple[tuple[int, int, int], str, CheckResult]] = []
    unreadable = 0
    for w, path in enumerate(shard_files(run_dir)):
        read, bad = _read_lines(path)
        unreadable += bad
        for n, (line, result) in enumerate(read):
            rows.append(((order.get(result.nodeid, len(order)), w, n), line, result))
    rows.sort(key=lambda row: row[0])
    return ResultsRead(
        results=[r for _, _, r in rows],
        lines=[line for _, line, _ in rows],
        unreadable=unreadable,
        from_shards=True,
    )


def read_results(run_dir: Path) -> ResultsRead:
    """The run's results: ``results.jsonl`` in file order or, when a distributed run was killed
    before merging, its shards merged. Unreadable lines (cut short by a kill) are skipped and
    counted, never fatal."""
    path = run_dir / RESULTS_FILE
    if path.exists():
        rows, unreadable = _read_lines(path)
        return ResultsRead([r for _, r in rows], [line for line, _ in rows], unreadable)
    if shard_files(run_dir):
        return merge_shards(run_dir)
    return ResultsRead([], [])


def iter_results(run_dir: Path) -> Iterator[CheckResult]:
    """Results in run order (see :func:`read_results`)."""
    yield from read_results(run_dir).results


def load_results(run_dir: Path) -> list[CheckResult]:
    return read_results(run_dir).results


def write_merged(run_dir: Path, read: ResultsRead) -> None:
    """Write ``results.jsonl`` from merged shards at once (atomically), then drop the shards:
    the finished folder looks like a serial run's."""
    path = run_dir / RESULTS_FILE
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.writelines(line + "\n" for line in read.lines)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    shards = run_dir / SHARDS_DIR
    for part in [*shards.glob("*.jsonl"), *shards.glob("*.json")] if shards.is_dir() else []:
        part.unlink(missing_ok=True)
    if shards.is_dir() and not any(shards.iterdir()):
        shards.rmdir()
