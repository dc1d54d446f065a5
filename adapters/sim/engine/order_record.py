"""The venue's order and fill records (perp-mechanics.md §4).

:class:`OrderRecord` is the venue's record of one order: its watched fields keep the owning
account's open-order aggregates (engine/accounts.py) in step. :class:`FillRecord` is one fill
of an order (built on the hot path by engine/records.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters.sim.engine.accounts import AccountState

__all__ = ["DEFAULT_CID_PREFIX", "OPEN_STATUSES", "ORDER_FIELDS", "FillRecord", "OrderRecord"]

#: An order record's executed quantity before its first fill. The fill path tells a first fill
#: by this object's identity (``executed is ZERO``: engine/matching.py), so every module that
#: creates records or fills them imports this one.
ZERO = Decimal(0)
OPEN_STATUSES = frozenset(("NEW", "PARTIALLY_FILLED"))
#: the venue's client order id for an order placed without one: this prefix and the order id.
DEFAULT_CID_PREFIX = "sim-"
# Aggregates (sums of notionals) are kept exactly: no rounding at any size.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


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
        return tuple(getattr(self, name) for name in ORDER_FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, OrderRecord)  # noqa: S101 - narrowed by the class check
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value (like a dataclass)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in ORDER_FIELDS)
        return f"OrderRecord({fields})"


#: An order record's fields: its equality, repr and the engine digests (tests/sim/digest.py).
ORDER_FIELDS = (
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
