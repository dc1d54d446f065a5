"""The HTTP venue publishes the same figures as the in-process venue for the same engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from adapters.sim.server import Credential, KeyRing, create_app
from adapters.sim.server.runner import ServerHandle
from adapters.sim.venue import SimVenue, open_sim_venue
from harness.model import MarginMode, OrderRequest, OrderType, Side, TimeInForce
from harness.venue import VenueConfig
from tests.server.conftest import Http

D = Decimal


@pytest_asyncio.fixture
async def both() -> AsyncIterator[tuple[SimVenue, Http]]:
    venue = await open_sim_venue(VenueConfig(seed=21, options={"balance": "5000"}))
    token, secret = "t", "secret"
    keys = KeyRing()
    keys.add(Credential("parity", secret, venue.account().account_id))
    runner = web.AppRunner(create_app(venue.engine, keys=keys, control_token=token))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    handle = ServerHandle(
        base_url=f"http://127.0.0.1:{port}",
        control_token=token,
        api_key="parity",
        api_secret=secret,
        account_id=venue.account().account_id,
        seed=21,
        engine=venue.engine,
        keys=keys,
        _runner=runner,
    )
    async with aiohttp.ClientSession() as session:
        yield venue, Http(session, handle)
    await runner.cleanup()


@pytest.mark.asyncio
async def test_positions_and_balance_equal_the_in_process_figures(
    both: tuple[SimVenue, Http],
) -> None:
    venue, http = both
    account = venue.account()
    await account.set_margin_mode("ETHUSDT", MarginMode.ISOLATED)
    await account.set_leverage("ETHUSDT", 7)
    await account.place_order(
        OrderRequest(symbol="ETHUSDT", side=Side.BUY, type=OrderType.MARKET, quantity=D("2.01"))
    )
    await account.place_order(
        OrderRequest(symbol="BTCUSDT", side=Side.SELL, type=OrderType.MARKET, quantity=D("0.013"))
    )
    await account.place_order(
        OrderRequest(
            symbol="BTCUSDT",
            side=Side.BUY,
            type=OrderType.LIMIT,
            quantity=D("0.004"),
            price=D("58000"),
            time_in_force=TimeInForce.GTC,
        )
    )
    await venue.control.advance(7_000)
    expected = {p.symbol: p for p in await account.positions()}
    rows = (await http.call("GET", "/fapi/v2/positionRisk", signed=True)).body
    published = {r["symbol"]: r for r in rows if D(r["positionAmt"])}
    assert set(published) == set(expected)
    for symbol, pos in expected.items():
        row = published[symbol]
        assert D(row["positionAmt"]) == pos.quantity
        assert D(row["entryPrice"]) == pos.entry_price
        assert D(row["markPrice"]) == pos.mark_price
        assert D(row["unRealizedProfit"]) == pos.unrealized_pnl
        lp = D(row["liquidationPrice"])
        assert (lp or None) == pos.liquidation_price
        assert D(row["isolatedWallet"]) == pos.isolated_wallet
        assert D(row["notional"]) == pos.notional
        assert D(row["maintMargin"]) == pos.maint_margin
        assert D(row["positionInitialMargin"]) == pos.initial_margin
        assert int(row["leverage"]) == pos.leverage
        assert row["marginType"] == pos.margin_mode.value.lower()
    bal = await account.balance()
    (asset,) = (await http.call("GET", "/fapi/v3/account", signed=True)).body["assets"]
    assert D(asset["walletBalance"]) == bal.wallet_balance
    assert D(asset["crossWalletBalance"]) == bal.cross_wallet_balance
    assert D(asset["unrealizedProfit"]) == bal.unrealized_pnl
    assert D(asset["marginBalance"]) == bal.margin_balance
    assert D(asset["availableBalance"]) == bal.available_balance
    assert D(asset["initialMargin"]) == bal.initial_margin
    assert D(asset["maintMargin"]) == bal.maint_margin
    orders = await account.open_orders("BTCUSDT")
    listed = (await http.call("GET", "/fapi/v1/openOrders", signed=True)).body
    assert [str(o["orderId"]) for o in listed] == [o.order_id for o in orders]
    fills = await account.fills("ETHUSDT")
    trades = await http.call("GET", "/fapi/v1/userTrades", {"symbol": "ETHUSDT"}, signed=True)
    assert [(t["id"], D(t["price"]), D(t["commission"])) for t in trades.body] == [
        (f.trade_id, f.price, f.commission) for f in fills
    ]
