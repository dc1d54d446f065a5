"""Accounts as the simulator computes them (perp-mechanics.md §4, §6): :class:`AccountState`.

The simulator's own implementation, written independently of ``harness.oracle``. One-way mode:
one signed position per symbol. Cross positions share the cross wallet; an isolated position
holds its margin in its own wallet (``isolated_wallet``), moved out of the cross wallet when the
position grows and back when it shrinks.

What an account holds is defined next to it and re-exported here: positions and their watcher
(engine/positions.py), order and fill records (engine/order_record.py), and the margin
arithmetic over leverage brackets (engine/margin.py).
"""

from __future__ import annotations

from decimal import Decimal

from adapters.sim.engine.margin import (
    bracket_at,
    liquidation_price,
    maint_margin,
    max_notional_for_leverage,
)
from adapters.sim.engine.order_record import (
    _EXACT,
    DEFAULT_CID_PREFIX,
    OPEN_STATUSES,
    FillRecord,
    OrderRecord,
)
from adapters.sim.engine.positions import PositionState, Watch
from harness.model import (
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
_ADD, _SUB, _MUL = _EXACT.add, _EXACT.subtract, _EXACT.multiply


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
