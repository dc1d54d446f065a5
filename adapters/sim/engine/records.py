"""Fill and income records built for the hot path: the same objects as their constructors give.

:class:`FillRecord` and :class:`~harness.model.IncomeRecord` are frozen slotted dataclasses, whose
generated ``__init__`` sets each field through ``object.__setattr__``, looking the slot up by name:
on a fill that cost about as much as the rest of the fill's bookkeeping. These factories create
the object and set each slot through its own descriptor, taken once; the result is the same
object (class, fields, equality, repr, pickling). tests/sim/test_record_factories.py compares
them with the constructors, field list included.

:func:`trade_names` shares a trade id and its text (the ``info`` of the fill's income records)
between the symbols' trades: trade ids count per symbol, so symbols trading at similar rates
reuse the same numbers, and each record would otherwise hold its own int and string (about 80
bytes a fill; benchmarks/bench_memory.py). Ints and strings are immutable and compared by value:
sharing changes no answer.
"""

from __future__ import annotations

from decimal import Decimal

from adapters.sim.engine.accounts import FillRecord
from harness.model import IncomeRecord, IncomeType

__all__ = ["FILL_FIELDS", "INCOME_FIELDS", "new_fill", "new_income", "trade_names"]

FILL_FIELDS = (
    "trade_id",
    "order_id",
    "symbol",
    "side",
    "price",
    "qty",
    "commission",
    "maker",
    "realized_pnl",
    "time_ms",
    "liquidation",
)
INCOME_FIELDS = ("income_type", "amount", "asset", "symbol", "time_ms", "tran_id", "info")

_NEW = object.__new__
_NAMES: dict[int, tuple[int, str]] = {}
_NAMES_SIZE = 4096  # recent trade ids; the table starts over when full
(_F0, _F1, _F2, _F3, _F4, _F5, _F6, _F7, _F8, _F9, _F10) = (
    getattr(FillRecord, name).__set__ for name in FILL_FIELDS
)
(_I0, _I1, _I2, _I3, _I4, _I5, _I6) = (
    getattr(IncomeRecord, name).__set__ for name in INCOME_FIELDS
)


def new_fill(
    trade_id: int,
    order_id: int,
    symbol: str,
    side: str,
    price: Decimal,
    qty: Decimal,
    commission: Decimal,
    maker: bool,
    realized_pnl: Decimal,
    time_ms: int,
    liquidation: bool,
) -> FillRecord:
    """``FillRecord(...)`` with these fields (in field order)."""
    fill: FillRecord = _NEW(FillRecord)
    _F0(fill, trade_id)
    _F1(fill, order_id)
    _F2(fill, symbol)
    _F3(fill, side)
    _F4(fill, price)
    _F5(fill, qty)
    _F6(fill, commission)
    _F7(fill, maker)
    _F8(fill, realized_pnl)
    _F9(fill, time_ms)
    _F10(fill, liquidation)
    return fill


def new_income(
    income_type: IncomeType,
    amount: Decimal,
    asset: str,
    symbol: str,
    time_ms: int,
    tran_id: int,
    info: str,
) -> IncomeRecord:
    """``IncomeRecord(...)`` with these fields (in field order)."""
    record: IncomeRecord = _NEW(IncomeRecord)
    _I0(record, income_type)
    _I1(record, amount)
    _I2(record, asset)
    _I3(record, symbol)
    _I4(record, time_ms)
    _I5(record, tran_id)
    _I6(record, info)
    return record


def trade_names(trade_id: int) -> tuple[int, str]:
    """``(trade_id, str(trade_id))``, objects shared with earlier calls for the same number."""
    found = _NAMES.get(trade_id)
    if found is None:
        if len(_NAMES) >= _NAMES_SIZE:
            _NAMES.clear()
        found = _NAMES[trade_id] = (trade_id, str(trade_id))
    return found
