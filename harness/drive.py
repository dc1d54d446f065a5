"""Drive a controllable venue's index and watch accounts get liquidated, update by update.

Venue-neutral (Venue/Account/VenueControl only): the PLQ checks use it to walk the mark through
a liquidation band and record, per update, the mark, each watched account's position and
balance, and the liquidation events that update produced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from harness.model import Balance, BookSnapshot, LiquidationEvent, Position, PricePath
from harness.probes import position_of
from harness.venue import Account, Venue

__all__ = ["Drive", "Frame", "drive_index"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """The market and the watched accounts after one update."""

    time_ms: int
    mark: Decimal
    index: Decimal
    positions: Mapping[str, Position | None]
    balances: Mapping[str, Balance]
    events: Mapping[str, tuple[LiquidationEvent, ...]]  # each account's steps in this update
    book: BookSnapshot | None = None


@dataclass(slots=True)
class Drive:
    symbol: str
    start_ms: int
    frames: list[Frame] = field(default_factory=list)
    focus: tuple[Decimal, Decimal] | None = None  # the marks worth charting (e.g. the band)

    def events(self, name: str) -> list[tuple[int, LiquidationEvent]]:
        """``(frame index, event)`` for each liquidation step of the watched account ``name``."""
        return [(i, e) for i, f in enumerate(self.frames) for e in f.events.get(name, ())]

    def before(self, frame_index: int) -> Frame:
        """The frame just before ``frame_index`` (the state the liquidation started from)."""
        return self.frames[max(frame_index - 1, 0)]

    def evidence(
        self, title: str, *, window: tuple[Decimal, Decimal] | None = None, **extra: Any
    ) -> dict[str, Any]:
        """A chart of mark and index with each liquidation step; ``window`` keeps only the
        updates whose mark lies in ``[low, high]`` (e.g. the band, not the way to it)."""

        def t(ms: int) -> str:
            return format(Decimal(ms - self.start_ms) / 1000, "f")

        frames = self.frames
        window = window if window is not None else self.focus
        if window is not None:
            frames = [f for f in frames if window[0] <= f.mark <= window[1]] or frames
        data: dict[str, Any] = {
            "type": "series",
            "title": title,
            "x_label": "time (s)",
            "y_label": f"{self.symbol} price",
            "series": {
                "mark": [[t(f.time_ms), format(f.mark, "f")] for f in frames],
                "index": [[t(f.time_ms), format(f.index, "f")] for f in frames],
            },
            **extra,
        }
        lines = data.setdefault("vlines", [])
        for f in frames:
            for name, events in f.events.items():
                for e in events:
                    label = "step" if e.partial else "closed"
                    lines.append({"x": t(e.time_ms), "label": f"{name}: {label} {e.quantity}"})
        return data


async def drive_index(
    venue: Venue,
    symbol: str,
    target: Decimal,
    *,
    updates: int,
    accounts: Mapping[str, Account],
    extra_updates: int = 10,
    stop: Callable[[Drive], bool] | None = None,
    books: bool = False,
    legs: Sequence[tuple[int, Decimal]] = (),
    focus: tuple[Decimal, Decimal] | None = None,
) -> Drive:
    """Move ``symbol``'s index linearly to ``target`` over ``updates`` updates, recording.

    ``legs`` ``(updates, index)`` come first, each linear from where the previous ended: a fast
    leg to the edge of a band and a slow one through it keep band steps apart. Frame 0 is the
    state before the first update. Stops ``extra_updates`` after the last leg or as soon as
    ``stop(drive)`` is true.
    """
    control = venue.control
    if control is None:
        msg = f"{venue.name} has no control interface to move prices"
        raise RuntimeError(msg)
    interval = venue.rules.mark_update_interval_ms
    start = venue.clock.now_ms()
    mark = await venue.mark(symbol)
    points = [(0, mark.index_price)]
    for leg_updates, leg_target in (*legs, (updates, target)):
        points.append((points[-1][0] + leg_updates * interval, leg_target))
    await control.set_price_path(symbol, PricePath(points=tuple(points), linear=True))
    updates = points[-1][0] // interval
    drive = Drive(symbol=symbol, start_ms=start, focus=focus)
    seen = {k: len(await a.liquidations(symbol)) for k, a in accounts.items()}

    async def frame(events: Mapping[str, tuple[LiquidationEvent, ...]]) -> Frame:
        snapshot = await venue.mark(symbol)
        return Frame(
            time_ms=snapshot.time_ms,
            mark=snapshot.mark_price,
            index=snapshot.index_price,
            positions={k: await position_of(a, symbol) for k, a in accounts.items()},
            balances={k: await a.balance() for k, a in accounts.items()},
            events=events,
            book=await venue.order_book(symbol, 50) if books else None,
        )

    drive.frames.append(await frame({}))
    for _ in range(updates + extra_updates):
        await control.advance(interval)
        new: dict[str, tuple[LiquidationEvent, ...]] = {}
        for name, account in accounts.items():
            every = await account.liquidations(symbol)
            if len(every) > seen[name]:
                new[name] = tuple(every[seen[name] :])
                seen[name] = len(every)
        drive.frames.append(await frame(new))
        if stop is not None and stop(drive):
            break
    return drive


def band_legs(
    *,
    mark: Decimal,
    index: Decimal,
    top: Decimal,
    bottom: Decimal,
    gap: Decimal,
    tick: Decimal,
    fast_updates: int = 60,
    margin: Decimal = Decimal("0.002"),
) -> tuple[list[tuple[int, Decimal]], Decimal, int]:
    """Index legs for a falling mark: fast to just above ``top``, then slowly past ``bottom``.

    The slow leg moves at most a quarter of ``gap`` (the smallest distance between two steps of
    the bands being crossed, never less than a tick) per update, so each band step gets its own
    update and no step is skipped by the size of one move. Marks are turned into index levels
    with the current mark/index ratio. Returns ``(legs, target, updates)`` for :func:`drive_index`.
    """
    ratio = index / mark
    start = top * (1 + margin) * ratio
    end = bottom * (1 - margin) * ratio
    per_update = max(gap / 4, tick)
    slow = int(((start - end) / per_update).to_integral_value(rounding="ROUND_CEILING"))
    return [(fast_updates, start)], end, max(slow, 1)
