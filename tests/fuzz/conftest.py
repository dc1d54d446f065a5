"""Fuzzing fixtures: one server for the session, the request counts, and their summary line."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, Phase, settings

from harness.venue import VenueConfig
from tests.fuzz.invariants import assert_engine_consistent
from tests.fuzz.kit import FuzzServer

SEED = 20_260_410
#: Multiplies every fuzz test's example count (a longer hunt: PERPCHECK_FUZZ_SCALE=10).
SCALE = float(os.environ.get("PERPCHECK_FUZZ_SCALE", "1"))


def scaled(examples: int) -> int:
    return max(1, round(examples * SCALE))


def server_settings(
    examples: int,
    health_checks: tuple[HealthCheck, ...] = (HealthCheck.too_slow, HealthCheck.data_too_large),
) -> settings:
    """Hypothesis settings for a test against the session's server: ``examples`` scaled, no
    deadline, no shrinking (the server keeps state: shrinking cannot replay an example)."""
    return settings(
        max_examples=scaled(examples),
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(health_checks),
    )


DEPOSITS = Decimal(10_000)  # the server's first account (VenueConfig's default balance)


@dataclass(slots=True)
class FuzzStats:
    """What the fuzz tests sent and got, by source (printed at the end of the session)."""

    sent: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    checked: dict[str, int] = field(default_factory=dict)

    def count(self, source: str, status: int, code: int | None) -> None:
        self.sent[source] += 1
        self.statuses[status] += 1
        if code is not None:
            self.codes[code] += 1

    def line(self) -> str:
        total = sum(self.sent.values())
        by_source = ", ".join(f"{name} {n:,}" for name, n in sorted(self.sent.items()))
        server_errors = sum(n for status, n in self.statuses.items() if status >= 500)
        statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(self.statuses.items()))
        checked = ", ".join(f"{k} {v:,}" for k, v in self.checked.items())
        return (
            f"fuzz: {total:,} requests ({by_source}) in {self.seconds:.1f} s; "
            f"{server_errors} answered 5xx; statuses {{{statuses}}}; "
            f"{len(self.codes)} distinct codes; invariants held over {checked or 'nothing'}"
        )


STATS = FuzzStats()


@pytest.fixture(scope="session")
def fuzz_stats() -> FuzzStats:
    return STATS


@pytest.fixture(scope="session")
def fuzz_server() -> Iterator[FuzzServer]:
    server = FuzzServer(VenueConfig(seed=SEED))
    try:
        yield server
    finally:
        server.close()


def check_invariants(server: FuzzServer) -> None:
    """The engine's invariants, on the server's loop (tests/fuzz/invariants.py)."""
    engine = server.handle.engine
    STATS.checked = server.call(lambda: assert_engine_consistent(engine, DEPOSITS, server.fills))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if STATS.sent:
        terminalreporter.write_line(STATS.line())
