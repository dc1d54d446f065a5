"""Shared helpers of the benchmark scripts: target lines, profiles, memory figures.

Every benchmark prints ``name: measured (target)`` lines and exits 1 when a target is missed.
Profiles (``--profile``) are cProfile dumps of the measured hot path, written to
``benchmarks/out/<name>.prof`` with a text summary next to them (``<name>.txt``).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import resource
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

__all__ = ["OUT", "Target", "peak_rss_mib", "profiled", "report"]

OUT = Path(__file__).resolve().parent / "out"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Target:
    """One measured figure against its target."""

    name: str
    measured: str
    target: str
    met: bool | None  # None: informational, no target

    def line(self) -> str:
        verdict = "" if self.met is None else ("  ok" if self.met else "  MISSED")
        return f"{self.name}: {self.measured} ({self.target}){verdict}"


def report(targets: list[Target]) -> int:
    """Print every line; the exit status: 1 when a target was missed, else 0."""
    for t in targets:
        print(t.line(), flush=True)
    return 1 if any(t.met is False for t in targets) else 0


def profiled(name: str, enabled: bool, fn: Callable[[], T]) -> T:
    """Run ``fn``; with ``enabled``, under cProfile, saving ``OUT/<name>.prof`` and ``.txt``."""
    if not enabled:
        return fn()
    OUT.mkdir(parents=True, exist_ok=True)
    prof = cProfile.Profile()
    result = prof.runcall(fn)
    prof.dump_stats(OUT / f"{name}.prof")
    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text)
    stats.sort_stats("tottime").print_stats(40)
    stats.sort_stats("cumulative").print_stats(40)
    (OUT / f"{name}.txt").write_text(text.getvalue(), encoding="utf-8")
    print(f"profile: {OUT / f'{name}.prof'} (summary {OUT / f'{name}.txt'})", file=sys.stderr)
    return result


def peak_rss_mib() -> float:
    """The process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
