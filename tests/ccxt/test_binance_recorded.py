"""binanceusdm-demo offline: ccxt's requests and Binance's recorded answers, replayed.

Each case of ``tests/fixtures/ccxt/binanceusdm-demo.json`` is one adapter method: the test checks
that ccxt sent exactly the recorded requests (path, parameters, signing) and that the adapter
turned the recorded answers into the right domain values or harness errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import pytest
import pytest_asyncio

from adapters.ccxt_venue import binance_wire as bw
from adapters.ccxt_venue.binance import DEMO_WEIGHTS, BinanceVenue
from harness.errors import (
    AuthError,
    Banned,
    Missing,
    RateLimited,
    Rejected,
    Unavailable,
    VenueError,
)
from harness.model import (
    ClientOrderId,
    IncomeType,
    MarginMode,
    OrderId,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from harness.venue import Capability, RateUsage, VenueConfig, open_venue
from tests.ccxt.transport import FakeTransport, load_fixture

T = TypeVar("T")
D = Decimal
FIXTURE = load_fixture("binanceusdm-demo")
KEYS = {
    "PERPCHECK_BINANCEUSDM_DEMO_API_KEY": "k" * 64,
    "PERPCHECK_BINANCEUSDM_DEMO_SECRET": "s" * 64,
}


@pytest_asyncio.fixture
async def venue(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[BinanceVenue]:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    opened = await open_venue("binanceusdm-demo", VenueConfig())
    assert isinstance(opened, BinanceVenue)
    yield opened
    await opened.close()


@pytest.fixture
def transport(venue: BinanceVenue) -> FakeTransport:
    return FakeTransport(venue.exchange)


async def replay(transport: FakeTransport, case: str, call: Callable[[], Awaitable[T]]) -> T:
    """Serve the case's recorded answers to ``call`` and check it sent the recorded requests."""
    exchanges = FIXTURE["cases"][case]
    transport.serve(exchanges)
    try:
        return await call()
    finally:
        assert transport.actual() == transport.expected(exchanges)
        assert all("x-mbx-apikey" in s.headers for s in transport.seen if s.signed)


def test_the_demo_venue_reads_and_trades_but_controls_nothing(venue: BinanceVenue) -> None:
    assert venue.name == "binanceusdm-demo"
    assert venue.control is None
    assert Capability.READ_RATE_LIMITS in venue.capabilities
    assert not {c for c in venue.capabilities if c.value.startswith("CONTROL_")}
    assert venue.exchange.urls["api"]["fapiPrivate"] == "https://demo-fapi.binance.com/fapi/v1"
    assert venue.rules.method_weights == DEMO_WEIGHTS


@pytest.mark.asyncio
async def test_instruments_keep_only_trading_perpetuals_with_exact_filters_and_brackets(
    venue: BinanceVenue, transport: FakeTransport
) -> None:
    instruments = await replay(transport, "instruments", venue.instruments)
    assert list(instruments) == ["BTCUSDT"]
    btc = instruments["BTCUSDT"]
    assert (btc.tick_size, btc.step_size, btc.min_qty, btc.max_qty) == (
        D("0.1"),
        D("0.001"),
        D("0.001"),
        D(1000),
    )
    assert (btc.market_max_qty, btc.min_price, btc.max_price) == (D(120), D("556.8"), D(4529764))
    assert btc.min_notional == D(100)
    assert btc.liquidation_fee_rate == D("0.0125")
    assert btc.funding_interval_hours == 8
    assert [
        (b.notional_floor, b.notional_cap, b.maint_margin_ratio, b.cum) for b in btc.brackets
    ] == [
        (D(0), D(50000), D("0.004"), D(0)),
        (D(50000), D(600000), D("0.005"), D(50)),
        (D(600000), D(3000000), D("0.0065"), D(950)),
    ]
    assert all(isinstance(b.maint_margin_ratio, Decimal) for b in btc.brackets)
    assert venue.rate_usage == RateUsage(used_weight_1m=2)


@pytest.mark.asyncio
async def test_order_book_levels_are_exact_decimals(
    venue: BinanceVenue, transport: FakeTransport
) -> None:
    book = await replay(transport, "order_book", lambda: venue.order_book("BTCUSDT", 5))
    assert book.bids[0] == (D("60000.00"), D("1.500"))
    assert book.asks == ((D("60000.10"), D("0.842")), (D("60000.30"), D("2.000")))
    assert (book.time_ms, book.update_id) == (1767225600250, 8824562397123)


def test_depth_rows_read_as_exact_decimals_or_refused_by_field() -> None:
    """The depth parser's fast path (two numeric strings) reads what :func:`dec` reads; any
    other row goes through :func:`dec`, which names the field it refuses."""
    rows = [["60000.10", "0.842", "ignored"], ["1E+3", "-0"], [60000, Decimal("1.5")]]
    assert bw.book("BTCUSDT", {"bids": rows}).bids == (
        (D("60000.10"), D("0.842")),
        (D("1E+3"), D("-0")),
        (D(60000), D("1.5")),
    )
    for bad, field in ((["x", "1"], "price"), (["1", "1.2.3"], "qty"), ([True, "1"], "price")):
        with pytest.raises(VenueError, match=f"{field}="):
            bw.book("BTCUSDT", {"asks": [bad]})


@pytest.mark.asyncio
async def test_mark_takes_the_last_price_from_the_ticker_without_the_sim_extra(
    venue: BinanceVenue, transport: FakeTransport
) -> None:
    mark = await replay(transport, "mark", lambda: venue.mark("BTCUSDT"))
    assert (mark.mark_price, mark.index_price, mark.last_price) == (
        D("60000.05"),
        D("59998.12"),
        D("60000.10"),
    )
    assert (mark.last_funding_rate, mark.interest_rate) == (D("0.0001"), D("0.0001"))
    assert (mark.next_funding_time_ms, mark.time_ms) == (1767254400000, 1767225601000)
    assert mark.funding_interval_ms == 8 * 3_600_000


@pytest.mark.asyncio
async def test_brackets_are_sorted_by_floor(venue: BinanceVenue, transport: FakeTransport) -> None:
    brackets = await replay(transport, "brackets", lambda: venue.brackets("BTCUSDT"))
    assert [b.bracket for b in brackets] == [1, 2]


@pytest.mark.asyncio
async def test_positions_merge_symbol_config_and_drop_flat_rows(
    venue: BinanceVenue, transport: FakeTransport
) -> None:
    account = venue.account()
    positions = await replay(transport, "positions", account.positions)
    btc, eth = positions
    assert (btc.symbol, btc.quantity, btc.entry_price, btc.mark_price) == (
        "BTCUSDT",
        D("0.01"),
        D(59000),
        D("60000.05"),
    )
    assert (btc.margin_mode, btc.leverage, btc.isolated_wallet) == (
        MarginMode.ISOLATED,
        20,
        D("29.5"),
    )
    assert btc.liquidation_price == D("54389.71742164")
    assert (btc.notional, btc.maint_margin, btc.initial_margin) == (
        D("600.0005"),
        D("2.400002"),
        D("30.000025"),
    )
    assert (eth.quantity, eth.margin_mode, eth.liquidation_price) == (
        D("-0.5"),
        MarginMode.CROSS,
        None,
    )
    # Known settings are kept: a second call asks only positionRisk.
    exchanges = FIXTURE["cases"]["positions"][:1]
    transport.serve(exchanges)
    again = await account.positions()
    assert again == positions
    assert len(transport.seen) == 1


@pytest.mark.asyncio
async def test_balance_reads_the_margin_asset(
    venue: BinanceVenue, transport: FakeTransport
) -> None:
    balance = await replay(transport, "balance", venue.account().balance)
    assert balance.asset == "USDT"
    assert (balance.wallet_balance, balance.cross_wallet_balance) == (D(10000), D("9970.5"))
    assert (balance.unrealized_pnl, balance.margin_balance) == (D("15.0005"), D("10015.0005"))
    assert (balance.available_balance, balance.initial_margin, balance.maint_margin) == (
        D("9880.75"),
        D("104.750025"),
        D("9.875002"),
    )


@pytest.mark.asyncio
async def test_post_only_limit_goes_out_as_gtx_with_the_harness_client_id(
    venue: BinanceVenue, transport: FakeTransport
) -> None:
    request = OrderRequest(
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=D("0.002"),
        price=D("59000.10"),
        time_in_force=TimeInForce.GTX,
        client_order_id=ClientOrderId("pcrun1-7"),
    )
    order = await replay(transport, "place_limit", lambda: venue.account().place_order(request))
    assert (order.order_id, order.client_order_id) == ("4611875134427365377", "pcrun1-7")
    assert (order.status, order.time_in_force, order.price) == (
        OrderStatus.NEW,
        TimeInForce.GTX,
        D("59000.1"),
    )
    assert (order.time_ms, order.update_time_ms) == (1767225602000, 1767225602000)
    assert venue.rate_usage == RateUsage(used_weight_1m=22, order_count_10s=1, order_count_1m=3)


@pytest.mark.asyncio
async def test_market_reduce_only_fills_without_price_or_time_in_force(
    venue: BinanceVenue, transport: FakeTransport
) -> None:
    request = OrderRequest(
        symbol="BTCUSDT",
        side=Side.SELL,
        type=OrderType.MARKET,
        quantity=D("0.010"),
        reduce_only=True,
        client_order_id=ClientOrderId("pcrun1-8"),
    )
    account = venue.account()
    order = await replay(
        transport, "place_market_reduce_only", lambda: account.place_order(request)
    )
    assert (order.type, order.price, order.time_in_force) == (OrderType.MARKET, None, None)
    assert (order.status, order.executed_qty, order.cum_quote) == (
        OrderStatus.FILLED,
        D("0.01"),
        D("599.9"),
    )
    assert order.reduce_only
    assert order.avg_price == D(59990)


@pytest.mark.asyncio
async def test_cancel_get_and_open_orders(venue: BinanceVenue, transport: FakeTransport) -> None:
    account = venue.account()
    cancelled = await replay(
        transport,
        "cancel_order",
        lambda: account.cancel_order("BTCUSDT", order_id=OrderId("4611875134427365377")),
    )
    assert cancelled.status is OrderStatus.CANCELED
    got = await replay(
        transport,
        "get_order",
        lambda: account.get_order("BTCUSDT", client_order_id=ClientOrderId("pcrun1-7")),
    )
    assert (got.status, got.time_ms, got.update_time_ms) == (
        OrderStatus.CANCELED,
        1767225602000,
        1767225604000,
    )
    (open_order,) = await replay(transport, "open_orders", lambda: account.open_orders("BTCUSDT"))
    assert (open_order.status, open_order.executed_qty) == (
        OrderStatus.PARTIALLY_FILLED,
        D("0.001"),
    )


@pytest.mark.asyncio
async def test_liquidation_fills_are_found_by_their_autoclose_orders(
    venue: BinanceVenue, transport: FakeTransport
) -> None:
    account = venue.account()
    fills = await replay(transport, "fills", lambda: account.fills("BTCUSDT", 1767225000000))
    assert [(f.trade_id, f.liquidation) for f in fills] == [(698759, False), (698901, True)]
    assert fills[1].realized_pnl == D(-50)
    assert (fills[0].commission, fills[0].quote_qty, fills[0].maker) == (
        D("0.295"),
        D(590),
        False,
    )


@pytest.mark.asyncio
async def test_own_liquidations_come_from_force_orders(
    venue: BinanceVenue, transport: FakeTransport
) -> None:
    (event,) = await replay(transport, "liquidations", lambda: venue.liquidations("BTCUSDT"))
    assert (event.own, event.side, event.quantity, event.avg_price) == (
        True,
        Side.SELL,
        D("0.01"),
        D(54000),
    )
    assert event.trigger_mark is None  # not published by Binance


@pytest.mark.asyncio
async def test_income_commission_leverage_margin(
    venue: BinanceVenue, transport: FakeTransport
) -> None:
    account = venue.account()
    (funding,) = await replay(
        transport, "income", lambda: account.income(IncomeType.FUNDING_FEE, "BTCUSDT")
    )
    assert (funding.amount, funding.tran_id) == (D("-0.06"), 9689322392)
    rates = await replay(transport, "commission_rates", lambda: account.commission_rates("BTCUSDT"))
    assert (rates.maker, rates.taker) == (D("0.0002"), D("0.0004"))
    assert (
        await replay(transport, "set_leverage", lambda: account.set_leverage("BTCUSDT", 10)) == 10
    )
    with pytest.raises(Rejected) as already:
        await replay(
            transport,
            "set_margin_mode_already",
            lambda: account.set_margin_mode("BTCUSDT", MarginMode.ISOLATED),
        )
    assert already.value.code == -4046
    await replay(
        transport, "add_isolated_margin", lambda: account.add_isolated_margin("BTCUSDT", D("-12.5"))
    )


@pytest.mark.asyncio
async def test_funding_history_and_info_from_documented_defaults(
    venue: BinanceVenue, transport: FakeTransport
) -> None:
    history = await replay(
        transport, "funding_history", lambda: venue.funding_history("BTCUSDT", 1767225600000)
    )
    assert [(e.funding_rate, e.mark_price) for e in history] == [
        (D("0.0001"), D("60012.34")),
        (D("-0.0000375"), D(59870)),
    ]
    info = await replay(transport, "funding_info", lambda: venue.funding_info("BTCUSDT"))
    assert (info.cap, info.floor, info.interval_hours) == (D("0.003"), D("-0.003"), 8)
    assert (info.clamp, info.impact_margin_notional) == (D("0.0005"), D(25000))
    assert info.next_funding_time_ms == 1767254400000


async def _raises(
    transport: FakeTransport, case: str, call: Callable[[], Awaitable[Any]], kind: type[Exception]
) -> Any:
    with pytest.raises(kind) as caught:
        await replay(transport, case, call)
    return caught.value


@pytest.mark.asyncio
async def test_errors_keep_the_venue_code_or_become_the_harness_taxonomy(
    venue: BinanceVenue, transport: FakeTransport
) -> None:
    account = venue.account()
    small = OrderRequest(
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=D("0.001"),
        price=D(59000),
        client_order_id=ClientOrderId("pcrun1-10"),
    )
    rejected = await _raises(
        transport, "reject_min_notional", lambda: account.place_order(small), Rejected
    )
    assert rejected.code == -4164
    unknown = await _raises(
        transport,
        "reject_unknown_order",
        lambda: account.cancel_order("BTCUSDT", order_id=OrderId("1")),
        Rejected,
    )
    assert (unknown.code, unknown.msg) == (-2011, "Unknown order sent.")
    limited = await _raises(
        transport, "rate_limited", lambda: venue.order_book("BTCUSDT", 1000), RateLimited
    )
    assert not isinstance(limited, Banned)
    assert (limited.retry_after, limited.code) == (D(7), -1003)
    banned = await _raises(transport, "banned", lambda: venue.order_book("BTCUSDT", 1000), Banned)
    assert banned.retry_after == D(120)
    await _raises(transport, "server_error", account.balance, Unavailable)
    await _raises(transport, "bad_key", account.balance, AuthError)
    lost = OrderRequest(
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        quantity=D("0.002"),
        client_order_id=ClientOrderId("pcrun1-11"),
    )
    await _raises(transport, "lost_ack", lambda: account.place_order(lost), Unavailable)


@pytest.mark.asyncio
async def test_what_binance_does_not_publish_is_missing(venue: BinanceVenue) -> None:
    with pytest.raises(Missing, match="insurance fund"):
        await venue.insurance_fund()
    with pytest.raises(Missing, match="liquidation bands"):
        await venue.account().liquidation_band("BTCUSDT")
