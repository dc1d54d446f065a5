"""Longest first: how a run spread over pytest-xdist workers hands out its checks (``-n 2``).

The rule: the controller hands the checks out one at a time, to whichever worker is about to
run out of work, longest first when earlier runs in the report folder recorded how long each
check took, else in collection order. A run of anything but perpcheck checks keeps xdist's
``--dist load``.

Why: a distributed run ends when its last worker ends. xdist's ``load`` hands out checks in
collection order, in chunks (a quarter of a worker's share at first), so the few long checks
(the funding checks that run days of virtual time, next to each other in one file) can land on
one worker, or start last, while the other worker idles: an idle second at the end costs a
two-worker run as much as two seconds of checks. Handed out one at a time, long checks next to
each other go to different workers; started first, the long checks spread over the workers and
the short ones fill the gaps, so the workers end within about one short check of each other
(greedy longest-processing-time).

A worker holds three checks: the one it runs, the next (pytest needs it to run one) and one
more, so that it never waits for the controller between two checks.

What it never changes: which checks run, their seeds (derived from the run seed and the check's
ID, not from the order), or ``results.jsonl``, which the controller writes in collection order
whichever worker ran what (:mod:`harness.distributed`).

Durations come from the latest finished runs in the report folder (``results.jsonl``'s
``duration_s``), those on the same venue first; a check no run recorded counts as the mean of
those that were. A report folder that recorded none (a fresh clone, a CI job's first run) goes
by the durations the ``suites`` package ships (``suites/durations.json``: one serial ``sim`` run
of the suites' own checks; relative costs are what matter, and they carry over across venues and
machines), so a first run is handed out longest first too. Refresh that table after adding or
changing checks: ``python -m harness.scheduling reports/<a serial sim run>`` (a test holds it
to the suites' check IDs). Only ``--dist load`` (what ``-n`` means by default) is replaced: any
other ``--dist`` the user asks for is xdist's own.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from xdist.scheduler import LoadScheduling  # type: ignore[import-untyped]

from harness.results import RESULTS_FILE, RUN_FILE

__all__ = [
    "HISTORY_RUNS",
    "PACKAGED_DURATIONS",
    "LongestFirstScheduling",
    "durations_in_background",
    "longest_first_order",
    "packaged_durations",
    "recorded_durations",
    "write_packaged_durations",
]

#: How many earlier runs are read for durations (the newest; a check takes the newest figure).
HISTORY_RUNS = 5
#: Items a worker holds: the one it runs, the next (pytest needs the next item to run one) and
#: one more, so it does not wait for the controller's answer between two checks.
_QUEUE = 3
#: The table of the suites' own check durations, in the ``suites`` package (module docstring).
PACKAGED_DURATIONS = "durations.json"


def recorded_durations(
    report_dir: Path, venue: str, *, runs: int = HISTORY_RUNS
) -> dict[str, float]:
    """Each check ID's duration in seconds as the newest finished runs in ``report_dir`` recorded
    it: runs on ``venue`` first (newest first), then runs on other venues (relative costs carry
    over). Unreadable folders and lines are skipped: a hint, never an error.

    Only the newest folders are opened (by their ``results.jsonl``'s time): a report folder
    holding hundreds of runs costs a directory listing, not hundreds of reads."""
    if not report_dir.is_dir():
        return {}
    newest: list[tuple[float, Path]] = []
    for run_dir in report_dir.iterdir():
        try:
            newest.append((-(run_dir / RESULTS_FILE).stat().st_mtime, run_dir))
        except OSError:
            continue
    same: list[Path] = []
    other: list[Path] = []
    for _, run_dir in sorted(newest)[: 4 * runs]:
        try:
            info = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and info.get("finished_at"):
            (same if info.get("venue") == venue else other).append(run_dir)
    out: dict[str, float] = {}
    for run_dir in [*same, *other][:runs]:
        try:
            lines = (run_dir / RESULTS_FILE).read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                row = json.loads(line)
                check_id, seconds = str(row["id"]), float(row["duration_s"])
            except (ValueError, KeyError, TypeError):
                continue
            if check_id not in out and seconds >= 0:
                out[check_id] = seconds
    return out


def packaged_durations(package: str = "suites") -> dict[str, float]:
    """Check ID -> seconds from the table ``package`` ships (``durations.json``), for a report
    folder that recorded no run: empty when the package or the table is missing or unreadable
    (a hint, never an error)."""
    try:
        text = (resources.files(package) / PACKAGED_DURATIONS).read_text(encoding="utf-8")
        table = json.loads(text)["durations_s"]
    except (ImportError, OSError, ValueError, KeyError, TypeError):
        return {}
    if not isinstance(table, dict):
        return {}
    out: dict[str, float] = {}
    for check_id, seconds in table.items():
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
            out[str(check_id)] = float(seconds)
    return out


def write_packaged_durations(run_dir: Path, target: Path) -> dict[str, float]:
    """Write the table :func:`packaged_durations` reads from one finished run's results (its
    checks' ``duration_s``, to the millisecond, by check ID); returns what it wrote.

    Raises:
        ValueError: ``run_dir`` is not a finished run, recorded no check or has a line that is
            not a check's result.
        OSError: ``target`` cannot be written.
    """
    try:
        info = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
        lines = (run_dir / RESULTS_FILE).read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError) as exc:
        msg = f"{run_dir} is not a perpcheck run folder ({exc})"
        raise ValueError(msg) from None
    if not isinstance(info, dict) or not info.get("finished_at"):
        msg = f"{run_dir} is not a finished run"
        raise ValueError(msg)
    durations: dict[str, float] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            durations[str(row["id"])] = round(float(row["duration_s"]), 3)
        except (ValueError, KeyError, TypeError):
            msg = f"{run_dir / RESULTS_FILE}, line {number}: not a check's result with a duration"
            raise ValueError(msg) from None
    if not durations:
        msg = f"{run_dir} recorded no check"
        raise ValueError(msg)
    table = {
        "about": (
            "Each check's duration in one serial run: how a pytest-xdist run hands the checks "
            "out (longest first) when its report folder recorded no run yet. Written by "
            "'python -m harness.scheduling RUN_DIR' (harness/scheduling.py)."
        ),
        "venue": info.get("venue"),
        "seed": info.get("seed"),
        "durations_s": dict(sorted(durations.items())),
    }
    target.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    return durations


def durations_in_background(report_dir: Path, venue: str) -> Callable[[], dict[str, float]]:
    """Start reading :func:`recorded_durations` in a thread (:func:`packaged_durations` when the
    folder recorded none); the returned function waits for it.

    The controller starts this while its workers start up (it is idle then), so the reading is
    not on the way from the last worker's collection to the first check."""
    found: dict[str, float] = {}
    errors: list[BaseException] = []

    def read() -> None:
        try:
            found.update(recorded_durations(report_dir, venue) or packaged_durations())
        except BaseException as exc:  # re-raised by the caller, on pytest's thread
            errors.append(exc)

    thread = threading.Thread(target=read, name="perpcheck-durations", daemon=True)
    thread.start()

    def result() -> dict[str, float]:
        thread.join()
        if errors:
            raise errors[0]
        return found

    return result


def longest_first_order(collection: Sequence[str], cost: Mapping[str, float]) -> list[int]:
    """Indices into ``collection``, longest expected duration first (ties: collection order).
    A node id without a cost counts as the mean of those with one; none known: collection
    order."""
    known = [cost[n] for n in collection if n in cost]
    if not known:
        return list(range(len(collection)))
    default = statistics.fmean(known)
    return sorted(range(len(collection)), key=lambda i: -cost.get(collection[i], default))


class LongestFirstScheduling(LoadScheduling):  # type: ignore[misc]
    """xdist's ``load`` scheduler with the checks handed out one at a time, longest first (see
    the module docstring). ``costs`` is called once, when every worker has collected: node id
    -> expected seconds (empty: collection order), or ``None`` for xdist's ``load`` unchanged."""

    # xdist's attributes this class uses (the base class is untyped)
    collection: list[str] | None
    pending: list[int]
    node2collection: dict[Any, list[str]]
    node2pending: dict[Any, list[int]]

    def __init__(
        self, config: Any, log: Any, costs: Callable[[], Mapping[str, float] | None]
    ) -> None:
        super().__init__(config, log)
        self._costs = costs
        self.longest_first = False  # decided when the collection is complete

    def schedule(self) -> None:
        collections = list(self.node2collection.values())
        if self.collection is not None or any(c != collections[0] for c in collections[1:]):
            super().schedule()  # a node added later, or collections that differ: xdist's way
            return
        collection = list(collections[0])
        cost = self._costs() if collection else None
        if cost is None:
            super().schedule()
            return
        self.longest_first = True
        self.collection = collection
        self.pending[:] = longest_first_order(collection, cost)
        for _ in range(_QUEUE):  # round robin: the longest checks start on different workers
            for node in self.nodes:
                self._send_tests(node, 1)
        if not self.pending:
            for node in self.nodes:
                node.shutdown()

    def check_schedule(self, node: Any, duration: float = 0) -> None:
        if not self.longest_first:
            super().check_schedule(node, duration)
            return
        if node.shutting_down:
            return
        if self.pending:
            missing = _QUEUE - len(self.node2pending[node])
            if missing > 0:
                self._send_tests(node, missing)
        else:
            node.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.scheduling RUN_DIR [--out FILE]``: refresh the packaged table."""
    parser = argparse.ArgumentParser(
        prog="python -m harness.scheduling",
        description="Write suites/durations.json (the first run's schedule) from a serial run.",
    )
    parser.add_argument("run_dir", type=Path, help="a finished serial run's folder")
    default = Path(str(resources.files("suites") / PACKAGED_DURATIONS))
    parser.add_argument("--out", type=Path, default=default, help=f"default: {default}")
    args = parser.parse_args(argv)
    try:
        written = write_packaged_durations(args.run_dir, args.out)
    except (ValueError, OSError) as exc:
        print(f"harness.scheduling: {exc}", file=sys.stderr)  # noqa: T201 - a command line
        return 2
    print(f"{args.out}: {len(written)} checks, {sum(written.values()):.1f} s")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
