"""The anomaly monitor's statistics: sliding windows of virtual time and published figures.

:class:`_Windows` (event times per key) and :class:`_Distinct` (distinct keys) are the windows
the detectors of engine/monitor.py count in; the helpers round and format a statistic or an
evidence figure as an alert publishes it (ratios and shares rounded down to 6 decimals,
notionals to cents).
"""

from __future__ import annotations

from collections import Counter, deque
from decimal import ROUND_DOWN, Decimal

__all__ = ["BPS", "CENTS", "RATIO_PLACES", "ZERO"]

ZERO = Decimal(0)
BPS = Decimal(10_000)
RATIO_PLACES = Decimal("0.000001")  # statistics are published rounded down to 6 places
CENTS = Decimal("0.01")  # notionals in evidence, rounded down


def _plain(value: Decimal | int) -> str:
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def _label(sign: int) -> str:
    return "long" if sign > 0 else "short"


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENTS, ROUND_DOWN)


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal:
    return (numerator / max(denominator, Decimal(1))).quantize(RATIO_PLACES, ROUND_DOWN)


_Key = tuple[str, str]  # (account id, symbol)


class _Windows:
    """Per key, the times of its events in ``(now - length, now]``, oldest first.

    One queue of every event in time order prunes them all (amortized O(1) per event), so only
    keys with an event inside the window take memory: a venue with many accounts keeps the
    windows of the ones active in the last seconds.
    """

    __slots__ = ("events", "length", "times")

    def __init__(self, length: int) -> None:
        self.length = length
        self.events: deque[tuple[int, _Key]] = deque()
        self.times: dict[_Key, deque[int]] = {}

    def _prune(self, now: int) -> None:
        events = self.events
        cutoff = now - self.length
        while events and events[0][0] <= cutoff:
            key = events.popleft()[1]
            times = self.times[key]
            times.popleft()
            if not times:
                del self.times[key]

    def add(self, key: _Key, now: int) -> int:
        """Record an event of ``key`` at ``now``; how many ``key`` has in the window."""
        events = self.events
        if events and events[0][0] <= now - self.length:
            self._prune(now)
        events.append((now, key))
        times = self.times.get(key)
        if times is None:
            times = self.times[key] = deque()
        times.append(now)
        return len(times)

    def count(self, key: _Key, now: int) -> int:
        self._prune(now)
        times = self.times.get(key)
        return len(times) if times else 0

    def first(self, key: _Key) -> int:
        """The oldest time of ``key`` in the window (it has one)."""
        return self.times[key][0]


class _Distinct:
    """Distinct keys seen in ``(now - length, now]`` (a counter over a window of events)."""

    __slots__ = ("counts", "events", "length")

    def __init__(self, length: int) -> None:
        self.length = length
        self.events: deque[tuple[int, str]] = deque()
        self.counts: Counter[str] = Counter()

    def add(self, now: int, key: str) -> int:
        self.events.append((now, key))
        self.counts[key] += 1
        while self.events[0][0] <= now - self.length:
            _, old = self.events.popleft()
            self.counts[old] -= 1
            if not self.counts[old]:
                del self.counts[old]
        return len(self.counts)
