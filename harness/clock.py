"""Time, injected everywhere.

Venues count time in integer milliseconds since the Unix epoch, so does perpcheck. Tests and the
simulator use :class:`VirtualClock`, which only moves when told; testnets use :class:`WallClock`.
Nothing in perpcheck reads the system time except through a clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

__all__ = ["DEFAULT_EPOCH_MS", "Clock", "VirtualClock", "WallClock", "iso_ms"]

# 2026-01-01T00:00:00Z: a funding boundary (00:00 UTC), so 8-hour cycles line up with the epoch.
DEFAULT_EPOCH_MS = 1_767_225_600_000


def iso_ms(ms: int) -> str:
    """Render epoch milliseconds as an ISO-8601 UTC timestamp."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


@runtime_checkable
class Clock(Protocol):
    """Milliseconds since the epoch, and a way to wait."""

    def now_ms(self) -> int: ...

    async def sleep(self, seconds: float) -> None: ...


class VirtualClock:
    """A clock that moves only when advanced; never goes backwards.

    A simulator can attach a *driver*: ``advance`` then hands the target time to the driver,
    which walks the clock through every scheduled event on the way (with :meth:`set`), so that
    even a plain ``await clock.sleep(5)`` processes the market's events in order.
    """

    __slots__ = ("_driver", "_now")

    def __init__(self, start_ms: int = DEFAULT_EPOCH_MS) -> None:
        if start_ms < 0:
            msg = f"{start_ms=} must be >= 0"
            raise ValueError(msg)
        self._now = start_ms
        self._driver: Callable[[int], None] | None = None

    def now_ms(self) -> int:
        return self._now

    def attach_driver(self, driver: Callable[[int], None]) -> None:
        if self._driver is not None:
            msg = "this clock already has a driver"
            raise ValueError(msg)
        self._driver = driver

    def advance(self, ms: int) -> int:
        if ms < 0:
            msg = f"cannot advance a clock by {ms} ms"
            raise ValueError(msg)
        target = self._now + ms
        if self._driver is not None:
            self._driver(target)
        self.set(target)
        return self._now

    def set(self, ms: int) -> None:
        if ms < self._now:
            msg = f"cannot move a clock back from {self._now} to {ms}"
            raise ValueError(msg)
        self._now = ms

    async def sleep(self, seconds: float) -> None:
        # Sleeping on a virtual clock is advancing it; yield once so other tasks can run.
        self.advance(round(seconds * 1000))
        await asyncio.sleep(0)


class WallClock:
    """The real time, for testnets."""

    __slots__ = ()

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
