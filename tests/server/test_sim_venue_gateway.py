"""The in-process venue goes through the same gateway: weights, usage, 429/418, faults."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.sim.engine.gateway import method_weights
from adapters.sim.venue import SimVenue, open_sim_venue
from harness.errors import Banned, RateLimited, Rejected, Unavailable
from harness.model import (
    ClientOrderId,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from harness.venue import Capability, Faults, RateLimits, RateUsage, VenueConfig

BTC = "BTCUSDT"


async def _venue() -> SimVenue:
    return await open_sim_venue(VenueConfig(seed=5))


def _resting(cid: str, price: str = "59000") -> OrderRequest:
    return OrderRequest(
        symbol=BTC,
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("0.002"),
        price=Decimal(price),
        time_in_force=TimeInForce.GTC,
        client_order_id=ClientOrderId(cid),
    )


@pytest.mark.asyncio
async def test_rules_publish_each_methods_documented_weight() -> None:
    venue = await _venue()
    assert venue.rules.method_weights == method_weights()
    assert {
        Capability.READ_RATE_LIMITS,
        Capability.CONTROL_RATE_LIMITS,
        Capability.CONTROL_FAULTS,
    } <= venue.capabilities


@pytest.mark.asyncio
async def test_rate_usage_grows_by_each_calls_weight_and_orders_show_counts() -> None:
    venue = await _venue()
    account = venue.account()
    assert venue.rate_usage == RateUsage()
    weights = venue.rules.method_weights
    await venue.mark(BTC)
    assert venue.rate_usage.used_weight_1m == weights["mark"]
    await venue.order_book(BTC, 100)
    await account.positions()
    await account.balance()
    expected = weights["mark"] + weights["order_book:100"] + 2 * weights["positions"]
    assert venue.rate_usage == RateUsage(used_weight_1m=expected)
    await account.place_order(_resting("w-1"))
    assert venue.rate_usage == RateUsage(
        used_weight_1m=expected, order_count_10s=1, order_count_1m=1
    )
    await venue.order_book(BTC, 25)  # a limit Binance does not list: weighed by its rule (2)
    assert venue.rate_usage.used_weight_1m == expected + 2
    await venue.control.advance(60_000)
    await venue.mark(BTC)
    assert venue.rate_usage.used_weight_1m == weights["mark"]  # a new minute


@pytest.mark.asyncio
async def test_429_then_418_are_exceptions_in_process() -> None:
    venue = await _venue()
    account = venue.account()
    await venue.control.set_rate_limits(RateLimits(weight_per_minute=12))
    await account.positions()
    await account.balance()
    with pytest.raises(RateLimited) as limited:
        await account.positions()
    assert limited.value.code == -1003
    assert limited.value.retry_after == Decimal(60)
    assert venue.rate_usage.used_weight_1m == 10
    with pytest.raises(Banned) as banned:
        await venue.mark(BTC)
    assert banned.value.retry_after == Decimal(120)
    await venue.control.advance(120_000)
    await venue.mark(BTC)


@pytest.mark.asyncio
async def test_order_window_refuses_the_sixth_order_with_1015() -> None:
    venue = await _venue()
    account = venue.account()
    await venue.control.set_rate_limits(RateLimits(orders_per_10s=5))
    for i in range(5):
        await account.place_order(_resting(f"o-{i}"))
    with pytest.raises(RateLimited) as info:
        await account.place_order(_resting("o-5"))
    assert info.value.code == -1015
    assert len(await account.open_orders(BTC)) == 5
    await venue.control.advance(10_000)
    await account.place_order(_resting("o-6"))


@pytest.mark.asyncio
async def test_accounts_opened_by_control_are_other_participants_with_their_own_weight() -> None:
    venue = await _venue()
    await venue.control.set_rate_limits(RateLimits(weight_per_minute=5))
    await venue.account().positions()
    other = await venue.control.create_account(Decimal(1000), label="other")
    await other.positions()  # its own seat: not limited by the first account's weight
    assert venue.rate_usage.used_weight_1m == 5
    with pytest.raises(RateLimited):
        await venue.account().balance()


@pytest.mark.asyncio
async def test_faults_in_process_unavailable_executes_nothing() -> None:
    venue = await _venue()
    account = venue.account()
    await venue.control.set_faults(Faults(error_burst=2))
    for _ in range(2):
        with pytest.raises(Unavailable):
            await account.place_order(_resting("burst"))
    await venue.control.set_faults(Faults(maintenance=True))
    with pytest.raises(Unavailable):
        await venue.mark(BTC)
    await venue.control.set_faults(Faults())
    with pytest.raises(Rejected) as info:
        await account.get_order(BTC, client_order_id=ClientOrderId("burst"))
    assert info.value.code == -2013


@pytest.mark.asyncio
async def test_lost_ack_in_process_raises_unavailable_but_the_order_exists() -> None:
    venue = await _venue()
    account = venue.account()
    await venue.control.set_faults(Faults(lost_ack=1))
    with pytest.raises(Unavailable, match="lost"):
        await account.place_order(_resting("lost-1"))
    found = await account.get_order(BTC, client_order_id=ClientOrderId("lost-1"))
    assert found.status is OrderStatus.NEW
    await account.place_order(_resting("lost-2"))  # the next ack arrives


@pytest.mark.asyncio
async def test_latency_in_process_executes_the_order_later() -> None:
    venue = await _venue()
    await venue.control.set_faults(Faults(latency_ms=3_000))
    sent = venue.clock.now_ms()
    order = await venue.account().place_order(_resting("late"))
    assert order.update_time_ms == order.time_ms == sent + 3_000
