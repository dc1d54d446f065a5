"""Check results and the files a run writes: ``run.json`` and ``results.jsonl``.

A result is written as one JSON line the moment its check ends (flushed and synced), so a run
killed at any point leaves a readable prefix. Decimals travel as strings, never as JSON numbers.
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
    "CheckResult",
    "Measurement",
    "ResultsWriter",
    "RunInfo",
    "Status",
    "load_results",
    "load_run",
    "to_jsonable",
]

RESULTS_FILE = "results.jsonl"
RUN_FILE = "run.json"


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


class ResultsWriter:
    """Appends results to ``results.jsonl`` and keeps ``run.json`` current."""

    def __init__(self, run_dir: Path, run: RunInfo) -> None:
        self.run_dir = run_dir
        self.run = run
        run_dir.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = (run_dir / RESULTS_FILE).open("a", encoding="utf-8")
        self.write_run()

    def write(self, result: CheckResult) -> None:
        self._fh.write(REDACTOR(json.dumps(result.to_json())) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.run.counts[result.status.value] = self.run.counts.get(result.status.value, 0) + 1
        self.write_run()

    def write_run(self) -> None:
        tmp = self.run_dir / (RUN_FILE + ".tmp")
        tmp.write_text(REDACTOR(json.dumps(self.run.to_json(), indent=2, sort_keys=True)) + "\n")
        tmp.replace(self.run_dir / RUN_FILE)

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


def iter_results(run_dir: Path) -> Iterator[CheckResult]:
    """Results in file order; a truncated last line (killed run) is skipped, not fatal."""
    path = run_dir / RESULTS_FILE
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            stripped = line.strip()
            if not stripped:
                continue
            try:
                yield CheckResult.from_json(json.loads(stripped))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue


def load_results(run_dir: Path) -> list[CheckResult]:
    return list(iter_results(run_dir))
