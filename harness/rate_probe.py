"""Rate-limit probes: the usage a venue published with its last answer, and a log of it for the
report (the RATE checks, suites/test_rate.py and suites/test_rate_limits.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from harness.backoff import Backoff
from harness.errors import Banned, RateLimited
from harness.probes import need
from harness.venue import Venue

__all__ = ["WeightLog", "limit_answer", "used_weight"]


def used_weight(venue: Venue) -> int:
    """The used weight (1 min) the venue published with its last answer (required)."""
    return need(venue.rate_usage.used_weight_1m, "a used-weight figure with the last response")


def limit_answer(exc: RateLimited) -> str:
    """How a limit answer reads in a report: ``418 banned``, ``429 order window (-1015)`` or
    ``429 rate-limited``."""
    if isinstance(exc, Banned):
        return "418 banned"
    return "429 order window (-1015)" if exc.code == -1015 else "429 rate-limited"


#: A back-off's events that are limit answers, as :func:`limit_answer` words them.
_BACKOFF_ANSWERS = {"rate-limited": "429 rate-limited", "banned": "418 banned"}


class WeightLog:
    """For the report: the usage the venue published with each answer (used weight, orders in
    10 s), call by call, and its limit answers (429, 418) in between. It reads only what the
    last response said, so it changes nothing a check measures."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.start_ms = venue.clock.now_ms()
        self.weight: list[list[str]] = []
        self.orders: list[list[str]] = []
        self.events: list[dict[str, str]] = []
        self._calls = 0
        self._seen = 0

    def after(self, backoff: Backoff | None = None, answer: str | None = None) -> None:
        """One call answered (``answer``: its limit answer); a back-off's new limit answers
        count as calls of their own."""
        if backoff is not None:
            for e in backoff.events[self._seen :]:
                if e.kind in _BACKOFF_ANSWERS:
                    self._calls += 1
                    self._event(_BACKOFF_ANSWERS[e.kind], e.retry_after)
            self._seen = len(backoff.events)
        self._calls += 1
        if answer is not None:
            self._event(answer, None)
        usage = self.venue.rate_usage
        if usage.used_weight_1m is not None:
            self.weight.append([str(self._calls), str(usage.used_weight_1m)])
        if usage.order_count_10s is not None:
            self.orders.append([str(self._calls), str(usage.order_count_10s)])

    def _event(self, kind: str, retry_after: Decimal | None) -> None:
        t = format(Decimal(self.venue.clock.now_ms() - self.start_ms) / 1000, "f")
        wait = "" if retry_after is None else f", Retry-After {retry_after} s"
        tone = "bad" if kind.startswith("418") else "warn"
        label = f"{kind}{wait} (t = {t} s)"
        self.events.append({"x": str(self._calls), "label": label, "kind": kind, "tone": tone})

    def evidence(self, title: str, hlines: list[dict[str, str]]) -> dict[str, Any]:
        series = {"used weight (1 min)": self.weight}
        if any(v != "0" for _, v in self.orders):
            series["orders (10 s)"] = self.orders
        return {
            "type": "series",
            "title": title,
            "x_label": "call (in order)",
            "y_label": "published usage",
            "series": series,
            "hlines": hlines,
            "events": self.events,
        }
