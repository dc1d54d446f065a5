"""Binance USDⓈ-M stream frames as harness events, and the stream's connection protocol.

Recorded frames take Binance's documented shapes (USDⓈ-M "Websocket Market Streams" and "User
Data Streams" pages: field names, string decimals, liquidation and ADL client ids); the
simulator's frames (adapters/sim/server/streams_frames.py) must convert into exactly the events
the in-process venue builds from the same engine events. The last part runs
:class:`BinanceEventStream` against a small WebSocket server on 127.0.0.1 that plays the venue:
the ``SIM_SYNC`` barrier, reconnection after a drop, listen-key renewal and keepalive, closing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import WSMsgType, web

from adapters.ccxt_venue.binance import BinanceVenue
from adapters.ccxt_venue.streams import (
    BinanceEventStream,
    ListenKeys,
    StreamSettings,
    convert,
    stream_names,
)
from adapters.ccxt_venue.testnets import BINANCE_DEMO_STREAMS
from adapters.sim import streams as sim_streams
from adapters.sim.engine.events import (
    AccountReason,
    AccountUpdate,
    BalanceRow,
    ConfigUpdate,
    DepthDiff,
    EngineEvent,
    ExecutionType,
    ForceOrder,
    MarginCall,
    MarginCallPosition,
    MarkUpdate,
    OrderUpdate,
    PositionRow,
    Trade,
)
from adapters.sim.server import streams_frames as frames
from adapters.sim.venue import SimVenue, open_sim_venue
from harness.errors import ConfigError, Missing, Rejected, VenueError
from harness.model import MarginMode, Side
from harness.streams import (
    AccountEvent,
    ConfigEvent,
    DepthEvent,
    LiquidationOrderEvent,
    MarginCallEvent,
    MarkEvent,
    OrderEvent,
    PositionSnapshot,
    StreamEvent,
    TradeEvent,
)
from harness.venue import Capability, VenueConfig, open_venue

D = Decimal


def wire(frame: Mapping[str, Any]) -> dict[str, Any]:
    """``frame`` as the client receives it: JSON text parsed with exact decimals."""
    parsed: dict[str, Any] = json.loads(json.dumps(frame), parse_float=Decimal)
    return parsed


# ---------------------------------------------------------------------------- recorded frames


def test_mark_price_update_keeps_every_price_exact() -> None:
    event = convert(
        wire(
            {
                "e": "markPriceUpdate",
                "E": 1562305380000,
                "s": "BTCUSDT",
                "p": "11794.15000000",
                "i": "11784.62659091",
                "P": "11784.25641265",
                "r": "0.00038167",
                "T": 1562306400000,
            }
        )
    )
    assert event == MarkEvent(
        symbol="BTCUSDT",
        mark=D("11794.15000000"),
        index=D("11784.62659091"),
        estimated_settle=D("11784.25641265"),
        funding_rate=D("0.00038167"),
        next_funding_ms=1562306400000,
        time_ms=1562305380000,
    )
    assert isinstance(event, MarkEvent)
    assert str(event.mark) == "11794.15000000"


def test_agg_trade_is_a_trade_at_its_trade_time() -> None:
    event = convert(
        wire(
            {
                "e": "aggTrade",
                "E": 123456789,
                "s": "BTCUSDT",
                "a": 5933014,
                "p": "0.001",
                "q": "100",
                "f": 100,
                "l": 105,
                "T": 123456785,
                "m": True,
            }
        )
    )
    assert event == TradeEvent(
        symbol="BTCUSDT",
        trade_id=5933014,
        price=D("0.001"),
        qty=D("100"),
        buyer_is_maker=True,
        time_ms=123456785,
    )


def test_depth_update_passes_the_sequence_ids_and_levels_through() -> None:
    event = convert(
        wire(
            {
                "e": "depthUpdate",
                "E": 123456789,
                "T": 123456788,
                "s": "BTCUSDT",
                "U": 157,
                "u": 160,
                "pu": 149,
                "b": [["0.0024", "10"], ["0.0023", "0"]],
                "a": [["0.0026", "100"]],
            }
        )
    )
    assert event == DepthEvent(
        symbol="BTCUSDT",
        first_update_id=157,
        final_update_id=160,
        prev_final_update_id=149,
        bids=((D("0.0024"), D("10")), (D("0.0023"), D(0))),
        asks=((D("0.0026"), D("100")),),
        time_ms=123456788,
    )


def test_force_order_is_a_public_liquidation_order() -> None:
    event = convert(
        wire(
            {
                "e": "forceOrder",
                "E": 1568014460893,
                "o": {
                    "s": "BTCUSDT",
                    "S": "SELL",
                    "o": "LIMIT",
                    "f": "IOC",
                    "q": "0.014",
                    "p": "9910",
                    "ap": "9910",
                    "X": "FILLED",
                    "l": "0.014",
                    "z": "0.014",
                    "T": 1568014460893,
                },
            }
        )
    )
    assert event == LiquidationOrderEvent(
        symbol="BTCUSDT",
        side=Side.SELL,
        quantity=D("0.014"),
        price=D("9910"),
        avg_price=D("9910"),
        filled_qty=D("0.014"),
        status="FILLED",
        time_ms=1568014460893,
    )


def order_frame(**fields: Any) -> dict[str, Any]:
    """An ``ORDER_TRADE_UPDATE`` in the documented shape, ``o`` fields overridden."""
    order: dict[str, Any] = {
        "s": "BTCUSDT",
        "c": "TEST",
        "S": "SELL",
        "o": "LIMIT",
        "f": "GTC",
        "q": "0.001",
        "p": "7103.04",
        "ap": "0",
        "sp": "0",
        "x": "NEW",
        "X": "NEW",
        "i": 8886774,
        "l": "0",
        "z": "0",
        "L": "0",
        "T": 1568879465650,
        "t": 0,
        "b": "0",
        "a": "9.91",
        "m": False,
        "R": False,
        "wt": "CONTRACT_PRICE",
        "ot": "LIMIT",
        "ps": "BOTH",
        "cp": False,
        "rp": "0",
        "pP": False,
        "si": 0,
        "ss": 0,
        "V": "EXPIRE_TAKER",
        "pm": "NONE",
        "gtd": 0,
        **fields,
    }
    return wire({"e": "ORDER_TRADE_UPDATE", "E": 1568879465651, "T": 1568879465650, "o": order})


def test_a_new_order_has_no_fill_average_commission_or_trade_id() -> None:
    event = convert(order_frame())
    assert event == OrderEvent(
        symbol="BTCUSDT",
        order_id="8886774",
        client_order_id="TEST",
        side=Side.SELL,
        status="NEW",
        execution_type="NEW",
        last_qty=D(0),
        last_price=D(0),
        cum_qty=D(0),
        avg_price=None,
        commission=D(0),
        realized_pnl=D(0),
        maker=False,
        trade_id=None,
        liquidation=False,
        adl=False,
        time_ms=1568879465650,
    )


def test_a_maker_fill_carries_its_price_commission_and_realized_pnl() -> None:
    event = convert(
        order_frame(
            x="TRADE",
            X="PARTIALLY_FILLED",
            l="0.0004",
            z="0.0004",
            L="7103.04",
            ap="7103.04000",
            N="USDT",
            n="0.00056824",
            t=99001,
            m=True,
            rp="-1.25000000",
        )
    )
    assert isinstance(event, OrderEvent)
    assert (event.execution_type, event.status) == ("TRADE", "PARTIALLY_FILLED")
    assert (event.last_qty, event.last_price, event.cum_qty) == (
        D("0.0004"),
        D("7103.04"),
        D("0.0004"),
    )
    assert event.avg_price == D("7103.04")
    assert event.commission == D("0.00056824")
    assert event.realized_pnl == D("-1.25")
    assert event.maker
    assert event.trade_id == 99001


def test_a_liquidation_execution_is_flagged_liquidation() -> None:
    event = convert(
        order_frame(
            c="autoclose-1791300000000",
            o="LIQUIDATION",
            ot="LIQUIDATION",
            f="IOC",
            x="CALCULATED",
            X="FILLED",
            q="0.1",
            p="84000",
            ap="84100",
            l="0.1",
            z="0.1",
            L="84100",
            N="USDT",
            n="42.05",
            t=10200,
            rp="-190",
        )
    )
    assert isinstance(event, OrderEvent)
    assert (event.liquidation, event.adl) == (True, False)
    assert event.execution_type == "CALCULATED"
    assert event.commission == D("42.05")


@pytest.mark.parametrize("client_id", ["adl_autoclose", "adl-42"])
def test_an_adl_order_is_flagged_adl_not_liquidation(client_id: str) -> None:
    event = convert(order_frame(c=client_id, o="LIQUIDATION", x="CALCULATED", X="FILLED", t=7))
    assert isinstance(event, OrderEvent)
    assert (event.adl, event.liquidation) == (True, False)


def test_a_trade_id_of_minus_one_means_no_trade() -> None:
    event = convert(order_frame(t=-1))
    assert isinstance(event, OrderEvent)
    assert event.trade_id is None


def test_account_update_reports_the_usdt_row_and_every_position() -> None:
    frame = {
        "e": "ACCOUNT_UPDATE",
        "E": 1564745798939,
        "T": 1564745798938,
        "a": {
            "m": "ORDER",
            "B": [
                {"a": "BUSD", "wb": "1.00000000", "cw": "0.00000000", "bc": "-49.12345678"},
                {"a": "USDT", "wb": "122624.12345678", "cw": "100.12345678", "bc": "50.12345678"},
            ],
            "P": [
                {
                    "s": "BTCUSDT",
                    "pa": "0",
                    "ep": "0.00000",
                    "bep": "0",
                    "cr": "200",
                    "up": "0",
                    "mt": "isolated",
                    "iw": "0.00000000",
                    "ps": "BOTH",
                },
                {
                    "s": "ETHUSDT",
                    "pa": "-10",
                    "ep": "6563.86000",
                    "bep": "6563.6",
                    "cr": "-45.04000000",
                    "up": "-1423.15600",
                    "mt": "cross",
                    "iw": "0",
                    "ps": "BOTH",
                },
            ],
        },
    }
    assert convert(wire(frame)) == AccountEvent(
        reason="ORDER",
        wallet_balance=D("122624.12345678"),
        cross_wallet=D("100.12345678"),
        balance_change=D("50.12345678"),
        positions=(
            PositionSnapshot(
                symbol="BTCUSDT",
                quantity=D(0),
                entry_price=D(0),
                unrealized_pnl=D(0),
                margin_mode=MarginMode.ISOLATED,
                isolated_wallet=D(0),
            ),
            PositionSnapshot(
                symbol="ETHUSDT",
                quantity=D(-10),
                entry_price=D("6563.86"),
                unrealized_pnl=D("-1423.156"),
                margin_mode=MarginMode.CROSS,
                isolated_wallet=D(0),
            ),
        ),
        time_ms=1564745798938,
    )


def test_a_funding_fee_update_may_carry_no_positions_and_keeps_its_raw_reason() -> None:
    frame = {
        "e": "ACCOUNT_UPDATE",
        "E": 1700000000001,
        "T": 1700000000000,
        "a": {
            "m": "FUNDING_FEE",
            "B": [{"a": "USDT", "wb": "999.87", "cw": "999.87", "bc": "-0.13"}],
            "P": [],
        },
    }
    event = convert(wire(frame))
    assert isinstance(event, AccountEvent)
    assert (event.reason, event.balance_change, event.positions) == ("FUNDING_FEE", D("-0.13"), ())


def test_an_account_update_without_the_margin_asset_says_nothing_about_its_wallet() -> None:
    frame = {"e": "ACCOUNT_UPDATE", "E": 1, "T": 1, "a": {"m": "DEPOSIT", "B": [], "P": []}}
    assert convert(wire(frame)) is None
    busd = {"a": "BUSD", "wb": "5", "cw": "5", "bc": "5"}
    frame["a"] = {"m": "DEPOSIT", "B": [busd], "P": []}
    assert convert(wire(frame)) is None
    assert convert(wire(frame), asset="BUSD") is not None


def test_margin_call_names_the_symbols_at_risk() -> None:
    frame = {
        "e": "MARGIN_CALL",
        "E": 1587727187525,
        "cw": "3.16812045",
        "p": [
            {
                "s": "ETHUSDT",
                "ps": "LONG",
                "pa": "1.327",
                "mt": "CROSSED",
                "iw": "0",
                "mp": "187.17127",
                "up": "-1.166074",
                "mm": "1.614445",
            }
        ],
    }
    assert convert(wire(frame)) == MarginCallEvent(
        cross_wallet=D("3.16812045"), symbols=("ETHUSDT",), time_ms=1587727187525
    )


def test_account_config_update_of_leverage_and_of_margin_type() -> None:
    leverage = {"e": "ACCOUNT_CONFIG_UPDATE", "E": 1611646737479, "T": 1611646737476}
    assert convert(wire({**leverage, "ac": {"s": "BTCUSDT", "l": 25}})) == ConfigEvent(
        symbol="BTCUSDT", leverage=25, margin_mode=None, time_ms=1611646737476
    )
    mode = {"s": "BTCUSDT", "l": 20, "marginType": "ISOLATED"}  # the simulator's addition
    assert convert(wire({**leverage, "ac": mode})) == ConfigEvent(
        symbol="BTCUSDT", leverage=20, margin_mode=MarginMode.ISOLATED, time_ms=1611646737476
    )
    assert convert(wire({**leverage, "ai": {"j": True}})) is None  # multi-assets mode


@pytest.mark.parametrize(
    "frame",
    [
        {"e": "listenKeyExpired", "E": 1576653824250, "listenKey": "abc"},
        {"e": "TRADE_LITE", "E": 1, "T": 1, "s": "BTCUSDT", "q": "1", "p": "1"},
        {"e": "bookTicker", "u": 1, "s": "BTCUSDT", "b": "1", "B": "1", "a": "2", "A": "1"},
    ],
)
def test_frames_the_harness_has_no_event_for_convert_to_none(frame: dict[str, Any]) -> None:
    assert convert(wire(frame)) is None


def test_a_malformed_frame_names_the_event_and_the_field() -> None:
    good = {"e": "markPriceUpdate", "E": 1, "s": "X", "p": "1", "i": "1", "P": "1", "r": "0"}
    with pytest.raises(VenueError, match=r"markPriceUpdate.*'T'"):
        convert(wire(good))
    with pytest.raises(VenueError, match="p='abc'"):
        convert(wire({**good, "T": 2, "p": "abc"}))


def test_stream_names_are_binances_in_lower_case() -> None:
    assert stream_names(["BTCUSDT"]) == [
        "btcusdt@markPrice@1s",
        "btcusdt@aggTrade",
        "btcusdt@forceOrder",
    ]
    assert stream_names(["BTCUSDT", "ETHUSDT"], depth=True)[-1] == "ethusdt@depth@100ms"


# ---------------------------------------------------------------------------- the venues

TESTNET_KEYS = {
    "PERPCHECK_BINANCEUSDM_DEMO_API_KEY": "k" * 64,
    "PERPCHECK_BINANCEUSDM_DEMO_SECRET": "s" * 64,
    "PERPCHECK_BYBIT_TESTNET_API_KEY": "bybit-test-key",
    "PERPCHECK_BYBIT_TESTNET_SECRET": "bybit-test-secret",
    "PERPCHECK_OKX_DEMO_API_KEY": "okx-test-key",
    "PERPCHECK_OKX_DEMO_SECRET": "okx-test-secret",
    "PERPCHECK_OKX_DEMO_PASSWORD": "okx-test-passphrase",
}


@pytest.fixture
def testnet_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TESTNET_KEYS.items():
        monkeypatch.setenv(name, value)


@pytest.mark.asyncio
@pytest.mark.usefixtures("testnet_keys")
async def test_binanceusdm_demo_streams_from_the_demo_host_reading_for_a_set_time() -> None:
    venue = await open_venue("binanceusdm-demo", VenueConfig(options={"stream_drain_ms": "250"}))
    try:
        assert isinstance(venue, BinanceVenue)
        assert Capability.READ_STREAMS in venue.capabilities
        assert Capability.CONTROL_STREAM_FAULTS not in venue.capabilities
        assert venue.stream_settings == StreamSettings(url=BINANCE_DEMO_STREAMS, drain_ms=250)
    finally:
        await venue.close()
    with pytest.raises(ConfigError, match="stream_drain_ms='soon'"):
        await open_venue("binanceusdm-demo", VenueConfig(options={"stream_drain_ms": "soon"}))


@pytest.mark.asyncio
@pytest.mark.usefixtures("testnet_keys")
@pytest.mark.parametrize("name", ["bybit-testnet", "okx-demo"])
async def test_bybit_and_okx_have_no_streams(name: str) -> None:
    venue = await open_venue(name, VenueConfig())
    try:
        assert Capability.READ_STREAMS not in venue.capabilities
        with pytest.raises(Missing, match="event streams"):
            await venue.stream(["BTCUSDT"])
    finally:
        await venue.close()


# ---------------------------------------------------------------------------- simulator frames

BTC, T0 = "BTCUSDT", 1_767_225_601_000


@pytest_asyncio.fixture
async def sim() -> SimVenue:
    return await open_sim_venue(VenueConfig())


def order_updates(account_id: str) -> list[OrderUpdate]:
    """An order's NEW, a maker fill, a liquidation execution and an ADL execution."""
    new = OrderUpdate(
        account_id=account_id,
        symbol=BTC,
        order_id=17,
        client_order_id="c-1",
        side=Side.BUY,
        type="LIMIT",
        time_in_force="GTC",
        price=D("100000.0"),
        orig_qty=D("0.010"),
        status="NEW",
        execution_type=ExecutionType.NEW,
        last_qty=D(0),
        last_price=D(0),
        cum_qty=D(0),
        avg_price=None,
        commission=D(0),
        realized_pnl=D(0),
        maker=False,
        trade_id=None,
        reduce_only=False,
        liquidation=False,
        adl=False,
        time_ms=T0,
    )
    fill = replace(
        new,
        status="PARTIALLY_FILLED",
        execution_type=ExecutionType.TRADE,
        last_qty=D("0.004"),
        last_price=D("100000.0"),
        cum_qty=D("0.004"),
        avg_price=D("100000.00000000"),
        commission=D("0.16"),
        realized_pnl=D("-0.5"),
        maker=True,
        trade_id=555,
    )
    liquidation = replace(
        fill,
        client_order_id="autoclose-9",
        type="MARKET",
        execution_type=ExecutionType.CALCULATED,
        status="FILLED",
        maker=False,
        liquidation=True,
    )
    adl = replace(liquidation, client_order_id="adl-3", liquidation=False, adl=True)
    return [new, fill, liquidation, adl]


def sim_frames(sim: SimVenue) -> list[tuple[EngineEvent, dict[str, Any]]]:
    """Engine events of every kind the streams carry, each with the server's frame for it."""
    engine, account_id = sim.engine, sim.account().account_id
    mark = MarkUpdate(
        symbol=BTC,
        mark=D("100000.1"),
        index=D("99999.9"),
        estimated_settle=D("100000.05"),
        funding_rate=D("0.0001"),
        next_funding_ms=T0 + 3_600_000,
        time_ms=T0,
    )
    trade = Trade(
        symbol=BTC, trade_id=9, price=D("100000.0"), qty=D("0.5"), buyer_is_maker=True, time_ms=T0
    )
    diff = DepthDiff(
        symbol=BTC,
        first_update_id=11,
        final_update_id=12,
        prev_final_update_id=10,
        bids=((D("99999.0"), D(0)),),
        asks=((D("100001.0"), D("2.5")),),
        time_ms=T0,
    )
    forced = [
        ForceOrder(
            account_id=account_id,
            symbol=BTC,
            side=Side.SELL,
            quantity=D("0.004"),
            price=D("98000"),
            avg_price=avg,
            filled_qty=D(0) if avg is None else D("0.004"),
            status="FILLED",
            time_ms=T0,
            partial=False,
            trigger_mark=D("99100"),
        )
        for avg in (None, D("99000.5"))
    ]
    account = AccountUpdate(
        account_id=account_id,
        reason=AccountReason.FUNDING_FEE,
        balances=(BalanceRow("USDT", D("9990.5"), D("9980.5"), D("-0.25")),),
        positions=(
            PositionRow(BTC, D("-0.004"), D("100000"), D("1.5"), MarginMode.ISOLATED, D(10)),
        ),
        time_ms=T0,
    )
    at_risk = MarginCallPosition(
        BTC, Side.SELL, D("0.004"), MarginMode.CROSS, D(0), D("101000"), D("-4"), D("2")
    )
    call = MarginCall(
        account_id=account_id, cross_wallet=D("12.5"), positions=(at_risk,), time_ms=T0
    )
    config = ConfigUpdate(
        account_id=account_id, symbol=BTC, leverage=7, margin_mode=None, time_ms=T0
    )
    return [
        (mark, frames.mark_price(mark)),
        (trade, frames.agg_trade(trade)),
        (diff, frames.depth_update(diff)),
        *((f, frames.force_order(f)) for f in forced),
        (account, frames.account_update(account)),
        (call, frames.margin_call(call)),
        *((o, frames.order_trade_update(o, engine)) for o in order_updates(account_id)),
        (config, frames.config_update(config)),
    ]


def test_simulator_frames_convert_to_the_in_process_venues_events(sim: SimVenue) -> None:
    for event, frame in sim_frames(sim):
        expected = sim_streams.convert(event)
        assert expected is not None
        assert convert(wire(frame)) == expected, type(event).__name__


def test_a_simulator_margin_mode_frame_also_reports_the_current_leverage(sim: SimVenue) -> None:
    engine = sim.engine
    published: list[EngineEvent] = []
    engine.events.subscribe(published.append)
    engine.set_margin_mode(sim.account().account_id, BTC, MarginMode.ISOLATED)
    (event,) = [e for e in published if isinstance(e, ConfigUpdate)]
    converted = convert(wire(frames.config_update(event)))
    assert isinstance(converted, ConfigEvent)
    assert converted.margin_mode is MarginMode.ISOLATED
    assert converted.leverage == engine.config.default_leverage  # "l" is on every frame


# ---------------------------------------------------------------------------- the connection

MINUTE = 60_000


class FakeVenue:
    """A WebSocket venue on 127.0.0.1: the combined stream, ``SIM_SYNC``, pushes and drops."""

    def __init__(self, *, sim_sync: bool = True) -> None:
        self.sim_sync = sim_sync
        self.connections: list[list[str]] = []  # the stream names of each connection, in order
        self.methods: list[str] = []
        self.now_ms = 1_000
        self.url = ""
        self.streams: list[BinanceEventStream] = []  # closed before the server stops
        self._open: dict[web.WebSocketResponse, web.Request] = {}
        self.app = web.Application()
        self.app.router.add_get("/stream", self.handle)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        names = request.query.get("streams", "").split("/")
        if "bad@stream" in names:
            raise web.HTTPBadRequest(text='{"code": -1121, "msg": "Invalid symbol."}')
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections.append(names)
        self._open[ws] = request
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                req = json.loads(msg.data)
                self.methods.append(req["method"])
                if req["method"] == "SIM_SYNC" and self.sim_sync:
                    await ws.send_json({"result": {"now_ms": self.now_ms}, "id": req["id"]})
        finally:
            self._open.pop(ws, None)
        return ws

    async def push(self, payload: Mapping[str, Any], stream: str = "btcusdt@aggTrade") -> None:
        for ws in list(self._open):
            await ws.send_str(json.dumps({"stream": stream, "data": payload}))

    def drop(self) -> None:
        """Cut every connection without a closing handshake."""
        for request in list(self._open.values()):
            assert request.transport is not None
            request.transport.abort()
        self._open.clear()

    @property
    def open_connections(self) -> int:
        return len(self._open)


class FakeKeys(ListenKeys):
    """Listen keys without HTTP, as Binance issues them: ``POST`` returns the account's active
    key, or a new one (``key1``, ``key2``...) once it is gone; a log of the calls."""

    def __init__(self) -> None:
        super().__init__(exchange=None)
        self.calls: list[str] = []
        self.issued = 0
        self.exists = False

    async def create(self) -> str:
        if not self.exists:
            self.issued += 1
            self.exists = True
        self.calls.append("POST")
        return f"key{self.issued}"

    async def keepalive(self, key: str) -> None:
        self.calls.append(f"PUT {key}")
        if not self.exists:
            raise Rejected(-1125, "This listenKey does not exist.")

    async def delete(self, key: str) -> None:
        self.calls.append(f"DELETE {key}")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000

    def now_ms(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += round(seconds * 1000)


AGG = {"e": "aggTrade", "E": 5, "s": "BTCUSDT", "a": 1, "p": "1.5", "q": "2", "T": 5, "m": False}
EXPIRED = {"e": "listenKeyExpired", "E": 9, "listenKey": "key1"}


def agg(trade_id: int) -> dict[str, Any]:
    return {**AGG, "a": trade_id}


def trade_ids(events: list[StreamEvent]) -> list[int]:
    return [e.trade_id for e in events if isinstance(e, TradeEvent)]


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeVenue]:
    venue = FakeVenue()
    runner = web.AppRunner(venue.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    venue.url = f"ws://127.0.0.1:{runner.addresses[0][1]}"
    yield venue
    for stream in venue.streams:
        await stream.close()
    await runner.cleanup()


async def open_stream(
    fake: FakeVenue,
    *,
    keys: ListenKeys | None = None,
    clock: FakeClock | None = None,
    sim_sync: bool = True,
    seen: list[int] | None = None,
) -> BinanceEventStream:
    settings = StreamSettings(
        url=fake.url,
        sim_sync=sim_sync,
        drain_ms=10,
        on_time=None if seen is None else seen.append,
    )
    stream = await BinanceEventStream.open(
        settings, stream_names(["BTCUSDT"]), clock=clock or FakeClock(), keys=keys
    )
    fake.streams.append(stream)
    return stream


def stream_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("perpcheck-stream")]


@pytest.mark.asyncio
async def test_drain_returns_every_frame_sent_before_the_barrier_in_order(fake: FakeVenue) -> None:
    keys, seen = FakeKeys(), list[int]()
    stream = await open_stream(fake, keys=keys, seen=seen)
    assert fake.connections == [[*stream_names(["BTCUSDT"]), "key1"]]  # one connection for all
    for trade_id in range(1, 6):
        await fake.push(agg(trade_id))
    await fake.push(order_frame(), stream="key1")
    fake.now_ms = 7_000
    events = await stream.drain()
    assert trade_ids(events) == [1, 2, 3, 4, 5]
    assert isinstance(events[-1], OrderEvent)
    assert seen[-1] == 7_000  # the venue's clock learns the barrier's time
    assert await stream.drain() == []
    assert stream.reconnects == 0
    await stream.close()


@pytest.mark.asyncio
async def test_a_dropped_connection_is_reopened_and_resubscribed_at_the_next_drain(
    fake: FakeVenue,
) -> None:
    keys = FakeKeys()
    stream = await open_stream(fake, keys=keys)
    await fake.push(agg(1))
    assert trade_ids(await stream.drain()) == [1]
    fake.drop()
    await fake.push(agg(2))  # nobody is connected: lost on the wire
    assert await stream.drain() == []
    assert stream.reconnects == 1
    assert fake.connections[-1] == fake.connections[0]  # the same streams, listen key asked again
    assert keys.calls == ["POST", "POST"]
    await fake.push(agg(3))
    assert trade_ids(await stream.drain()) == [3]
    await stream.close()


@pytest.mark.asyncio
async def test_the_listen_key_is_kept_alive_every_30_minutes_of_the_venues_clock(
    fake: FakeVenue,
) -> None:
    keys, clock = FakeKeys(), FakeClock()
    stream = await open_stream(fake, keys=keys, clock=clock)
    clock.now += 29 * MINUTE
    await stream.drain()
    assert keys.calls == ["POST"]
    clock.now += MINUTE
    await stream.drain()
    assert keys.calls == ["POST", "PUT key1"]
    clock.now += 29 * MINUTE
    await stream.drain()
    assert keys.calls == ["POST", "PUT key1"]
    assert stream.reconnects == 0
    await stream.close()


@pytest.mark.asyncio
async def test_a_listen_key_that_is_gone_is_replaced_by_reconnecting(fake: FakeVenue) -> None:
    keys, clock = FakeKeys(), FakeClock()
    stream = await open_stream(fake, keys=keys, clock=clock)
    keys.exists = False
    clock.now += 30 * MINUTE
    await stream.drain()
    assert keys.calls == ["POST", "PUT key1", "POST"]
    assert fake.connections[-1][-1] == "key2"
    assert stream.listen_key == "key2"
    assert stream.reconnects == 1
    keys.exists = False
    await fake.push(EXPIRED, stream="key2")  # the venue ends the user stream
    assert await stream.drain() == []
    assert fake.connections[-1][-1] == "key3"
    assert stream.reconnects == 2
    await fake.push(order_frame(), stream="key3")
    assert [type(e) for e in await stream.drain()] == [OrderEvent]
    await stream.close()


@pytest.mark.asyncio
async def test_close_releases_the_key_with_its_last_stream_and_leaves_nothing_running(
    fake: FakeVenue,
) -> None:
    keys = FakeKeys()
    first = await open_stream(fake, keys=keys)
    second = await open_stream(fake, keys=keys)
    market_only = await open_stream(fake)
    assert fake.connections[-1] == stream_names(["BTCUSDT"])
    assert len(stream_tasks()) == 3
    await first.close()
    assert keys.calls == ["POST", "POST"]  # the second stream still uses the account's key
    await second.close()
    await market_only.close()
    await first.close()  # idempotent
    assert keys.calls == ["POST", "POST", "DELETE key1"]
    assert stream_tasks() == []
    await fake.push(agg(1))  # the server drops closed sockets as it notices them
    with pytest.raises(ConfigError, match="closed event stream"):
        await first.drain()


@pytest.mark.asyncio
async def test_a_malformed_frame_fails_one_drain_and_the_stream_goes_on(fake: FakeVenue) -> None:
    stream = await open_stream(fake)
    await fake.push(agg(1))
    await fake.push({**AGG, "p": "abc"})
    await fake.push(agg(2))
    with pytest.raises(VenueError, match="p='abc'"):
        await stream.drain()
    await fake.push(agg(3))
    assert trade_ids(await stream.drain()) == [1, 2, 3]
    await stream.close()


@pytest.mark.asyncio
async def test_refused_streams_are_a_config_error(fake: FakeVenue) -> None:
    settings = StreamSettings(url=fake.url, sim_sync=True)
    with pytest.raises(ConfigError, match="HTTP 400"):
        await BinanceEventStream.open(settings, ["bad@stream"], clock=FakeClock())
    assert stream_tasks() == []


@pytest.mark.asyncio
async def test_without_the_barrier_a_drain_returns_what_has_arrived(fake: FakeVenue) -> None:
    fake.sim_sync = False
    stream = await open_stream(fake, sim_sync=False)
    await fake.push(agg(1))
    received: list[StreamEvent] = []
    for _ in range(200):  # a guard: loopback delivers within a few drains of 10 ms
        received += await stream.drain()
        if received:
            break
    assert trade_ids(received) == [1]
    assert fake.methods == []  # a real venue is never sent SIM_SYNC
    await stream.close()
