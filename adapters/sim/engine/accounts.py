"""Accounts, positions and margin as the simulator computes them (perp-mechanics.md §4, §6).

The simulator's own implementation, written independently of ``harness.oracle``. One-way mode:
one signed position per symbol. Cross positions share the cross wallet; an isolated position
holds its margin in its own wallet (``isolated_wallet``), moved out of the cross wallet when the
position grows and back when it shrinks.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal

from harness.model import (
    Bracket,
    IncomeRecord,
    MarginMode,
)

__all__ = [
    "OPEN_STATUSES",
    "AccountState",
    "FillRecord",
    "OrderRecord",
    "PositionState",
    "Watch",
    "bracket_at",
    "liquidation_price",
    "maint_margin",
    "max_notional_for_leverage",
]

ZERO = Decimal(0)
OPEN_STATUSES = frozenset(("NEW", "PARTIALLY_FILLED"))
#: the venue's client order id for an order placed without one: this prefix and the order id.
DEFAULT_CID_PREFIX = "sim-"
# Aggregates (sums of notionals) are kept exactly: no rounding at any size.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
_ADD, _SUB, _MUL = _EXACT.add, _EXACT.subtract, _EXACT.multiply


class Watch:
    """Where the state objects report changes (engine/liqindex.py reads it).

    ``version`` counts every change of a watched field. ``dirty`` collects the accounts whose
    change may matter to the liquidation trigger: any change of a position's quantity, entry or
    margin mode or of an account's exemption, and a wallet *decrease* once the decreases since the
    account was last keyed exceed the reserve its keys were built with (``_reserve``; a wallet
    increase only moves an account away from maintenance).
    """

    __slots__ = ("dirty", "version")

    def __init__(self) -> None:
        self.dirty: set[AccountState] = set()
        self.version = 0


def bracket_at(brackets: tuple[Bracket, ...], notional: Decimal) -> Bracket:
    """The tier whose ``[floor, cap)`` holds ``notional``; the last tier beyond every cap."""
    for b in brackets:
        if notional < b.notional_cap:
            return b
    return brackets[-1]


def maint_margin(brackets: tuple[Bracket, ...], notional: Decimal) -> Decimal:
    b = bracket_at(brackets, notional)
    return notional * b.maint_margin_ratio - b.cum


def max_notional_for_leverage(brackets: tuple[Bracket, ...], leverage: int) -> Decimal:
    """The largest position notional allowed at ``leverage`` (the highest cap that allows it)."""
    allowed = [b.notional_cap for b in brackets if b.initial_leverage >= leverage]
    return max(allowed) if allowed else ZERO


def liquidation_price(
    *,
    sign: int,
    qty: Decimal,
    entry: Decimal,
    brackets: tuple[Bracket, ...],
    wallet: Decimal,
    other_upnl: Decimal = ZERO,
    other_mm: Decimal = ZERO,
    entry_tier: bool = False,
) -> Decimal | None:
    """Price where ``equity == maintenance`` (Binance one-way formula, §6(a)).

    ``LP = (WB - TMM1 + UPNL1 + cum - s*Q*EP) / (Q*mmr - s*Q)``, with the tier taken at the
    notional ``Q * LP`` (each tier is tried; the consistent one wins). ``entry_tier`` is the
    ``entry-tier-for-liquidation`` defect: the tier at the entry notional is used instead.
    Returns None when there is no positive liquidation price.
    """
    numerator_base = wallet - other_mm + other_upnl - sign * qty * entry
    if entry_tier:
        b = bracket_at(brackets, qty * entry)
        lp = (numerator_base + b.cum) / (qty * b.maint_margin_ratio - sign * qty)
        return lp if lp > 0 else None
    for b in brackets:
        lp = (numerator_base + b.cum) / (qty * b.maint_margin_ratio - sign * qty)
        if lp <= 0:
            continue
        if b.notional_floor <= qty * lp < b.notional_cap:
            return lp
    return None


class PositionState:
    """One symbol's position of one account (signed ``qty``; one-way mode).

    ``qty``, ``entry``, ``isolated_wallet`` and ``margin_mode`` are watched: setting one tells the
    owning account's watcher (the liquidation trigger index, engine/liqindex.py), so any change
    made anywhere reaches the index. Positions are created by :meth:`AccountState.position`.
    """

    __slots__ = (
        "_drain",
        "_entry",
        "_iso",
        "_mode",
        "_owner",
        "_qty",
        "_reserve",
        "leverage",
        "symbol",
        "update_ms",
    )

    def __init__(
        self,
        symbol: str,
        margin_mode: MarginMode,
        leverage: int,
        qty: Decimal = ZERO,
        entry: Decimal = ZERO,
        isolated_wallet: Decimal = ZERO,
        update_ms: int = 0,
        *,
        owner: AccountState | None = None,
    ) -> None:
        self.symbol = symbol
        self._mode = margin_mode
        self.leverage = leverage
        self._qty = qty
        self._entry = entry
        self._iso = isolated_wallet
        self.update_ms = update_ms
        self._owner = owner
        self._drain = ZERO  # isolated wallet decreases since keyed (see Watch)
        self._reserve = ZERO

    def _touched(self) -> None:
        owner = self._owner
        if owner is not None:
            watch = owner._watch
            if watch is not None:
                watch.version += 1
                watch.dirty.add(owner)

    @property
    def qty(self) -> Decimal:
        return self._qty

    @qty.setter
    def qty(self, value: Decimal) -> None:
        self._qty = value
        self._touched()

    @property
    def entry(self) -> Decimal:
        return self._entry

    @entry.setter
    def entry(self, value: Decimal) -> None:
        self._entry = value
        self._touched()

    @property
    def isolated_wallet(self) -> Decimal:
        return self._iso

    @isolated_wallet.setter
    def isolated_wallet(self, value: Decimal) -> None:
        old = self._iso
        self._iso = value
        owner = self._owner
        if owner is not None:
            watch = owner._watch
            if watch is not None:
                watch.version += 1
                if value < old:
                    self._drain += old - value
                    if self._drain > self._reserve:
                        watch.dirty.add(owner)

    @property
    def margin_mode(self) -> MarginMode:
        return self._mode

    @margin_mode.setter
    def margin_mode(self, value: MarginMode) -> None:
        self._mode = value
        self._touched()

    @property
    def sign(self) -> int:
        qty = self._qty
        return 1 if qty > 0 else -1 if qty < 0 else 0

    def upnl(self, price: Decimal) -> Decimal:
        return self._qty * (price - self._entry)

    def _key(self) -> tuple[object, ...]:
        return (
            self.symbol,
            self._mode,
            self.leverage,
            self._qty,
            self._entry,
            self._iso,
            self.update_ms,
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, PositionState)  # noqa: S101 - narrowed by the class check
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value (like a dataclass)

    def __repr__(self) -> str:
        return (
            f"PositionState(symbol={self.symbol!r}, margin_mode={self._mode!r}, "
            f"leverage={self.leverage!r}, qty={self._qty!r}, entry={self._entry!r}, "
            f"isolated_wallet={self._iso!r}, update_ms={self.update_ms!r})"
        )


class OrderRecord:
    """The venue's record of one order.

    ``status`` and ``executed_qty`` are watched: a record created for an account (``account``)
    keeps that account's open-order aggregates (:attr:`AccountState.open_notional`,
    :attr:`AccountState.open_counts`) in step, whoever changes it.
    """

    __slots__ = (
        "_acct",
        "_cid",
        "_executed",
        "_status",
        "account_id",
        "cum_quote",
        "liquidation",
        "order_id",
        "orig_qty",
        "price",
        "reduce_only",
        "side",
        "symbol",
        "time_in_force",
        "time_ms",
        "type",
        "update_time_ms",
    )

    def __init__(
        self,
        order_id: int,
        client_order_id: str | None,
        account_id: str,
        symbol: str,
        side: str,
        type: str,
        time_in_force: str | None,
        price: Decimal | None,
        orig_qty: Decimal,
        reduce_only: bool,
        time_ms: int,
        executed_qty: Decimal = ZERO,
        cum_quote: Decimal = ZERO,
        status: str = "NEW",
        update_time_ms: int = 0,
        liquidation: bool = False,
        *,
        account: AccountState | None = None,
    ) -> None:
        self.order_id = order_id
        self._cid = client_order_id
        self.account_id = account_id
        self.symbol = symbol
        self.side = side
        self.type = type
        self.time_in_force = time_in_force
        self.price = price
        self.orig_qty = orig_qty
        self.reduce_only = reduce_only
        self.time_ms = time_ms
        self._executed = executed_qty
        self.cum_quote = cum_quote
        self._status = status
        self.update_time_ms = update_time_ms
        self.liquidation = liquidation
        self._acct = account
        if account is not None and status in OPEN_STATUSES:
            account._order_opened(self)

    @property
    def client_order_id(self) -> str:
        """The order's client id: the one it was placed with, or the venue's ``sim-<orderId>``.

        The generated id is made on demand, not stored (``_cid`` is None): a venue holding a
        million orders would otherwise keep a string and an index entry for each
        (benchmarks/bench_memory.py). :meth:`AccountState.order_id_for` finds it all the same.
        """
        cid = self._cid
        return f"{DEFAULT_CID_PREFIX}{self.order_id}" if cid is None else cid

    @client_order_id.setter
    def client_order_id(self, value: str) -> None:
        self._cid = value

    @property
    def status(self) -> str:
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        acct = self._acct
        if acct is not None:
            was, now = self._status in OPEN_STATUSES, value in OPEN_STATUSES
            if was and not now:
                acct._order_closed(self)
            elif now and not was:
                self._status = value
                acct._order_opened(self)
                return
        self._status = value

    @property
    def executed_qty(self) -> Decimal:
        return self._executed

    @executed_qty.setter
    def executed_qty(self, value: Decimal) -> None:
        acct = self._acct
        if (
            acct is not None
            and self._status in OPEN_STATUSES
            and not self.reduce_only
            and self.price
        ):
            acct._open_notional_add(
                self.symbol, _EXACT.multiply(_EXACT.subtract(self._executed, value), self.price)
            )
        self._executed = value

    def open_notional(self) -> Decimal:
        """``(orig - executed) x price`` exactly, the order's open notional (0 without price)."""
        if not self.price:
            return ZERO
        return _EXACT.multiply(_EXACT.subtract(self.orig_qty, self._executed), self.price)

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in _ORDER_FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, OrderRecord)  # noqa: S101 - narrowed by the class check
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value (like a dataclass)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in _ORDER_FIELDS)
        return f"OrderRecord({fields})"


_ORDER_FIELDS = (
    "order_id",
    "client_order_id",
    "account_id",
    "symbol",
    "side",
    "type",
    "time_in_force",
    "price",
    "orig_qty",
    "reduce_only",
    "time_ms",
    "executed_qty",
    "cum_quote",
    "status",
    "update_time_ms",
    "liquidation",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class FillRecord:
    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    maker: bool
    realized_pnl: Decimal
    time_ms: int
    liquidation: bool = False


class AccountState:
    """One account: wallets, positions, settings, orders and history.

    ``cross_wallet`` and ``exempt`` are watched like a position's fields (see
    :class:`PositionState`). :attr:`open_notional` and :attr:`open_counts` are kept by the
    account's :class:`OrderRecord` objects: per symbol, the exact open notional of the orders
    that hold margin (open, priced, not reduce-only) and the number of open orders.
    """

    __slots__ = (
        "_cross",
        "_drain",
        "_exempt",
        "_reserve",
        "_watch",
        "account_id",
        "client_ids",
        "fills",
        "income",
        "label",
        "leverages",
        "margin_modes",
        "open_counts",
        "open_notional",
        "open_total",
        "orders",
        "ordinal",
        "positions",
        "update_ms",
    )

    def __init__(
        self,
        account_id: str,
        label: str,
        cross_wallet: Decimal,
        exempt: bool = False,  # market maker and insurance fund: never margin-checked or liquidated
        positions: dict[str, PositionState] | None = None,
        margin_modes: dict[str, MarginMode] | None = None,
        leverages: dict[str, int] | None = None,
        orders: dict[int, OrderRecord] | None = None,
        client_ids: dict[str, int] | None = None,
        fills: list[FillRecord] | None = None,
        income: list[IncomeRecord] | None = None,
        update_ms: int = 0,
    ) -> None:
        self._watch: Watch | None = None
        self._drain = ZERO  # cross wallet decreases since keyed (see Watch)
        self._reserve = ZERO
        self.ordinal = -1  # position in the engine's account table, once registered
        self.account_id = account_id
        self.label = label
        self._cross = cross_wallet
        self._exempt = exempt
        self.positions = {} if positions is None else positions
        self.margin_modes = {} if margin_modes is None else margin_modes
        self.leverages = {} if leverages is None else leverages
        self.orders = {} if orders is None else orders
        self.client_ids = {} if client_ids is None else client_ids
        self.fills = [] if fills is None else fills
        self.income = [] if income is None else income
        self.update_ms = update_ms
        self.open_notional: dict[str, Decimal] = {}
        self.open_counts: dict[str, int] = {}
        self.open_total = 0

    @property
    def cross_wallet(self) -> Decimal:
        return self._cross

    @cross_wallet.setter
    def cross_wallet(self, value: Decimal) -> None:
        old = self._cross
        self._cross = value
        watch = self._watch
        if watch is not None:
            watch.version += 1
            if value < old:
                self._drain += old - value
                if self._drain > self._reserve:
                    watch.dirty.add(self)

    @property
    def exempt(self) -> bool:
        return self._exempt

    @exempt.setter
    def exempt(self, value: bool) -> None:
        self._exempt = value
        watch = self._watch
        if watch is not None:
            watch.version += 1
            watch.dirty.add(self)

    def watch(self, watch: Watch) -> None:
        """Report every later change of a wallet or position to ``watch``."""
        self._watch = watch
        for pos in self.positions.values():
            pos._owner = self

    # ------------------------------------------------------------------ open orders
    def _order_opened(self, rec: OrderRecord) -> None:
        symbol = rec.symbol
        counts = self.open_counts
        counts[symbol] = counts.get(symbol, 0) + 1
        self.open_total += 1
        price = rec.price
        if price and not rec.reduce_only:
            notional = self.open_notional
            notional[symbol] = _ADD(
                notional.get(symbol, ZERO), _MUL(_SUB(rec.orig_qty, rec._executed), price)
            )

    def _order_closed(self, rec: OrderRecord) -> None:
        symbol = rec.symbol
        self.open_counts[symbol] -= 1
        self.open_total -= 1
        if not rec.reduce_only and rec.price:
            self._open_notional_add(symbol, _EXACT.minus(rec.open_notional()))
        if not self.open_total and not any(self.open_notional.values()):
            # No open order left: drop the zero entries (an account with positions in many
            # symbols would otherwise keep a zero per symbol it ever had an order in).
            self.open_counts.clear()
            self.open_notional.clear()

    def _open_notional_add(self, symbol: str, amount: Decimal) -> None:
        self.open_notional[symbol] = _EXACT.add(self.open_notional.get(symbol, ZERO), amount)

    # ------------------------------------------------------------------ client order ids
    # ``client_ids`` indexes the ids orders were placed with (client id -> order id); the
    # generated ``sim-<orderId>`` of an order placed without one is not stored but found from
    # the order itself. Which order an id names is the one it was given to last, as if every
    # generated id were indexed when its order was made (order ids grow with time). An entry
    # -1 takes a generated id out of the index (see unindex_cid).
    def _default_owner(self, cid: str) -> int | None:
        """The order whose generated client id is ``cid``, or None."""
        if not cid.startswith(DEFAULT_CID_PREFIX):
            return None
        digits = cid[len(DEFAULT_CID_PREFIX) :]
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 20 or digits[0] == "0":
            return None
        rec = self.orders.get(int(digits))
        return rec.order_id if rec is not None and rec._cid is None else None

    def order_id_for(self, cid: str) -> int | None:
        """The order id the client id ``cid`` names in this account, or None."""
        known = self.client_ids.get(cid)
        generated = self._default_owner(cid)
        if known is None:
            return generated
        if known < 0:  # taken out of the index after its order was made (unindex_cid)
            return None
        return known if generated is None or known > generated else generated

    def unindex_cid(self, cid: str) -> None:
        """Take ``cid`` out of the index (``lost-ack-id-not-indexed``) until given again."""
        self.client_ids.pop(cid, None)
        if self._default_owner(cid) is not None:
            self.client_ids[cid] = -1  # the generated id of an order: it would be found

    # ------------------------------------------------------------------ positions
    def position(self, symbol: str, default_leverage: int) -> PositionState:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = PositionState(
                symbol,
                self.margin_modes.get(symbol, MarginMode.CROSS),
                self.leverages.get(symbol, default_leverage),
                owner=self,
            )
            self.positions[symbol] = pos
        return pos

    def open_positions(self) -> list[PositionState]:
        return [p for p in self.positions.values() if p._qty != 0]

    def wallet_total(self) -> Decimal:
        return self._cross + sum((p._iso for p in self.positions.values()), ZERO)

    def __repr__(self) -> str:
        return (
            f"AccountState(account_id={self.account_id!r}, label={self.label!r}, "
            f"cross_wallet={self._cross!r}, exempt={self._exempt!r}, "
            f"positions={self.positions!r})"
        )
