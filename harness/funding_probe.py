"""Harness-side funding observation: premiums rebuilt from the book (perp-mechanics.md §3).

Like :class:`~harness.probes.MarkTracker` for the mark, :class:`PremiumSampler` steps a
controllable venue one premium sample (5 s) at a time, walks the impact notional through the book
it observes and averages a funding interval's samples, so that the venue's settled rate can be
compared with the oracle's formula on inputs the harness saw itself — never on the venue's own
premium figures. Everything goes through the :class:`~harness.venue.Venue` protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from harness.model import FundingEvent, FundingInfo, IncomeType
from harness.oracle import average_premium, book_premium, funding_rate, impact_price
from harness.probes import need
from harness.venue import Account, Venue, VenueControl

__all__ = [
    "HOUR_MS",
    "IntervalObservation",
    "PremiumSample",
    "PremiumSampler",
    "advance_to",
    "funding_paid",
    "funding_symbol",
    "hourly_symbol",
    "make_hourly",
    "settlement_at",
]

HOUR_MS = 3_600_000
_BOOK_LEVELS = 20  # enough for the impact notional on a normal book; refetched deeper if not


def _control(venue: Venue) -> VenueControl:
    control = venue.control
    if control is None:
        msg = f"{venue.name} cannot be stepped (no control interface)"
        raise RuntimeError(msg)
    return control


async def advance_to(venue: Venue, time_ms: int) -> int:
    """Advance the venue's clock to ``time_ms`` (no-op if already there); returns now."""
    now = venue.clock.now_ms()
    if time_ms < now:
        msg = f"cannot go back from {now} to {time_ms}"
        raise ValueError(msg)
    return now if time_ms == now else await _control(venue).advance(time_ms - now)


async def funding_symbol(venue: Venue) -> str:
    """The symbol that settles funding most often (ties: by name): the cheapest to observe."""
    infos = [await venue.funding_info(symbol) for symbol in sorted(await venue.instruments())]
    return min(infos, key=lambda i: (i.interval_hours, i.symbol)).symbol


async def make_hourly(venue: Venue, symbol: str) -> FundingInfo:
    """Switch ``symbol`` to hourly settlement and advance to the switch (§10).

    A symbol already hourly is left alone. Otherwise the change is announced for the first
    funding time at least the venue's announcement lead away, and the clock is advanced to it.
    """
    info = await venue.funding_info(symbol)
    if info.interval_hours == 1:
        return info
    interval = info.interval_hours * HOUR_MS
    effective = info.next_funding_time_ms
    while effective < venue.clock.now_ms() + venue.rules.funding_announcement_ms:
        effective += interval
    await _control(venue).schedule_funding_interval(symbol, 1, effective)
    await advance_to(venue, effective)
    return await venue.funding_info(symbol)


async def hourly_symbol(venue: Venue) -> tuple[str, FundingInfo]:
    """:func:`funding_symbol`, switched to hourly settlement by :func:`make_hourly`."""
    symbol = await funding_symbol(venue)
    return symbol, await make_hourly(venue, symbol)


async def settlement_at(venue: Venue, symbol: str, funding_time: int) -> FundingEvent:
    """The venue's settlement of ``symbol`` at ``funding_time``; :class:`Missing` if none."""
    history = await venue.funding_history(symbol, since_ms=funding_time)
    found = [e for e in history if e.funding_time_ms == funding_time]
    return need(found[0] if found else None, f"a {symbol} funding settlement at {funding_time}")


async def funding_paid(account: Account, symbol: str, since_ms: int) -> tuple[Decimal, int]:
    """What ``account`` paid in funding since ``since_ms`` (positive: paid) and in how many
    ``FUNDING_FEE`` records."""
    fees = await account.income(IncomeType.FUNDING_FEE, symbol, since_ms=since_ms)
    return -sum((r.amount for r in fees), Decimal(0)), len(fees)


@dataclass(frozen=True, slots=True, kw_only=True)
class PremiumSample:
    """One premium sample as the harness rebuilt it from the book (§3(a)).

    ``next_funding_ms`` and ``interval_ms`` are the schedule the venue published with its mark at
    that moment (what P1's time to funding uses, §2(a) V1).
    """

    time_ms: int
    index: Decimal
    impact_bid: Decimal | None
    impact_ask: Decimal | None
    premium: Decimal
    next_funding_ms: int
    interval_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class IntervalObservation:
    """A funding interval ``(start, funding time]``: the samples, the oracle's rate, the venue's.

    ``expected_rate`` is the oracle's formula on the harness's own ``average_premium`` with the
    parameters the venue announced at the start of the interval (``info``); ``event`` is the
    venue's settlement at the funding time, ``None`` if it published none.
    """

    start_ms: int
    funding_time_ms: int
    info: FundingInfo
    samples: tuple[PremiumSample, ...]
    average_premium: Decimal
    expected_rate: Decimal
    event: FundingEvent | None


@dataclass(slots=True)
class PremiumSampler:
    """Steps a venue one premium sample at a time through whole funding intervals."""

    venue: Venue
    symbol: str
    intervals: list[IntervalObservation] = field(default_factory=list)

    async def observe_interval(self) -> IntervalObservation:
        """Sample from this funding time to the next and fetch the venue's settlement there.

        The venue must stand at the start of a funding interval (a funding time). Samples are
        taken where the venue takes them, at multiples of ``premium_sample_interval_ms``; the
        interval owns the samples after its start up to and including its funding time.
        """
        venue = self.venue
        info = await venue.funding_info(self.symbol)
        end = info.next_funding_time_ms
        start = end - info.interval_hours * HOUR_MS
        now = venue.clock.now_ms()
        if now != start:
            msg = (
                f"{self.symbol}: the sampler must start at a funding time; it is {now}, the "
                f"interval ending at {end} started at {start}"
            )
            raise RuntimeError(msg)
        step = venue.rules.premium_sample_interval_ms
        samples: list[PremiumSample] = []
        while now < end:
            now = await advance_to(venue, min(now + step - now % step, end))
            if now % step == 0:
                samples.append(await self._sample(info.impact_margin_notional))
        premiums = [s.premium for s in samples]
        p_bar = average_premium(premiums) if premiums else Decimal(0)
        history = await venue.funding_history(self.symbol, since_ms=end)
        observation = IntervalObservation(
            start_ms=start,
            funding_time_ms=end,
            info=info,
            samples=tuple(samples),
            average_premium=p_bar,
            expected_rate=funding_rate(
                p_bar,
                info.interest_rate,
                info.clamp,
                info.cap,
                info.floor,
                info.interval_hours,
            ),
            event=next((e for e in history if e.funding_time_ms == end), None),
        )
        self.intervals.append(observation)
        return observation

    async def _sample(self, notional: Decimal) -> PremiumSample:
        venue = self.venue
        book = await venue.order_book(self.symbol, _BOOK_LEVELS)
        if _needs_depth(book.bids, notional) or _needs_depth(book.asks, notional):
            book = await venue.order_book(self.symbol, 1000)
        mark = await venue.mark(self.symbol)
        index = mark.index_price
        return PremiumSample(
            time_ms=mark.time_ms,
            index=index,
            impact_bid=impact_price(book.bids, notional),
            impact_ask=impact_price(book.asks, notional),
            premium=book_premium(book.bids, book.asks, index, notional),
            next_funding_ms=mark.next_funding_time_ms,
            interval_ms=mark.funding_interval_ms,
        )

    def evidence(self, title: str, **extra: Any) -> dict[str, Any]:
        """A chart of the samples (bps, one point per 30 s) and each interval's average."""
        if not self.intervals:
            return {"type": "series", "title": title, "series": {}, **extra}
        origin = self.intervals[0].start_ms

        def t(ms: int) -> str:
            return format(Decimal(ms - origin) / 60_000, "f")

        def bps(value: Decimal) -> str:
            return format((value * 10_000).quantize(Decimal("0.001")), "f")

        samples = [s for obs in self.intervals for s in obs.samples]
        averages: list[list[str]] = []
        for obs in self.intervals:  # a step per interval
            level = bps(obs.average_premium)
            averages += [[t(obs.start_ms), level], [t(obs.funding_time_ms), level]]
        return {
            "type": "series",
            "title": title,
            "x_label": "time (min)",
            "y_label": f"{self.symbol} premium (bps)",
            "series": {
                "premium sample": [[t(s.time_ms), bps(s.premium)] for s in samples[5::6]],
                "interval average P̄": averages,
            },
            "vlines": [{"x": t(obs.funding_time_ms), "label": "funding"} for obs in self.intervals],
            **extra,
        }


def _needs_depth(levels: Sequence[tuple[Decimal, Decimal]], notional: Decimal) -> bool:
    """The snapshot was cut at the level limit before the notional filled: fetch deeper."""
    return len(levels) >= _BOOK_LEVELS and impact_price(levels, notional) is None
