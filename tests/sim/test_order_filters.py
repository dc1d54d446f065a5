"""Order entry: each Binance rejection code, its message, and that a rejection leaves no trace.

Source: binance-usdm-surface.md §4; adapters/sim/engine/orders.py and Engine.place_order.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.sim.config import default_instruments
from adapters.sim.engine.accounts import AccountState
from adapters.sim.engine.exchange import Engine
from harness.errors import Rejected
from harness.model import MarginMode, OrderRequest, Side, TimeInForce
from tests.sim.simkit import (
    BTC,
    ETH,
    limit,
    make_engine,
    market,
    open_position,
    quiet_instruments,
    rejects,
)

D = Decimal
BUY, SELL = Side.BUY, Side.SELL

PRECISION = "Precision is over the maximum defined for this asset."


def _setup(balance: str = "10000") -> tuple[Engine, AccountState]:
    engine = make_engine()
    return engine, engine.create_account(D(balance))


NOTIONAL = "Order's notional must be no smaller than {} (unless you choose reduce only)."
FOK = "Due to the order could not be filled immediately, the FOK order has been rejected."
REJECTIONS = [
    pytest.param(limit(BTC, BUY, "0", "59000"), -4003, "Quantity less than zero.", id="qty-0"),
    pytest.param(limit(BTC, BUY, "-0.010", "59000"), -4003, "Quantity less than zero.", id="qty<0"),
    pytest.param(limit(BTC, BUY, "0.0105", "59000"), -1111, PRECISION, id="qty-decimals"),
    pytest.param(limit(BTC, BUY, "0.010", "59000.123"), -1111, PRECISION, id="price-decimals"),
    pytest.param(
        limit(BTC, BUY, "1000.001", "59000"), -4005, "Quantity greater than max quantity.", id="max"
    ),
    pytest.param(
        market(BTC, BUY, "120.001"), -4005, "Quantity greater than max quantity.", id="mkt-max"
    ),
    pytest.param(
        limit(BTC, BUY, "0.010", "59000.05"), -4014, "Price not increased by tick size.", id="tick"
    ),
    pytest.param(
        limit(BTC, BUY, "0.010", "556.70"), -4013, "Price less than min price.", id="min-price"
    ),
    pytest.param(
        limit(BTC, SELL, "0.010", "4529764.1"), -4002, "Price greater than max price.", id="max-p"
    ),
    pytest.param(limit(BTC, BUY, "0.010", "0"), -4001, "Price less than 0.", id="price-0"),
    pytest.param(limit(BTC, BUY, "0.010", "-1"), -4001, "Price less than 0.", id="price<0"),
    pytest.param(limit(BTC, BUY, "0.001", "59000"), -4164, NOTIONAL.format(100), id="notional"),
    pytest.param(market(BTC, BUY, "0.001"), -4164, NOTIONAL.format(100), id="mkt-notional"),
    pytest.param(limit(ETH, BUY, "0.005", "2999"), -4164, NOTIONAL.format(20), id="eth-notional"),
    pytest.param(
        limit(BTC, SELL, "0.010", "61000", reduce_only=True),
        -2022,
        "ReduceOnly Order is rejected.",
        id="reduce-only-flat",
    ),
    pytest.param(limit(BTC, BUY, "100", "60100", TimeInForce.FOK), -5021, FOK, id="fok"),
    pytest.param(market(BTC, BUY, "5"), -2019, "Margin is insufficient.", id="margin"),
    pytest.param(limit("DOGEUSDT", BUY, "1", "1"), -1121, "Invalid symbol.", id="symbol"),
]


@pytest.mark.parametrize(("req", "code", "msg"), REJECTIONS)
def test_a_filter_violation_is_rejected_with_the_venue_code_and_leaves_no_trace(
    req: OrderRequest, code: int, msg: str
) -> None:
    engine, acct = _setup()
    err = rejects(engine, acct, req, code)
    assert err.msg == msg


def test_quantity_below_the_minimum_is_rejected_with_4004() -> None:
    # The default instruments have min_qty == step_size, so any positive quantity that passes the
    # precision check is >= min_qty; a coarser minimum makes -4004 reachable.
    engine = make_engine(instruments=quiet_instruments(min_qty=D("0.010")))
    acct = engine.create_account(D(10000))
    err = rejects(engine, acct, limit(BTC, BUY, "0.005", "59000"), -4004)
    assert err.msg == "Quantity less than min quantity."


def test_quantity_off_the_step_with_allowed_decimals_is_rejected_with_4023() -> None:
    # step 0.002 from min 0.001: 0.003 is on step, 0.004 has three decimals but is off step.
    engine = make_engine(instruments=quiet_instruments(step_size=D("0.002")))
    acct = engine.create_account(D(10000))
    err = rejects(engine, acct, limit(BTC, BUY, "0.004", "59000"), -4023)
    assert err.msg == "Qty not increased by step size."
    assert engine.place_order(acct.account_id, limit(BTC, BUY, "0.003", "59000")).status == "NEW"


@given(
    qty=st.decimals(
        min_value=D("0.001"), max_value=D(1000), places=3, allow_nan=False, allow_infinity=False
    )
)
def test_default_btc_quantity_passing_precision_is_always_on_step(qty: Decimal) -> None:
    # Why -4023 needs a custom instrument: with step == min_qty == 0.001 it cannot be reached.
    inst = default_instruments()[BTC].instrument
    assert inst.on_step(qty)


def test_market_orders_use_the_market_max_quantity_and_limits_the_limit_max() -> None:
    engine, acct = _setup()
    rejects(engine, acct, market(BTC, BUY, "120.001"), -4005)
    # The same size as a LIMIT passes the quantity filter and fails later, on margin.
    rejects(engine, acct, limit(BTC, BUY, "120.001", "59000"), -2019)


def test_reduce_only_is_exempt_from_min_notional() -> None:
    engine, acct = _setup()
    open_position(engine, acct, BTC, BUY, "0.010")
    rec = engine.place_order(acct.account_id, market(BTC, SELL, "0.001", reduce_only=True))
    assert rec.status == "FILLED"
    assert acct.positions[BTC].qty == D("0.009")


def test_reduce_only_on_the_same_side_as_the_position_is_rejected() -> None:
    engine, acct = _setup()
    open_position(engine, acct, BTC, BUY, "0.010")
    err = rejects(engine, acct, market(BTC, BUY, "0.010", reduce_only=True), -2022)
    assert err.msg == "ReduceOnly Order is rejected."


@pytest.mark.parametrize("cid", ["has space", "x" * 37, "semi;colon", ""])
def test_an_illegal_client_order_id_is_rejected_with_1100(cid: str) -> None:
    engine, acct = _setup()
    err = rejects(engine, acct, limit(BTC, BUY, "0.010", "59000", cid=cid), -1100)
    assert err.msg.startswith("Illegal characters found in parameter 'newClientOrderId'")


def test_a_legal_client_order_id_of_36_characters_is_accepted() -> None:
    engine, acct = _setup()
    cid = "aZ09.:/_-" * 4
    rec = engine.place_order(acct.account_id, limit(BTC, BUY, "0.010", "59000", cid=cid))
    assert rec.client_order_id == cid
    assert engine.get_order(acct.account_id, BTC, None, cid) is rec


def test_a_duplicate_client_order_id_is_rejected_with_4116() -> None:
    engine, acct = _setup()
    engine.place_order(acct.account_id, limit(BTC, BUY, "0.010", "59000", cid="same"))
    err = rejects(engine, acct, limit(BTC, BUY, "0.010", "58000", cid="same"), -4116)
    assert err.msg == "clientOrderId is duplicated"


def test_a_crossing_post_only_order_is_rejected_with_5022() -> None:
    engine, acct = _setup()
    ask = engine.books[BTC].best_ask()
    assert ask is not None
    err = rejects(engine, acct, limit(BTC, BUY, "0.010", ask, TimeInForce.GTX), -5022)
    assert "Post Only order will be rejected" in err.msg
    rec = engine.place_order(
        acct.account_id, limit(BTC, BUY, "0.010", ask - D("0.1"), TimeInForce.GTX)
    )
    assert rec.status == "NEW"


def test_fok_counts_only_other_accounts_liquidity() -> None:
    engine, acct = _setup()
    book = engine.books[BTC]
    ask = book.best_ask()
    assert ask is not None
    top = book.levels(Side.SELL, 1)[0][1]
    # The account's own ask inside the spread would self-trade (expire), so it does not count.
    engine.place_order(acct.account_id, limit(BTC, SELL, "0.500", ask - D("0.5")))
    rejects(engine, acct, limit(BTC, BUY, str(top + D("0.001")), ask, TimeInForce.FOK), -5021)
    rec = engine.place_order(acct.account_id, limit(BTC, BUY, str(top), ask, TimeInForce.FOK))
    assert rec.status == "FILLED"


def test_margin_check_reserves_the_taker_fee() -> None:
    # 0.1 BTC at 59000, 20x: initial margin 295 plus the worst-case fee 2.95.
    ok_engine, ok = _setup("297.95")
    assert ok_engine.place_order(ok.account_id, limit(BTC, BUY, "0.100", "59000")).status == "NEW"
    engine, short_by_one_unit = _setup("297.94999999")
    rejects(engine, short_by_one_unit, limit(BTC, BUY, "0.100", "59000"), -2019)


def test_position_beyond_the_leverage_cap_is_rejected_with_2027() -> None:
    engine, acct = _setup("100000")
    engine.set_leverage(acct.account_id, BTC, 125)  # tier 1 only: notional < 50 000
    err = rejects(engine, acct, limit(BTC, BUY, "0.900", "59000"), -2027)
    assert err.msg == "Exceeded the maximum allowable position at current leverage."
    assert engine.place_order(acct.account_id, limit(BTC, BUY, "0.800", "59000")).status == "NEW"


@pytest.mark.parametrize(("symbol", "leverage"), [(BTC, 0), (BTC, 126), (BTC, -1), (ETH, 101)])
def test_leverage_outside_the_brackets_is_rejected_with_4028(symbol: str, leverage: int) -> None:
    engine, acct = _setup()
    with pytest.raises(Rejected) as info:
        engine.set_leverage(acct.account_id, symbol, leverage)
    assert (info.value.code, info.value.msg) == (-4028, f"Leverage {leverage} is not valid")
    assert acct.leverages == {}


def test_leverage_that_would_exceed_the_position_cap_is_rejected_with_2027() -> None:
    engine, acct = _setup("100000")
    open_position(engine, acct, BTC, BUY, "1.000", leverage=20)
    with pytest.raises(Rejected) as info:
        engine.set_leverage(acct.account_id, BTC, 125)
    assert info.value.code == -2027
    assert acct.positions[BTC].leverage == 20


def test_lowering_leverage_without_margin_for_open_orders_is_rejected_with_2028() -> None:
    engine, acct = _setup("500")
    engine.set_leverage(acct.account_id, BTC, 50)
    engine.place_order(acct.account_id, limit(BTC, BUY, "0.300", "59000"))  # IM 354
    with pytest.raises(Rejected) as info:
        engine.set_leverage(acct.account_id, BTC, 10)  # IM would be 1770
    assert info.value.code == -2028
    assert info.value.msg == "Leverage is smaller than permitted: insufficient margin balance."
    assert (acct.positions[BTC].leverage, acct.leverages[BTC]) == (50, 50)
    assert engine.set_leverage(acct.account_id, BTC, 75) == 75  # raising is always fine


def test_margin_type_changes_follow_4046_4047_4048() -> None:
    engine, acct = _setup()
    aid = acct.account_id

    def code_of(mode: MarginMode) -> tuple[int, str]:
        with pytest.raises(Rejected) as info:
            engine.set_margin_mode(aid, BTC, mode)
        return info.value.code, info.value.msg

    assert code_of(MarginMode.CROSS) == (-4046, "No need to change margin type.")
    rec = engine.place_order(aid, limit(BTC, BUY, "0.010", "59000"))
    assert code_of(MarginMode.ISOLATED) == (
        -4047,
        "Margin type cannot be changed if there exists open orders.",
    )
    engine.set_margin_mode(aid, ETH, MarginMode.ISOLATED)  # other symbol: no open orders there
    engine.cancel_order(aid, BTC, rec.order_id, None)
    open_position(engine, acct, BTC, BUY, "0.010")
    assert code_of(MarginMode.ISOLATED) == (
        -4048,
        "Margin type cannot be changed if there exists position.",
    )
    assert acct.positions[BTC].margin_mode is MarginMode.CROSS
    assert acct.positions[ETH].margin_mode is MarginMode.ISOLATED


def test_unknown_symbol_is_rejected_with_1121_everywhere() -> None:
    engine, acct = _setup()
    aid = acct.account_id
    calls: list[Callable[[], object]] = [
        lambda: engine.cancel_order(aid, "DOGEUSDT", 1, None),
        lambda: engine.get_order(aid, "DOGEUSDT", 1, None),
        lambda: engine.set_leverage(aid, "DOGEUSDT", 5),
        lambda: engine.set_margin_mode(aid, "DOGEUSDT", MarginMode.ISOLATED),
    ]
    for call in calls:
        with pytest.raises(Rejected) as info:
            call()
        assert (info.value.code, info.value.msg) == (-1121, "Invalid symbol.")


def test_cancel_of_an_unknown_or_closed_order_is_rejected_with_2011() -> None:
    engine, acct = _setup()
    aid = acct.account_id
    filled = engine.place_order(aid, market(BTC, BUY, "0.010"))
    resting = engine.place_order(aid, limit(BTC, BUY, "0.010", "59000", cid="c1"))
    engine.cancel_order(aid, BTC, None, "c1")
    assert resting.status == "CANCELED"
    for order_id, cid in [(999_999, None), (None, "nope"), (filled.order_id, None), (None, "c1")]:
        with pytest.raises(Rejected) as info:
            engine.cancel_order(aid, BTC, order_id, cid)
        assert (info.value.code, info.value.msg) == (-2011, "Unknown order sent.")
    with pytest.raises(Rejected) as info:  # the order exists, but under another symbol
        engine.cancel_order(aid, ETH, resting.order_id, None)
    assert info.value.code == -2011


def test_query_of_an_unknown_order_is_rejected_with_2013() -> None:
    engine, acct = _setup()
    other = engine.create_account(D(10000))
    rec = engine.place_order(acct.account_id, limit(BTC, BUY, "0.010", "59000", cid="mine"))
    assert engine.get_order(acct.account_id, BTC, rec.order_id, None) is rec
    for account_id, symbol, order_id, cid in [
        (acct.account_id, BTC, 999_999, None),
        (acct.account_id, BTC, None, "nope"),
        (acct.account_id, ETH, rec.order_id, None),
        (other.account_id, BTC, rec.order_id, None),  # another account's order is not visible
        (acct.account_id, BTC, None, None),
    ]:
        with pytest.raises(Rejected) as info:
            engine.get_order(account_id, symbol, order_id, cid)
        assert (info.value.code, info.value.msg) == (-2013, "Order does not exist.")


def test_a_rejected_order_does_not_consume_an_order_id() -> None:
    engine, acct = _setup()
    first = engine.place_order(acct.account_id, limit(BTC, BUY, "0.010", "59000"))
    rejects(engine, acct, limit(BTC, BUY, "0.010", "59000.05"), -4014)
    second = engine.place_order(acct.account_id, limit(BTC, BUY, "0.010", "59000"))
    assert second.order_id == first.order_id + 1
