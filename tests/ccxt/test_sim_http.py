"""sim-http end to end: through HTTP and ccxt, the same answers as the in-process simulator.

One scripted session (market data, every order path and its refusals, margin and leverage, a
liquidation, funding, scenarios, rate limits, bans and faults) runs on venue ``sim`` and on
venue ``sim-http`` with the same seed; every step's outcome — a domain value, or the error's
type, code and Retry-After — must be identical.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from adapters.ccxt_venue._wire import Wire
from adapters.ccxt_venue.binance import BinanceAccount
from adapters.ccxt_venue.clients import binance_client
from harness.errors import AuthError, Banned, PerpcheckError, RateLimited, Rejected
from harness.model import (
    ClientOrderId,
    IncomeType,
    MarginMode,
    OrderId,
    OrderRequest,
    OrderType,
    PricePath,
    Side,
    TimeInForce,
)
from harness.venue import (
    Account,
    Capability,
    Faults,
    RateLimits,
    Venue,
    VenueConfig,
    VenueControl,
    open_venue,
)

D = Decimal
BTC, ETH = "BTCUSDT", "ETHUSDT"
Steps = list[tuple[str, Any]]


def limit(
    side: Side, qty: str, price: Decimal, tif: TimeInForce, cid: str, *, reduce: bool = False
) -> OrderRequest:
    return OrderRequest(
        symbol=BTC,
        side=side,
        type=OrderType.LIMIT,
        quantity=D(qty),
        price=price,
        time_in_force=tif,
        reduce_only=reduce,
        client_order_id=ClientOrderId(cid),
    )


def market(side: Side, qty: str, cid: str | None, symbol: str = BTC) -> OrderRequest:
    return OrderRequest(
        symbol=symbol,
        side=side,
        type=OrderType.MARKET,
        quantity=D(qty),
        client_order_id=ClientOrderId(cid) if cid else None,
    )


class Recorder:
    """Runs each step and keeps its outcome; errors are kept as (type, code, Retry-After)."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.steps: Steps = []

    async def __call__(self, label: str, call: Callable[[], Awaitable[Any]]) -> Any:
        try:
            value = await call()
        except PerpcheckError as exc:
            value = (
                type(exc).__name__,
                getattr(exc, "code", None),
                getattr(exc, "retry_after", None),
            )
        self.steps.append((label, value))
        self.steps.append((f"{label} @", self.venue.clock.now_ms()))
        return value


async def session(venue: Venue) -> Steps:
    """The scripted session; returns every step's outcome."""
    control = venue.control
    assert control is not None
    step = Recorder(venue)
    account = venue.account()
    await market_data(step, venue)
    await orders(step, venue, account)
    await margin(step, account)
    await liquidation(step, venue, control)
    await funding_and_control(step, venue, control)
    await rate_limits(step, venue, control, account)
    await faults(step, venue, control, account)
    return step.steps


async def market_data(step: Recorder, venue: Venue) -> None:
    await step("instruments", venue.instruments)
    for n in (5, 100):
        await step(f"order_book {n}", lambda n=n: venue.order_book(BTC, n))  # type: ignore[misc]
    await step("mark BTC", lambda: venue.mark(BTC))
    await step("mark ETH", lambda: venue.mark(ETH))
    await step("brackets", lambda: venue.brackets(ETH))
    await step("funding_info", lambda: venue.funding_info(ETH))
    await step("funding_history", lambda: venue.funding_history(BTC))
    await step("insurance_fund", venue.insurance_fund)
    await step("unknown symbol", lambda: venue.mark("NOPEUSDT"))


async def orders(step: Recorder, venue: Venue, account: Account) -> None:
    book = await venue.order_book(BTC, 5)
    bid, ask = book.best_bid, book.best_ask
    assert bid is not None
    assert ask is not None
    passive = bid - D(50)
    await step("balance", account.balance)
    await step("commission", lambda: account.commission_rates(BTC))
    await step("market buy", lambda: account.place_order(market(Side.BUY, "0.01", "m-1")))
    await step("no client id", lambda: account.place_order(market(Side.BUY, "0.002", None)))
    gtc = limit(Side.BUY, "0.002", passive, TimeInForce.GTC, "l-1")
    await step("limit gtc", lambda: account.place_order(gtc))
    await step("duplicate id", lambda: account.place_order(gtc))
    crossing = limit(Side.BUY, "0.002", ask + D(20), TimeInForce.GTX, "l-2")
    await step("post-only crossing", lambda: account.place_order(crossing))
    fok = limit(Side.BUY, "500", ask, TimeInForce.FOK, "l-3")
    await step("fok unfillable", lambda: account.place_order(fok))
    ioc = limit(Side.SELL, "0.02", bid - D(5), TimeInForce.IOC, "l-4")
    await step("ioc", lambda: account.place_order(ioc))
    off_tick = limit(Side.BUY, "0.002", passive + D("0.05"), TimeInForce.GTC, "l-5")
    await step("off tick", lambda: account.place_order(off_tick))
    tiny = limit(Side.BUY, "0.001", passive, TimeInForce.GTC, "l-6")
    await step("min notional", lambda: account.place_order(tiny))
    reduce = limit(Side.BUY, "0.002", passive, TimeInForce.GTC, "l-7", reduce=True)
    await step("reduce-only grows", lambda: account.place_order(reduce))
    await step("get by cid", lambda: account.get_order(BTC, client_order_id=ClientOrderId("l-1")))
    await step("open orders", lambda: account.open_orders(BTC))
    await step("all open orders", account.open_orders)
    await step("cancel", lambda: account.cancel_order(BTC, client_order_id=ClientOrderId("l-1")))
    await step("cancel again", lambda: account.cancel_order(BTC, order_id=OrderId("999999")))
    await step("get unknown", lambda: account.get_order(BTC, order_id=OrderId("999999")))
    await account.place_order(limit(Side.SELL, "0.002", ask + D(80), TimeInForce.GTC, "l-8"))
    await step("cancel all", lambda: account.cancel_all(BTC))
    await step("open after cancel all", lambda: account.open_orders(BTC))
    await step("fills", lambda: account.fills(BTC))
    await step("positions", account.positions)


async def margin(step: Recorder, account: Account) -> None:
    await step("leverage", lambda: account.set_leverage(ETH, 10))
    await step("leverage too high", lambda: account.set_leverage(ETH, 500))
    await step("isolated", lambda: account.set_margin_mode(ETH, MarginMode.ISOLATED))
    await step("isolated again", lambda: account.set_margin_mode(ETH, MarginMode.ISOLATED))
    await step("eth buy", lambda: account.place_order(market(Side.BUY, "1", "e-1", ETH)))
    await step("mode with position", lambda: account.set_margin_mode(ETH, MarginMode.CROSS))
    await step("add margin", lambda: account.add_isolated_margin(ETH, D(25)))
    await step("remove margin", lambda: account.add_isolated_margin(ETH, D(-10)))
    await step("positions after margin", account.positions)
    await step("band", lambda: account.liquidation_band(ETH))
    await step("no band", lambda: account.liquidation_band(BTC))
    await step("balance after margin", account.balance)
    await step("income", lambda: account.income())
    await step("income commission", lambda: account.income(IncomeType.COMMISSION, BTC))


async def liquidation(step: Recorder, venue: Venue, control: VenueControl) -> None:
    victim = await control.create_account(D(1000), label="victim")
    await step("victim id", lambda: _value(victim.account_id))
    await victim.set_margin_mode(BTC, MarginMode.ISOLATED)
    await victim.set_leverage(BTC, 50)
    await step("victim buy", lambda: victim.place_order(market(Side.BUY, "0.2", "v-1")))
    await step("victim band", lambda: victim.liquidation_band(BTC))
    start = venue.clock.now_ms()
    index = (await venue.mark(BTC)).index_price
    path = PricePath(points=((0, index), (20_000, index * D("0.97"))), linear=True)
    await step("price path", lambda: control.set_price_path(BTC, path))
    await step("advance", lambda: control.advance(25_000))
    await step("venue liquidations", lambda: venue.liquidations(BTC, since_ms=start))
    await step("own liquidations", lambda: victim.liquidations(BTC, since_ms=start))
    await step("victim fills", lambda: victim.fills(BTC, since_ms=start))
    await step("victim positions", victim.positions)
    await step("adl", lambda: venue.adl_events(since_ms=start))
    await step("insurance after", venue.insurance_fund)


async def funding_and_control(step: Recorder, venue: Venue, control: VenueControl) -> None:
    await step("scenarios", lambda: _value(control.scenarios()))
    await step("depth thin", lambda: control.set_depth_profile(BTC, "thin"))
    await step("thin book", lambda: venue.order_book(BTC, 5))
    await step("skew", lambda: control.set_quote_skew(ETH, D(15)))
    await step("skewed book", lambda: venue.order_book(ETH, 5))
    boundary = (await venue.mark(ETH)).next_funding_time_ms + 3_600_000 * 3
    await step("interval", lambda: control.schedule_funding_interval(ETH, 4, boundary))
    await step("pending interval", lambda: venue.funding_info(ETH))
    await step("sleep", lambda: venue.clock.sleep(3_600))
    await step("funding history after", lambda: venue.funding_history(ETH))
    await step("funding income", lambda: venue.account().income(IncomeType.FUNDING_FEE))
    await step("fund to zero", lambda: control.set_insurance_fund(D(0)))
    await step("fund negative", lambda: control.set_insurance_fund(D(-1)))
    await step("fund", venue.insurance_fund)
    await step("scenario", lambda: control.load_scenario("thin-book"))
    await step("scenario book", lambda: venue.order_book(BTC, 20))
    await step("bad symbol control", lambda: control.set_quote_skew("NOPEUSDT", D(1)))


async def rate_limits(
    step: Recorder, venue: Venue, control: VenueControl, account: Account
) -> None:
    await control.advance(60_000)  # a fresh weight window on both venues
    await step("tight limits", lambda: control.set_rate_limits(RateLimits(weight_per_minute=10)))
    for i in range(6):
        await step(f"depth {i}", lambda: venue.order_book(BTC, 5))
    limited = step.steps[-2][1]
    assert limited[0] == RateLimited.__name__, limited
    await step("inside retry-after", lambda: venue.order_book(BTC, 5))
    assert step.steps[-2][1][0] == Banned.__name__
    await step("sleep out the ban", lambda: venue.clock.sleep(180))
    await step("limits back", lambda: control.set_rate_limits(RateLimits()))
    await step("answered again", lambda: venue.mark(BTC))
    await step("orders window", lambda: control.set_rate_limits(RateLimits(orders_per_10s=1)))
    await step("order 1", lambda: account.place_order(market(Side.SELL, "0.002", "w-1")))
    await step("order 2", lambda: account.place_order(market(Side.SELL, "0.002", "w-2")))
    await step("window passes", lambda: venue.clock.sleep(11))
    await step("limits reset", lambda: control.set_rate_limits(RateLimits()))


async def faults(step: Recorder, venue: Venue, control: VenueControl, account: Account) -> None:
    await step("burst", lambda: control.set_faults(Faults(error_burst=1)))
    await step("burst hit", account.positions)
    await step("after burst", account.positions)
    await step("lost ack", lambda: control.set_faults(Faults(lost_ack=1)))
    await step("lost order", lambda: account.place_order(market(Side.BUY, "0.002", "f-1")))
    await step("found", lambda: account.get_order(BTC, client_order_id=ClientOrderId("f-1")))
    await step("maintenance", lambda: control.set_faults(Faults(maintenance=True)))
    await step("during maintenance", account.balance)
    await step("latency", lambda: control.set_faults(Faults(latency_ms=700)))
    await step("late order", lambda: account.place_order(market(Side.BUY, "0.002", "f-2")))
    deplete = Faults(deplete=(BTC, Side.SELL, D("0.5")))
    await step("deplete", lambda: control.set_faults(deplete))
    await step("depleted book", lambda: venue.order_book(BTC, 5))
    await step("clear", lambda: control.set_faults(Faults()))
    await step("final balance", account.balance)


async def _value(value: Any) -> Any:
    return value


@pytest.mark.asyncio
async def test_sim_http_answers_exactly_as_the_in_process_simulator() -> None:
    outcomes = {}
    for name in ("sim", "sim-http"):
        venue = await open_venue(name, VenueConfig(seed=1))
        try:
            outcomes[name] = await session(venue)
        finally:
            await venue.close()
    local, http = outcomes["sim"], outcomes["sim-http"]
    assert [label for label, _ in http] == [label for label, _ in local]
    for (label, expected), (_, observed) in zip(local, http, strict=True):
        assert observed == expected, label
    rejected = [v for _, v in local if isinstance(v, tuple) and v and v[0] == "Rejected"]
    assert len(rejected) >= 10  # the script does reach the refusals


@pytest.mark.asyncio
async def test_sim_http_is_the_simulator_with_its_capabilities_and_rules() -> None:
    local = await open_venue("sim", VenueConfig(seed=3))
    http = await open_venue("sim-http", VenueConfig(seed=3))
    try:
        assert http.name == "sim-http"
        assert http.capabilities == local.capabilities == frozenset(Capability)
        assert http.clock.now_ms() == local.clock.now_ms()
        assert http.control is not None
        assert sorted(http.control.scenarios()) == sorted(
            local.control.scenarios() if local.control else []
        )
        for field in ("mark_basis_samples", "mark_update_interval_ms", "funding_rate_decimals"):
            assert getattr(http.rules, field) == getattr(local.rules, field)
        before = http.rate_usage.used_weight_1m
        await http.order_book(BTC, 100)
        assert (
            http.rate_usage.used_weight_1m
            == (before or 0) + http.rules.method_weights["order_book:100"]
        )
    finally:
        await local.close()
        await http.close()


@pytest.mark.asyncio
async def test_closing_stops_the_server() -> None:
    venue = await open_venue("sim-http", VenueConfig(seed=1))
    await venue.mark(BTC)
    await venue.close()
    with pytest.raises(PerpcheckError):
        await venue.mark(BTC)


@pytest.mark.asyncio
async def test_a_dropped_answer_is_unavailable_and_the_order_exists() -> None:
    venue = await open_venue("sim-http", VenueConfig(seed=2))
    try:
        assert venue.control is not None
        await venue.control.set_faults(Faults(lost_ack=1))
        with pytest.raises(PerpcheckError) as caught:
            await venue.account().place_order(market(Side.BUY, "0.002", "drop-1"))
        assert type(caught.value).__name__ == "Unavailable"
        found = await venue.account().get_order(BTC, client_order_id=ClientOrderId("drop-1"))
        assert found.client_order_id == "drop-1"
        with pytest.raises(Rejected):
            await venue.account().place_order(market(Side.BUY, "0.002", "drop-1"))
    finally:
        await venue.close()


@pytest.mark.asyncio
async def test_each_method_costs_its_documented_weight() -> None:
    """The server's ``X-MBX-USED-WEIGHT-1M`` grows by ``rules.method_weights`` per method."""
    venue = await open_venue("sim-http", VenueConfig(seed=4))
    try:
        account = venue.account()
        await account.place_order(market(Side.BUY, "0.002", "w-0"))
        await account.positions()  # leverage and margin type now known: symbolConfig is not asked
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "instruments": venue.instruments,
            **{
                f"order_book:{n}": (lambda n=n: venue.order_book(BTC, n))  # type: ignore[misc]
                for n in (5, 10, 20, 50, 100, 500, 1000)
            },
            "mark": lambda: venue.mark(BTC),
            "brackets": lambda: venue.brackets(BTC),
            "funding_info": lambda: venue.funding_info(BTC),
            "funding_history": lambda: venue.funding_history(BTC),
            "place_order": lambda: account.place_order(market(Side.BUY, "0.002", "w-1")),
            "get_order": lambda: account.get_order(BTC, client_order_id=ClientOrderId("w-1")),
            "open_orders": lambda: account.open_orders(BTC),
            "open_orders:all": account.open_orders,
            "cancel_all": lambda: account.cancel_all(BTC),
            "fills": lambda: account.fills(BTC),
            "positions": account.positions,
            "balance": account.balance,
            "income": account.income,
            "commission_rates": lambda: account.commission_rates(BTC),
            "set_leverage": lambda: account.set_leverage(BTC, 20),
            "liquidation_band": lambda: account.liquidation_band(BTC),
            "liquidations": lambda: account.liquidations(BTC),
            "liquidations:all": account.liquidations,
        }
        weights = venue.rules.method_weights
        measured = {}
        for name, call in calls.items():
            before = venue.rate_usage.used_weight_1m or 0
            await call()
            measured[name] = (venue.rate_usage.used_weight_1m or 0) - before
        assert measured == {name: weights[name] for name in calls}
    finally:
        await venue.close()


@pytest.mark.asyncio
async def test_a_wrong_secret_is_an_auth_error() -> None:
    venue = await open_venue("sim-http", VenueConfig(seed=5))
    try:
        api = venue.exchange.urls["api"]["fapiPublic"]  # type: ignore[attr-defined]
        base = api.removesuffix("/fapi/v1")
        key = venue.exchange.apiKey  # type: ignore[attr-defined]
        wrong = "wrong"  # a deliberately bad secret
        ex = binance_client(api_key=key, secret=wrong, wire=Wire(), base_url=base)
        try:
            with pytest.raises(AuthError):
                await BinanceAccount(ex, account_id="x", venue_name="sim-http").balance()
        finally:
            await ex.close()
    finally:
        await venue.close()
