"""The hot path's record factories build the same objects as the dataclasses' constructors.

engine/records.py ``new_fill`` and ``new_income`` set the slots of the frozen dataclasses
directly; a field added to (or reordered in) a dataclass must fail here. ``trade_names`` shares
equal trade ids and their text between records (a memory measure): the values stay the same.
"""

from __future__ import annotations

import dataclasses
import pickle
from decimal import Decimal

import pytest

from adapters.sim.engine import records
from adapters.sim.engine.accounts import FillRecord
from adapters.sim.engine.records import (
    FILL_FIELDS,
    INCOME_FIELDS,
    new_fill,
    new_income,
    trade_names,
)
from harness.model import IncomeRecord, IncomeType, Side
from tests.sim.simkit import BTC, ETH, make_engine, market


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


def test_trade_names_share_equal_ids_and_their_text() -> None:
    first = trade_names(int("987654321"))
    again = trade_names(int("987654321"))
    assert first == (987654321, "987654321")
    assert again[0] is first[0]
    assert again[1] is first[1]


def test_trade_names_table_is_bounded() -> None:
    for n in range(3 * records._NAMES_SIZE):
        assert trade_names(n) == (n, str(n))
    assert len(records._NAMES) <= records._NAMES_SIZE


def test_fills_in_two_symbols_with_the_same_trade_id_share_it() -> None:
    engine = make_engine(seed=3)
    acct = engine.create_account(Decimal(100_000))
    engine._trade_seq[ETH] = engine._trade_seq[BTC]
    engine.place_order(acct.account_id, market(BTC, Side.BUY, "0.002"))
    engine.place_order(acct.account_id, market(ETH, Side.BUY, "0.05"))
    btc, eth = acct.fills
    assert btc.trade_id == eth.trade_id
    assert btc.trade_id is eth.trade_id
    infos = [r.info for r in acct.income if r.income_type is IncomeType.COMMISSION]
    assert infos == [str(btc.trade_id)] * 2
    assert infos[0] is infos[1]


def test_a_first_fill_of_the_whole_order_shares_the_order_quantity() -> None:
    # The fill path tells an order's first fill by the identity of its starting zero
    # (order_record.ZERO): a module with a zero of its own silently stopped the sharing once
    # (1,174 -> 1,851 bytes a position in bench_memory.py).
    engine = make_engine(seed=3)
    first, second = (engine.create_account(Decimal(100_000)) for _ in range(2))
    a = engine.place_order(first.account_id, market(BTC, Side.BUY, "0.002"))
    b = engine.place_order(second.account_id, market(BTC, Side.BUY, "0.002"))
    assert a.status == b.status == "FILLED"
    assert a.executed_qty is a.orig_qty  # one fill of the whole order: the same object
    assert b.executed_qty is b.orig_qty
    assert first.fills[0].qty is a.orig_qty
