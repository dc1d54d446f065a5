"""The gateway: weights, windows on the virtual clock, 429/418, and faults (engine/gateway.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.sim.config import SimConfig
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.gateway import (
    ENDPOINTS,
    Ack,
    Cost,
    Gateway,
    depth_weight,
    method_weights,
)
from harness.clock import VirtualClock
from harness.errors import Banned, ConfigError, RateLimited, Unavailable
from harness.model import OrderRequest, OrderType, Side
from harness.venue import Faults, RateLimits

BTC = "BTCUSDT"


@pytest.fixture
def engine() -> Engine:
    return Engine(SimConfig(seed=3), VirtualClock())


def _gate(engine: Engine) -> Gateway:
    return engine.gateway


def test_documented_weights_of_the_binance_endpoints() -> None:
    def weight(method: str, path: str, **params: str) -> int:
        return ENDPOINTS[(method, path)].cost(params).weight

    assert weight("GET", "/fapi/v1/exchangeInfo") == 1
    assert [weight("GET", "/fapi/v1/depth", limit=str(n)) for n in (5, 50, 100, 500, 1000)] == [
        2,
        2,
        5,
        10,
        20,
    ]
    assert weight("GET", "/fapi/v1/depth") == 10  # default limit 500
    assert weight("GET", "/fapi/v1/ticker/24hr", symbol=BTC) == 1
    assert weight("GET", "/fapi/v1/ticker/24hr") == 40
    assert weight("GET", "/fapi/v1/openOrders") == 40
    assert weight("GET", "/fapi/v3/account") == weight("GET", "/fapi/v3/positionRisk") == 5
    assert weight("GET", "/fapi/v1/income") == 30
    assert weight("GET", "/fapi/v1/commissionRate") == 20
    order = ENDPOINTS[("POST", "/fapi/v1/order")].cost({})
    assert (order.weight, order.orders, order.signed) == (0, True, True)


def test_method_weights_are_the_weights_of_the_calls_they_stand_for() -> None:
    weights = method_weights()
    assert weights["positions"] == weights["balance"] == 5
    assert weights["place_order"] == 0
    assert weights["open_orders"] == 1
    assert weights["open_orders:all"] == 40
    assert weights["liquidations"] == 20
    assert {k: v for k, v in weights.items() if k.startswith("order_book:")} == {
        f"order_book:{n}": depth_weight(n) for n in (5, 10, 20, 50, 100, 500, 1000)
    }


def test_weight_429_exactly_past_the_limit_and_nothing_charged(engine: Engine) -> None:
    gateway = _gate(engine)
    gateway.set_limits(RateLimits(weight_per_minute=10))
    for i in range(5):
        assert gateway.enter("ip", Cost(weight=2)).used_weight_1m == 2 * (i + 1)
    with pytest.raises(RateLimited) as info:
        gateway.enter("other-ip", Cost(weight=11))
    assert info.value.code == -1003
    assert gateway.usage("ip").used_weight_1m == 10
    assert gateway.usage("other-ip").used_weight_1m == 0  # a refused request charges nothing


def test_retry_after_counts_to_the_end_of_the_minute_window(engine: Engine) -> None:
    gateway = _gate(engine)
    gateway.set_limits(RateLimits(weight_per_minute=1))
    engine.clock.advance(15_500)  # 15.5 s into the minute
    gateway.enter("ip", Cost(weight=1))
    with pytest.raises(RateLimited) as info:
        gateway.enter("ip", Cost(weight=1))
    assert info.value.retry_after == Decimal(45)  # ceil(44.5 s)


def test_sending_inside_retry_after_is_banned_until_the_ban_ends(engine: Engine) -> None:
    gateway = _gate(engine)
    gateway.set_limits(RateLimits(weight_per_minute=1, ban_ms=120_000))
    gateway.enter("ip", Cost(weight=1))
    with pytest.raises(RateLimited):
        gateway.enter("ip", Cost(weight=1))
    engine.clock.advance(1_000)
    with pytest.raises(Banned) as ban:
        gateway.enter("ip", Cost(weight=0))
    assert ban.value.retry_after == Decimal(120)
    engine.clock.advance(119_000)
    with pytest.raises(Banned) as still:
        gateway.enter("ip", Cost(weight=0))
    assert still.value.retry_after == Decimal(1)
    engine.clock.advance(1_000)
    assert gateway.enter("ip", Cost(weight=1)).used_weight_1m == 1


def test_waiting_the_retry_after_is_not_punished(engine: Engine) -> None:
    gateway = _gate(engine)
    gateway.set_limits(RateLimits(weight_per_minute=1))
    gateway.enter("ip", Cost(weight=1))
    with pytest.raises(RateLimited) as info:
        gateway.enter("ip", Cost(weight=1))
    assert info.value.retry_after is not None
    engine.clock.advance(int(info.value.retry_after) * 1000)
    assert gateway.enter("ip", Cost(weight=1)).used_weight_1m == 1


def test_order_windows_refuse_with_1015_whatever_the_weight(engine: Engine) -> None:
    gateway = _gate(engine)
    gateway.set_limits(RateLimits(orders_per_10s=3, orders_per_minute=5))
    order = Cost(weight=0, orders=True, signed=True)
    for _ in range(3):
        gateway.admit("ip", order, "acct-1")
    with pytest.raises(RateLimited) as ten:
        gateway.admit("ip", order, "acct-1")
    assert ten.value.code == -1015
    assert "TEN_SECONDS" in str(ten.value)
    assert gateway.admit("ip", order, "acct-2").order_count_10s == 1  # per account
    engine.clock.advance(10_000)
    gateway.admit("ip", order, "acct-1")
    gateway.admit("ip", order, "acct-1")
    with pytest.raises(RateLimited) as minute:
        gateway.admit("ip", order, "acct-1")
    assert "MINUTE" in str(minute.value)
    assert gateway.usage("ip", "acct-1").order_count_1m == 5
    assert gateway.usage("ip").used_weight_1m == 0


def test_tightening_a_limit_applies_to_the_window_in_progress(engine: Engine) -> None:
    gateway = _gate(engine)
    for _ in range(5):
        gateway.enter("ip", Cost(weight=5))
    gateway.set_limits(RateLimits(weight_per_minute=20))
    with pytest.raises(RateLimited):
        gateway.enter("ip", Cost(weight=5))


def test_bad_limits_and_faults_are_refused_with_the_culprit(engine: Engine) -> None:
    with pytest.raises(ConfigError, match="weight_per_minute=-1"):
        _gate(engine).set_limits(RateLimits(weight_per_minute=-1))
    with pytest.raises(ConfigError, match="latency_ms=-5"):
        _gate(engine).set_faults(Faults(latency_ms=-5))
    with pytest.raises(ConfigError, match="fraction"):
        _gate(engine).set_faults(Faults(deplete=(BTC, Side.BUY, Decimal(2))))
    with pytest.raises(ConfigError, match="unknown symbol"):
        _gate(engine).set_faults(Faults(deplete=("XYZ", Side.BUY, Decimal("0.5"))))


def test_maintenance_and_error_burst_answer_unavailable_and_charge_nothing(engine: Engine) -> None:
    gateway = _gate(engine)
    gateway.set_faults(Faults(error_burst=2))
    for _ in range(2):
        with pytest.raises(Unavailable):
            gateway.enter("ip", Cost(weight=5))
    assert gateway.faults.error_burst == 0
    assert gateway.enter("ip", Cost(weight=5)).used_weight_1m == 5
    gateway.set_faults(Faults(maintenance=True))
    for _ in range(3):
        with pytest.raises(Unavailable):
            gateway.enter("ip", Cost(weight=1))
    gateway.set_faults(Faults())
    assert gateway.usage("ip").used_weight_1m == 5


def test_latency_moves_a_signed_request_later_in_virtual_time(engine: Engine) -> None:
    gateway = _gate(engine)
    gateway.set_faults(Faults(latency_ms=2_500))
    start = engine.clock.now_ms()
    gateway.admit("ip", Cost(weight=1))
    assert engine.clock.now_ms() == start  # public: no latency
    gateway.admit("ip", Cost(weight=1, signed=True))
    assert engine.clock.now_ms() == start + 2_500


def test_lost_acks_are_counted_down(engine: Engine) -> None:
    gateway = _gate(engine)
    gateway.set_faults(Faults(lost_ack=2))
    rec = engine.place_order(
        engine.create_account(Decimal(1000)).account_id,
        OrderRequest(symbol=BTC, side=Side.BUY, type=OrderType.MARKET, quantity=Decimal("0.002")),
    )
    acks = [gateway.acknowledge(rec.account_id, rec) for _ in range(3)]
    assert acks == [Ack.LOST, Ack.LOST, Ack.SENT]


def test_deplete_removes_a_fraction_of_the_market_makers_side(engine: Engine) -> None:
    book = engine.books[BTC]
    bids = sum((q for _, q in book.levels(Side.BUY, 1000)), Decimal(0))
    asks = book.levels(Side.SELL, 1000)
    _gate(engine).set_faults(Faults(deplete=(BTC, Side.BUY, Decimal("0.5"))))
    after = sum((q for _, q in book.levels(Side.BUY, 1000)), Decimal(0))
    assert bids / 2 - Decimal("0.02") <= after <= bids / 2 + Decimal("0.02")  # step rounding
    assert book.levels(Side.SELL, 1000) == asks
    assert _gate(engine).faults.deplete is None  # one-shot, not a standing fault
    maker = engine.market_maker.account
    for order in book.orders_of(maker.account_id):  # records stay consistent with the book
        rec = maker.orders[order.order_id]
        assert rec.orig_qty - rec.executed_qty == order.remaining
    _gate(engine).set_faults(Faults(deplete=(BTC, Side.SELL, Decimal(1))))
    assert book.best_ask() is None
