"""The async Venue facade: wire rounding and record mapping (adapters/sim/venue.py)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from adapters.sim.venue import SimVenue, open_sim_venue
from harness.errors import ConfigError, Rejected
from harness.model import MarginMode, OrderStatus, PricePath, Side
from harness.venue import VenueConfig
from tests.sim.simkit import BTC, ETH, market

D = Decimal
UNIT = D("0.00000001")


def _r(value: Decimal) -> Decimal:
    return value.quantize(UNIT, rounding=ROUND_HALF_EVEN)


async def _venue(seed: int = 3, balance: str = "10000") -> SimVenue:
    return await open_sim_venue(VenueConfig(seed=seed, options={"balance": balance}))


@pytest.mark.asyncio
async def test_positions_publish_engine_figures_rounded_half_even_to_8_decimals() -> None:
    venue = await _venue(balance="1000")
    account = venue.account()
    await account.set_leverage(ETH, 7)
    await account.place_order(market(ETH, Side.BUY, "2.01"))
    await venue.control.advance(3_000)
    (pos,) = await account.positions()
    engine = venue.engine
    state = engine.accounts[account.account_id]
    raw = state.positions[ETH]
    fig = engine.ledger.figures(raw)
    lp = engine.ledger.liquidation_price(state, raw)
    assert lp is not None
    assert (pos.quantity, pos.entry_price, pos.leverage) == (raw.qty, raw.entry, 7)
    assert pos.mark_price == engine.mark(ETH)
    assert pos.unrealized_pnl == _r(fig.upnl)
    assert pos.liquidation_price == _r(lp)
    assert pos.notional == _r(fig.notional)
    assert pos.maint_margin == _r(fig.maint_margin)
    assert pos.initial_margin == _r(fig.initial_margin)
    raw_values = (fig.upnl, fig.initial_margin, lp)
    published = (pos.unrealized_pnl, pos.initial_margin, pos.liquidation_price)
    assert published != raw_values  # the engine's figures carry more digits than the wire
    for value in (pos.unrealized_pnl, pos.notional, pos.initial_margin, pos.liquidation_price):
        assert value.as_tuple().exponent == -8


@pytest.mark.asyncio
async def test_balance_sums_positions_and_rounds_only_published_figures() -> None:
    venue = await _venue()
    account = venue.account()
    await account.place_order(market(BTC, Side.BUY, "0.013"))
    await account.place_order(market(ETH, Side.SELL, "0.7"))
    await venue.control.advance(2_000)
    balance = await account.balance()
    engine = venue.engine
    state = engine.accounts[account.account_id]
    figs = [engine.ledger.figures(p) for p in state.open_positions()]
    upnl = sum((f.upnl for f in figs), D(0))
    assert balance.wallet_balance == state.wallet_total() == balance.cross_wallet_balance
    assert balance.unrealized_pnl == _r(upnl)
    assert balance.margin_balance == _r(state.wallet_total() + upnl)
    assert balance.maint_margin == _r(sum((f.maint_margin for f in figs), D(0)))
    assert balance.available_balance == _r(engine.ledger.available_balance(state))


@pytest.mark.asyncio
async def test_liquidation_events_map_engine_records_and_flag_the_venues_own_account() -> None:
    venue = await _venue(seed=1)
    own = venue.account()
    other = await venue.control.create_account(D(10_000), label="other")
    for account in (own, other):
        await account.set_margin_mode(BTC, MarginMode.ISOLATED)
        await account.set_leverage(BTC, 50)
        await account.place_order(market(BTC, Side.BUY, "0.1"))
    fund_before = (await venue.insurance_fund()).balance
    await venue.control.set_depth_profile(BTC, "thin")
    mark = (await venue.mark(BTC)).index_price
    await venue.control.set_price_path(BTC, PricePath(points=((0, mark), (1, mark * D("0.9")))))
    await venue.control.advance(1_000)
    events = await venue.liquidations(BTC)
    records = venue.engine.liquidator.records
    assert len(events) == len(records) == 2
    assert [e.own for e in events] == [r.account_id == own.account_id for r in records]
    assert sorted(e.own for e in events) == [False, True]
    for event, record in zip(events, records, strict=True):
        assert event.side is Side(record.side) is Side.SELL
        assert (event.quantity, event.filled_qty, event.taken_over_qty) == (
            record.quantity,
            record.filled_qty,
            record.taken_over_qty,
        )
        assert (event.price, event.avg_price, event.time_ms) == (
            record.price,
            record.avg_price,
            record.time_ms,
        )
        assert (event.trigger_mark, event.bankruptcy_price) == (
            record.trigger_mark,
            record.bankruptcy_price,
        )
        assert (event.fee, event.shortfall) == (record.fee, record.shortfall)
    assert await venue.liquidations(ETH) == []
    assert await venue.liquidations(since_ms=venue.clock.now_ms() + 1) == []
    fund = await venue.insurance_fund()
    assert fund.balance - fund_before == sum((r.fee - r.shortfall for r in records), D(0))
    assert await own.positions() == []


@pytest.mark.asyncio
async def test_orders_and_fills_map_engine_records() -> None:
    venue = await _venue()
    account = venue.account()
    order = await account.place_order(market(BTC, Side.BUY, "0.02", cid="buy-1"))
    assert order.status is OrderStatus.FILLED
    assert order.client_order_id == "buy-1"
    assert await account.get_order(BTC, client_order_id=order.client_order_id) == order
    (fill,) = await account.fills(BTC)
    assert fill.quote_qty == fill.price * fill.qty
    assert fill.commission_asset == "USDT"
    assert order.avg_price == fill.price
    with pytest.raises(Rejected) as info:
        await account.get_order(BTC, order_id="not-a-number")  # type: ignore[arg-type]
    assert info.value.code == -1102  # malformed, as the HTTP server answers it


@pytest.mark.asyncio
@pytest.mark.parametrize("balance", ["-1", "abc", "NaN", "Infinity"])
async def test_a_bad_balance_option_is_a_config_error(balance: str) -> None:
    with pytest.raises(ConfigError, match="must be a non-negative number of USDT"):
        await open_sim_venue(VenueConfig(options={"balance": balance}))


@pytest.mark.asyncio
async def test_unknown_defect_or_scenario_is_a_config_error_naming_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"choose from: .*mark-is-last"):
        await open_sim_venue(VenueConfig(defects=("no-such-bug",)))
    with pytest.raises(ConfigError, match=r"choose from: .*wick"):
        await open_sim_venue(VenueConfig(scenario="no-such-scenario"))


@pytest.mark.asyncio
async def test_a_scenario_named_in_the_config_is_loaded() -> None:
    venue = await open_sim_venue(VenueConfig(seed=2, scenario="thin-book"))
    book = await venue.order_book(BTC)
    assert len(book.bids) == len(book.asks) == 3
