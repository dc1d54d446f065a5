"""``SIM_SYNC`` and the stream faults of ``POST /control/stream-faults`` with a raw client
(PROTOCOL.md "Streams")."""

from __future__ import annotations

import itertools
from typing import Any

import aiohttp
import pytest

from harness.model import Side
from tests.server.conftest import Http
from tests.server.streamkit import (
    funded_accounts,
    new_key,
    open_ws,
    rest_book,
)
from tests.sim.simkit import limit

BTC = "BTCUSDT"
ETH = "ETHUSDT"


# ----------------------------------------------------------------------------- SIM_SYNC, faults
@pytest.mark.asyncio
async def test_sim_sync_follows_every_frame_queued_before_it_except_delayed_ones(
    http: Http,
) -> None:
    client = await open_ws(http, "/ws/btcusdt@markPrice@1s")
    reply, frames = await client.request("SIM_SYNC")
    assert reply["result"]["now_ms"] == http.handle.engine.clock.now_ms()
    assert frames == []
    await http.control("POST", "advance", {"ms": 5_000})
    assert len(await client.sync()) == 5
    assert (await http.control("POST", "stream-faults", {"delay_ms": 2_500})).status == 200
    faults = (await http.control("GET", "stream-faults")).body
    assert (faults["delay_ms"], faults["reorder"], faults["gap_symbol"]) == (2_500, 0, None)
    await http.control("POST", "advance", {"ms": 3_000})
    assert await client.sync() == []  # every frame is held for 2.5 s of virtual time
    now = http.handle.engine.clock.now_ms()
    await http.control("POST", "advance", {"ms": 500})  # no update: the pump releases
    assert [f["E"] for f in await client.sync()] == [now - 2_000]
    await http.control("POST", "stream-faults", {"delay_ms": 0})  # switched off: all out, in order
    assert [f["E"] for f in await client.sync()] == [now - 1_000, now]


@pytest.mark.asyncio
async def test_a_gap_fault_withholds_one_diff_and_the_pu_chain_shows_it(http: Http) -> None:
    engine = http.handle.engine
    (acct,) = funded_accounts(engine, 1)
    before = await open_ws(http, "/ws/btcusdt@depth")
    snapshot = await rest_book(http, BTC)
    await http.control("POST", "stream-faults", {"gap_symbol": BTC})
    after = await open_ws(http, "/ws/btcusdt@depth")  # joined after: no gap for it
    await after.sync()
    for price in ("59000", "59001", "59002"):
        engine.place_order(acct, limit(BTC, Side.BUY, "0.01", price))
    seen = await before.sync()
    full = await after.sync()
    assert len(full) == 3
    assert all(b["pu"] == a["u"] for a, b in itertools.pairwise(full))
    assert seen == full[1:]  # the first diff was withheld
    assert full[0]["pu"] == snapshot["lastUpdateId"] != seen[0]["pu"]  # the break shows in pu
    faults = (await http.control("GET", "stream-faults")).body
    assert faults["gap_symbol"] == BTC


@pytest.mark.asyncio
async def test_a_reorder_fault_swaps_pairs_of_diffs(http: Http) -> None:
    engine = http.handle.engine
    (acct,) = funded_accounts(engine, 1)
    client = await open_ws(http, "/ws/btcusdt@depth")
    await http.control("POST", "stream-faults", {"reorder": 2})
    for n in range(5):
        engine.place_order(acct, limit(BTC, Side.BUY, "0.01", str(59_000 + n)))
    frames = await client.sync()
    order = [f["u"] for f in frames]
    ids = sorted(order)
    assert order == [ids[1], ids[0], ids[3], ids[2], ids[4]]


@pytest.mark.asyncio
async def test_drop_connections_cuts_every_socket_at_once_and_new_ones_work(http: Http) -> None:
    key = await new_key(http)
    sockets = [
        await open_ws(http, "/ws/btcusdt@markPrice@1s"),
        await open_ws(http, f"/private/ws?listenKey={key}"),
        await open_ws(http, "/stream?streams=ethusdt@depth"),
    ]
    hub = http.handle.streams
    assert len(hub.connections) == 3
    reply = await http.control("POST", "stream-faults", {"drop_connections": True})
    assert reply.status == 200
    assert hub.connections == []
    for client in sockets:
        message = await client.closed()
        assert message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        assert client.ws.close_code == 1006  # abnormal: no close frame, as a network drop
    faults = (await http.control("GET", "stream-faults")).body
    assert (faults["drop_connections"], faults["drops"]) == (False, 1)
    client = await open_ws(http, f"/ws/{key}")  # the key survives a drop
    await http.call("POST", "/fapi/v1/leverage", {"symbol": ETH, "leverage": 3}, signed=True)
    assert [f["e"] for f in await client.sync()] == ["ACCOUNT_CONFIG_UPDATE"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"delay_ms": -1}, -1130),
        ({"delay_ms": "5"}, -1130),
        ({"delay_ms": None}, -1102),
        ({"reorder": 1.5}, -1130),
        ({"drop_connections": "yes"}, -1130),
        ({"gap_symbol": "NOPE"}, -1121),
        ({"gap_symbol": 3}, -1130),
        ({"jitter": 1}, -1130),
        ([1], -1102),
    ],
)
async def test_stream_fault_control_refuses_bad_input(http: Http, body: Any, code: int) -> None:
    reply = await http.control("POST", "stream-faults", body)
    assert (reply.status, reply.body["code"]) == (400, code)


@pytest.mark.asyncio
async def test_stream_fault_control_needs_the_token(http: Http) -> None:
    url = http.handle.base_url + "/control/stream-faults"
    async with http.session.get(url) as resp:
        assert (resp.status, (await resp.json())["code"]) == (401, -2015)
    state = (await http.control("GET", "stream-faults")).body
    assert {k: state[k] for k in ("drop_connections", "delay_ms", "reorder", "gap_symbol")} == {
        "drop_connections": False,
        "delay_ms": 0,
        "reorder": 0,
        "gap_symbol": None,
    }
