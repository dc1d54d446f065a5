"""The hot path's record factories build the same objects as the dataclasses' constructors.

engine/records.py ``new_fill`` and ``new_income`` set the slots of the frozen dataclasses
directly; a field added to (or reordered in) a dataclass must fail here.
"""

from __future__ import annotations

import dataclasses
import pickle
from decimal import Decimal

import pytest

from adapters.sim.engine.accounts import FillRecord
from adapters.sim.engine.records import FILL_FIELDS, INCOME_FIELDS, new_fill, new_income
from harness.model import IncomeRecord, IncomeType


def test_new_fill_is_the_dataclass_built_by_its_constructor() -> None:
    values = {
        "trade_id": 7,
        "order_id": 11,
        "symbol": "BTCUSDT",
        "side": "SELL",
        "price": Decimal("60000.1"),
        "qty": Decimal("0.002"),
        "commission": Decimal("0.06000010"),
        "maker": True,
        "realized_pnl": Decimal("-1.5"),
        "time_ms": 123,
        "liquidation": True,
    }
    names = [f.name for f in dataclasses.fields(FillRecord)]
    assert names == list(values) == list(FILL_FIELDS)  # the factory's arguments: field order
    built = new_fill(*values.values())  # type: ignore[arg-type]
    expected = FillRecord(**values)  # type: ignore[arg-type]
    assert built == expected
    assert repr(built) == repr(expected)
    assert dataclasses.asdict(built) == values
    assert pickle.loads(pickle.dumps(built)) == expected  # noqa: S301 - our own bytes
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.qty = Decimal(1)  # type: ignore[misc]


def test_new_income_is_the_dataclass_built_by_its_constructor() -> None:
    values = {
        "income_type": IncomeType.COMMISSION,
        "amount": Decimal("-0.06"),
        "asset": "USDT",
        "symbol": "ETHUSDT",
        "time_ms": 5,
        "tran_id": 9,
        "info": "42",
    }
    names = [f.name for f in dataclasses.fields(IncomeRecord)]
    assert names == list(values) == list(INCOME_FIELDS)
    built = new_income(*values.values())  # type: ignore[arg-type]
    expected = IncomeRecord(**values)  # type: ignore[arg-type]
    assert built == expected
    assert repr(built) == repr(expected)
    assert pickle.loads(pickle.dumps(built)) == expected  # noqa: S301 - our own bytes
