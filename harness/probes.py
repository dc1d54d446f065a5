"""Venue-neutral building blocks for checks: small orders, positions, a mark tracker.

Everything here goes through the :class:`~harness.venue.Venue` protocol and the oracle, so a
check written with these runs unchanged on the simulator and on a testnet.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from harness.errors import Missing, Rejected
from harness.model import (
    Balance,
    BookSnapshot,
    Bracket,
    ClientOrderId,
    Fill,
    Instrument,
    LiquidationEvent,
    MarginMode,
    MarkSnapshot,
    Order,
    OrderRequest,
    OrderType,
    Position,
    PricePath,
    Side,
    TimeInForce,
    quantize_down,
    quantize_up,
)
from harness.oracle import PositionInput, PositionSide, mark_band, mark_price, moving_average_basis
from harness.venue import Account, Capability, Venue

__all__ = [
    "LiquidationDrive",
    "MarkObservation",
    "MarkTracker",
    "attempt",
    "describe",
    "drive_to_liquidation",
    "fills_of",
    "market",
    "min_qty_for_notional",
    "need",
    "new_fills",
    "open_isolated",
    "passive_price",
    "position_input",
    "position_of",
    "published_unit",
]


T = TypeVar("T")


def need(value: T | None, what: str) -> T:
    """``value``, or a :class:`Missing` error naming what the venue did not show."""
    if value is None:
        msg = f"the venue did not show {what}"
        raise Missing(msg)
    return value


def passive_price(inst: Instrument, book: BookSnapshot, side: Side, ticks: int = 10) -> Decimal:
    """A price ``ticks`` behind the best price on ``side``, so an order there rests."""
    if side is Side.BUY:
        best = book.best_bid if book.best_bid is not None else book.best_ask
        if best is None:
            msg = f"{inst.symbol}: the book is empty on both sides"
            raise RuntimeError(msg)
        return max(quantize_down(best, inst.tick_size) - ticks * inst.tick_size, inst.min_price)
    best = book.best_ask if book.best_ask is not None else book.best_bid
    if best is None:
        msg = f"{inst.symbol}: the book is empty on both sides"
        raise RuntimeError(msg)
    return quantize_up(best, inst.tick_size) + ticks * inst.tick_size


def published_unit(value: Decimal, unit: Decimal) -> Decimal:
    """One unit of the last decimal place ``value`` was published with, or ``unit`` if finer.

    The tolerance for a value a venue publishes to fewer places than ``unit`` (its atomic unit):
    it is judged at its own precision. A trailing zero the venue strips only makes this looser,
    never stricter; a value without a finite exponent (NaN, infinity) gets ``unit``.
    """
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):
        return unit
    return max(unit, Decimal(1).scaleb(exponent))


def min_qty_for_notional(
    inst: Instrument, price: Decimal, factor: Decimal = Decimal("1.1")
) -> Decimal:
    """The smallest on-step quantity whose notional at ``price`` is ``factor`` x the minimum."""
    return max(quantize_up(inst.min_notional * factor / price, inst.step_size), inst.min_qty)


def market(symbol: str, side: Side, qty: Decimal, *, reduce_only: bool = False) -> OrderRequest:
    return OrderRequest(
        symbol=symbol, side=side, type=OrderType.MARKET, quantity=qty, reduce_only=reduce_only
    )


def limit(
    symbol: str,
    side: Side,
    qty: Decimal,
    price: Decimal,
    tif: TimeInForce = TimeInForce.GTC,
    *,
    client_order_id: str | None = None,
    reduce_only: bool = False,
) -> OrderRequest:
    return OrderRequest(
        symbol=symbol,
        side=side,
        type=OrderType.LIMIT,
        quantity=qty,
        price=price,
        time_in_force=tif,
        reduce_only=reduce_only,
        client_order_id=ClientOrderId(client_order_id) if client_order_id else None,
    )


async def attempt(account: Account, request: OrderRequest) -> Order | Rejected:
    """Place an order and return the venue's answer, order or rejection, without raising."""
    try:
        return await account.place_order(request)
    except Rejected as exc:
        return exc


def describe(outcome: Order | Rejected) -> str:
    if isinstance(outcome, Rejected):
        return f"rejected {outcome.code} ({outcome.msg})"
    return f"{outcome.status.value}, filled {outcome.executed_qty}/{outcome.orig_qty}"


def position_input(
    pos: Position, brackets: tuple[Bracket, ...], *, mark: Decimal | None = None
) -> PositionInput:
    """A venue position as the oracle takes it (side and size from the signed quantity)."""
    return PositionInput(
        symbol=pos.symbol,
        side=PositionSide.parse(pos.sign),
        quantity=pos.size,
        entry_price=pos.entry_price,
        brackets=brackets,
        mark_price=mark,
    )


def new_fills(before: list[Fill], after: list[Fill]) -> list[Fill]:
    """The fills in ``after`` that ``before`` did not list (by trade id), in ``after``'s order.

    Not ``after[len(before):]``: a venue lists only its latest fills, so on a busy account the
    list does not grow by the fills an order adds, it moves.
    """
    seen = {f.trade_id for f in before}
    return [f for f in after if f.trade_id not in seen]


async def fills_of(
    venue: Venue, account: Account, order: Order, *, attempts: int = 5, wait_s: float = 0.2
) -> list[Fill]:
    """The account's fills of ``order``, oldest first, found by order id (not by position in the
    account's list: a venue returns only the latest fills, so a busy testnet account's list
    does not grow by what one order adds).

    A real venue may list an execution a moment after the order shows it filled, or answer a
    market order before it shows any fill: while the fills found cover less than the order's
    executed quantity, or a market order has none yet, asked again up to ``attempts`` times,
    ``wait_s`` apart on the venue's clock. Not on a venue whose clock the harness drives
    (``CONTROL_CLOCK``, the simulator): its fills are there at once, and waiting would move its
    market time.
    """
    if Capability.CONTROL_CLOCK in venue.capabilities:
        attempts = 1
    for attempt in range(attempts):
        found = [f for f in await account.fills(order.symbol) if f.order_id == order.order_id]
        covered = sum((f.qty for f in found), Decimal(0)) >= order.executed_qty
        if (covered and (found or order.type is not OrderType.MARKET)) or attempt + 1 == attempts:
            return found
        await venue.clock.sleep(wait_s)
    return []


async def position_of(account: Account, symbol: str) -> Position | None:
    for pos in await account.positions():
        if pos.symbol == symbol and pos.quantity != 0:
            return pos
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkObservation:
    """One update as the harness saw it, with the §2 band the oracle derives from it."""

    time_ms: int
    mark: Decimal
    index: Decimal
    last: Decimal | None
    p1: Decimal
    p2: Decimal
    expected_mark: Decimal

    @property
    def band(self) -> tuple[Decimal, Decimal]:
        return mark_band(self.p1, self.p2)


@dataclass(slots=True)
class MarkTracker:
    """Steps a controllable venue one mark update at a time and rebuilds its mark inputs.

    The tracker keeps its own window of ``(bid1, ask1, index)`` samples, one per update, so
    ``P2 = index + MA(basis)`` comes from what the harness observed, not from the venue's
    internals (perp-mechanics.md §2 V1). Call :meth:`warm_up` first to fill the window.
    """

    venue: Venue
    symbol: str
    samples: deque[tuple[Decimal, Decimal, Decimal]] = field(init=False)
    observations: list[MarkObservation] = field(default_factory=list)
    start_ms: int = 0

    def __post_init__(self) -> None:
        self.samples = deque(maxlen=self.venue.rules.mark_basis_samples)
        self.start_ms = self.venue.clock.now_ms()

    async def step(self, updates: int = 1) -> MarkObservation:
        control = self.venue.control
        if control is None:
            msg = f"{self.venue.name} cannot be stepped (no control interface)"
            raise RuntimeError(msg)
        obs: MarkObservation | None = None
        for _ in range(updates):
            await control.advance(self.venue.rules.mark_update_interval_ms)
            book = await self.venue.order_book(self.symbol, 5)
            mark = await self.venue.mark(self.symbol)
            if book.best_bid is not None and book.best_ask is not None:
                self.samples.append((book.best_bid, book.best_ask, mark.index_price))
            elif self.samples:
                self.samples.append(self.samples[-1])
            obs = self.observe(mark)
        return need(obs, "a mark update (step needs updates >= 1)")

    async def warm_up(self) -> MarkObservation:
        return await self.step(self.venue.rules.mark_basis_samples)

    async def now(self) -> MarkObservation:
        """Observe the current mark without advancing (e.g. right after a trade)."""
        return self.observe(await self.venue.mark(self.symbol))

    def observe(self, mark: MarkSnapshot) -> MarkObservation:
        tau = max(mark.next_funding_time_ms - mark.time_ms, 0)
        ma = moving_average_basis(list(self.samples)) if self.samples else Decimal(0)
        breakdown = mark_price(
            mark.index_price,
            mark.last_funding_rate,
            min(tau, mark.funding_interval_ms),
            mark.funding_interval_ms,
            ma,
            mark.last_price,
        )
        obs = MarkObservation(
            time_ms=mark.time_ms,
            mark=mark.mark_price,
            index=mark.index_price,
            last=mark.last_price,
            p1=breakdown.p1,
            p2=breakdown.p2,
            expected_mark=breakdown.mark,
        )
        self.observations.append(obs)
        return obs

    def evidence(self, title: str, **extra: Any) -> dict[str, Any]:
        """A chart of mark, index, last and the band over the observed updates."""

        def series(values: list[tuple[int, Decimal | None]]) -> list[list[str]]:
            return [
                [format(Decimal(t - self.start_ms) / 1000, "f"), format(v, "f")]
                for t, v in values
                if v is not None
            ]

        obs = self.observations
        return {
            "type": "series",
            "title": title,
            "x_label": "time (s)",
            "y_label": f"{self.symbol} price",
            "series": {
                "mark": series([(o.time_ms, o.mark) for o in obs]),
                "index": series([(o.time_ms, o.index) for o in obs]),
                "last": series([(o.time_ms, o.last) for o in obs]),
                "band low": series([(o.time_ms, o.band[0]) for o in obs]),
                "band high": series([(o.time_ms, o.band[1]) for o in obs]),
            },
            **extra,
        }


async def open_isolated(
    account: Account, symbol: str, side: Side, qty: Decimal, leverage: int
) -> Position:
    """Open an isolated position with a market order at ``leverage``."""
    try:
        await account.set_margin_mode(symbol, MarginMode.ISOLATED)
    except Rejected as exc:
        if exc.code != -4046:  # "No need to change margin type."
            raise
    await account.set_leverage(symbol, leverage)
    await account.place_order(market(symbol, side, qty))
    pos = await position_of(account, symbol)
    if pos is None:
        msg = f"a market {side.value} of {qty} {symbol} opened no position"
        raise RuntimeError(msg)
    return pos


@dataclass(frozen=True, slots=True, kw_only=True)
class DriveStep:
    """One update while driving the index: what the account looked like just before it."""

    time_ms: int
    mark: Decimal
    index: Decimal
    position: Position | None
    balance: Balance


@dataclass(slots=True)
class LiquidationDrive:
    """The updates walked and the liquidation that ended the walk, if any."""

    steps: list[DriveStep]
    event: LiquidationEvent | None
    before: DriveStep | None  # the account just before the liquidating update
    start_ms: int

    def evidence(self, symbol: str, title: str, **extra: Any) -> dict[str, Any]:
        def t(ms: int) -> str:
            return format(Decimal(ms - self.start_ms) / 1000, "f")

        data: dict[str, Any] = {
            "type": "series",
            "title": title,
            "x_label": "time (s)",
            "y_label": f"{symbol} price",
            "series": {
                "mark": [[t(s.time_ms), format(s.mark, "f")] for s in self.steps],
                "index": [[t(s.time_ms), format(s.index, "f")] for s in self.steps],
            },
            **extra,
        }
        if self.event is not None:
            data.setdefault("vlines", []).append(
                {"x": t(self.event.time_ms), "label": "liquidation"}
            )
        return data


async def drive_to_liquidation(
    venue: Venue,
    account: Account,
    symbol: str,
    target: Decimal,
    updates: int,
    extra_updates: int = 10,
) -> LiquidationDrive:
    """Move the index linearly to ``target`` over ``updates`` updates until the account's
    position in ``symbol`` is liquidated (or ``extra_updates`` after the path ends)."""
    control = venue.control
    if control is None:
        msg = f"{venue.name} has no control interface to move prices"
        raise RuntimeError(msg)
    interval = venue.rules.mark_update_interval_ms
    start = venue.clock.now_ms()
    index = (await venue.mark(symbol)).index_price
    await control.set_price_path(
        symbol,
        PricePath(points=((0, index), (updates * interval, target)), linear=True, name="drive"),
    )

    async def observe() -> DriveStep:
        mark = await venue.mark(symbol)
        return DriveStep(
            time_ms=mark.time_ms,
            mark=mark.mark_price,
            index=mark.index_price,
            position=await position_of(account, symbol),
            balance=await account.balance(),
        )

    steps = [await observe()]
    for _ in range(updates + extra_updates):
        await control.advance(interval)
        events = [e for e in await venue.liquidations(symbol, since_ms=start) if e.own]
        if events:
            return LiquidationDrive(steps=steps, event=events[0], before=steps[-1], start_ms=start)
        steps.append(await observe())
    return LiquidationDrive(steps=steps, event=None, before=None, start_ms=start)
