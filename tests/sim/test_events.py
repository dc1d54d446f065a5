"""The engine's event bus (engine/events.py, engine/publisher.py).

Depth diffs rebuild ``OrderBook.levels`` exactly through thousands of random operations by
Binance's recipe; every event kind is produced where the engine changes; account updates carry
the first reason of their operation; margin calls fire with hysteresis.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from decimal import Decimal
from typing import TypeVar

import pytest

from adapters.sim.engine.accounts import PositionState
from adapters.sim.engine.events import (
    MARGIN_CALL_RATIO,
    MARGIN_CALL_REARM_RATIO,
    AccountReason,
    AccountUpdate,
    BookTicker,
    ConfigUpdate,
    DepthDiff,
    EngineEvent,
    EventBus,
    ExecutionType,
    ForceOrder,
    MarginCall,
    MarkUpdate,
    OrderUpdate,
    Trade,
)
from adapters.sim.engine.exchange import Engine
from harness.model import MarginMode, PricePath, Side, TimeInForce
from tests.sim.simkit import (
    BTC,
    ETH,
    limit,
    make_engine,
    market,
    open_position,
    quiet_instruments,
    random_operation,
)

D = Decimal
E = TypeVar("E")
Levels = dict[Decimal, Decimal]


class Recorder:
    """Subscribes to an engine and keeps every event."""

    def __init__(self, engine: Engine) -> None:
        self.events: list[EngineEvent] = []
        self.token = engine.events.subscribe(self.events.append)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def take(self) -> list[EngineEvent]:
        out, self.events[:] = list(self.events), []
        return out


class LocalBook:
    """A client's book: a snapshot, then diffs by the Binance recipe (asserting the sequence)."""

    def __init__(self, last_update_id: int, bids: Levels, asks: Levels) -> None:
        self.last = last_update_id
        self.sides = {Side.BUY: dict(bids), Side.SELL: dict(asks)}
        self.synced = False

    @classmethod
    def snapshot(cls, engine: Engine, symbol: str) -> LocalBook:
        book = engine.books[symbol]
        return cls(
            book.update_id, dict(book.levels(Side.BUY, 10**6)), dict(book.levels(Side.SELL, 10**6))
        )

    def apply(self, diff: DepthDiff) -> None:
        if diff.final_update_id <= self.last:
            return  # already in the snapshot
        if self.synced:
            assert diff.prev_final_update_id == self.last, (diff, self.last)
        else:
            assert diff.first_update_id <= self.last + 1 <= diff.final_update_id, (diff, self.last)
            self.synced = True
        for side, levels in ((Side.BUY, diff.bids), (Side.SELL, diff.asks)):
            for price, qty in levels:
                if qty:
                    self.sides[side][price] = qty
                else:
                    self.sides[side].pop(price, None)
        self.last = diff.final_update_id

    def assert_equals(self, engine: Engine, symbol: str) -> None:
        book = engine.books[symbol]
        assert self.last == book.update_id
        bids = sorted(self.sides[Side.BUY].items(), reverse=True)
        asks = sorted(self.sides[Side.SELL].items())
        assert tuple(bids) == book.levels(Side.BUY, 10**6)
        assert tuple(asks) == book.levels(Side.SELL, 10**6)


# ----------------------------------------------------------------------------- the bus
def test_bus_delivers_in_order_and_tracks_activity() -> None:
    seen: list[bool] = []
    bus = EventBus(on_active=seen.append)
    states = [bus.active]
    got: list[str] = []
    first = bus.subscribe(lambda e: got.append(f"a{e.time_ms}"))
    second = bus.subscribe(lambda e: got.append(f"b{e.time_ms}"))
    bus.publish(ConfigUpdate(account_id="x", symbol=BTC, leverage=5, margin_mode=None, time_ms=1))
    assert got == ["a1", "b1"]
    bus.unsubscribe(first)
    states.append(bus.active)
    bus.unsubscribe(second)
    bus.unsubscribe(second)  # unknown tokens are ignored
    states.append(bus.active)
    assert states == [False, True, False]
    assert seen == [True, False]


def test_books_record_nothing_while_nobody_listens() -> None:
    engine = make_engine()
    assert all(book.touched is None for book in engine.books.values())
    recorder = Recorder(engine)
    assert all(book.touched == set() for book in engine.books.values())
    engine.events.unsubscribe(recorder.token)
    engine.clock.advance(5_000)
    assert all(book.touched is None for book in engine.books.values())


# ----------------------------------------------------------------------------- depth
def test_depth_diffs_rebuild_the_book_exactly_through_thousands_of_random_operations() -> None:
    engine = make_engine(seed=7)
    rng = random.Random(7)
    accounts = [engine.create_account(D(10**9)).account_id for _ in range(4)]
    for acct in accounts:
        for symbol in (BTC, ETH):
            engine.set_leverage(acct, symbol, 5)
    diffs: dict[str, list[DepthDiff]] = {BTC: [], ETH: []}
    recorder_token = engine.events.subscribe(
        lambda e: diffs[e.symbol].append(e) if isinstance(e, DepthDiff) else None
    )
    # One client syncs from the subscription, others join later from a REST-like snapshot
    # with the diffs they buffered since subscribing (all of them, here).
    clients = {s: [LocalBook.snapshot(engine, s)] for s in (BTC, ETH)}
    applied = {s: [0] for s in (BTC, ETH)}
    operations = 3_000
    for n in range(operations):
        random_operation(engine, rng, accounts)
        for symbol in (BTC, ETH):
            for i, client in enumerate(clients[symbol]):
                for diff in diffs[symbol][applied[symbol][i] :]:
                    client.apply(diff)
                applied[symbol][i] = len(diffs[symbol])
            if n % 97 == 0:
                # A late joiner: buffered diffs from well before its snapshot.
                late = LocalBook.snapshot(engine, symbol)
                start = max(0, len(diffs[symbol]) - rng.randint(0, 5))
                for diff in diffs[symbol][start:]:
                    late.apply(diff)
                clients[symbol].append(late)
                applied[symbol].append(len(diffs[symbol]))
        if n % 50 == 0 or n == operations - 1:
            for symbol in (BTC, ETH):
                for client in clients[symbol]:
                    client.assert_equals(engine, symbol)
    engine.events.unsubscribe(recorder_token)
    for symbol in (BTC, ETH):
        chain = diffs[symbol]
        assert len(chain) > 300
        assert all(
            b.prev_final_update_id == a.final_update_id for a, b in itertools.pairwise(chain)
        )
        assert all(d.first_update_id == d.prev_final_update_id + 1 for d in chain)


def test_one_diff_per_operation_and_a_book_ticker_when_the_top_changes() -> None:
    engine = make_engine()
    acct = engine.create_account(D(100_000))
    recorder = Recorder(engine)
    best_ask = engine.books[BTC].best_ask()
    assert best_ask is not None
    engine.place_order(acct.account_id, market(BTC, Side.BUY, "0.5"))  # walks several levels
    (diff,) = recorder.of(DepthDiff)
    assert diff.asks[0][0] == best_ask
    assert not diff.bids
    (ticker,) = recorder.of(BookTicker)
    assert ticker.update_id == diff.final_update_id == engine.books[BTC].update_id
    bid, ask = engine.books[BTC].levels(Side.BUY, 1)[0], engine.books[BTC].levels(Side.SELL, 1)[0]
    assert (ticker.bid, ticker.bid_qty, ticker.ask, ticker.ask_qty) == (*bid, *ask)
    recorder.take()
    deep_bid = engine.books[BTC].levels(Side.BUY, 5)[-1][0] - 100
    engine.place_order(acct.account_id, limit(BTC, Side.BUY, "0.01", deep_bid))
    assert [type(e) for e in recorder.take()] == [OrderUpdate, DepthDiff]  # top unchanged


# ----------------------------------------------------------------------------- orders
def test_order_reports_new_trade_canceled_and_expired() -> None:
    engine = make_engine()
    acct = engine.create_account(D(100_000))
    recorder = Recorder(engine)
    rec = engine.place_order(acct.account_id, market(BTC, Side.BUY, "0.3", cid="m-1"))
    reports = recorder.of(OrderUpdate)
    assert reports[0].execution_type is ExecutionType.NEW
    assert reports[0].status == "NEW"
    fills = reports[1:]
    assert {r.execution_type for r in fills} == {ExecutionType.TRADE}
    assert sum((r.last_qty for r in fills), D(0)) == D("0.3")
    assert fills[-1].status == "FILLED"
    assert fills[-1].cum_qty == D("0.3")
    assert [r.trade_id for r in fills] == [f.trade_id for f in acct.fills]
    assert all(r.client_order_id == "m-1" and r.order_id == rec.order_id for r in reports)
    assert sum((r.commission for r in fills), D(0)) == sum((f.commission for f in acct.fills), D(0))
    trades = recorder.of(Trade)
    assert [t.trade_id for t in trades if isinstance(t, Trade)] == [r.trade_id for r in fills]
    assert all(isinstance(t, Trade) and not t.buyer_is_maker for t in trades)
    recorder.take()
    bid = engine.books[BTC].levels(Side.BUY, 1)[0][0]
    resting = engine.place_order(acct.account_id, limit(BTC, Side.BUY, "0.01", bid - 50))
    engine.cancel_order(acct.account_id, BTC, resting.order_id, None)
    kinds = [e.execution_type for e in recorder.of(OrderUpdate) if isinstance(e, OrderUpdate)]
    assert kinds == [ExecutionType.NEW, ExecutionType.CANCELED]
    recorder.take()
    ask = engine.books[BTC].levels(Side.SELL, 1)[0][0]
    engine.place_order(acct.account_id, limit(BTC, Side.SELL, "0.01", ask + 50, TimeInForce.IOC))
    reports = recorder.of(OrderUpdate)
    assert reports[-1].execution_type is ExecutionType.EXPIRED
    assert reports[-1].status == "EXPIRED"


def test_market_maker_and_fund_orders_are_not_reported() -> None:
    engine = make_engine()
    recorder = Recorder(engine)
    engine.market_maker.set_profile(BTC, "thin")
    engine.settle()
    assert not recorder.of(OrderUpdate)
    assert recorder.of(DepthDiff)


# ----------------------------------------------------------------------------- accounts
def test_account_updates_carry_the_first_reason_once_per_operation() -> None:
    engine = make_engine(instruments=quiet_instruments(funding_interval_hours=1))
    recorder = Recorder(engine)
    acct = engine.create_account(D(50_000))
    (deposit,) = recorder.take()
    assert isinstance(deposit, AccountUpdate)
    assert deposit.reason is AccountReason.DEPOSIT
    assert deposit.balances[0].balance_change == D(50_000)
    assert deposit.positions == ()
    open_position(engine, acct, BTC, Side.BUY, "0.4", mode=MarginMode.ISOLATED, leverage=10)
    updates = [e for e in recorder.take() if isinstance(e, AccountUpdate)]
    (order,) = updates  # one per operation although the order walked several levels
    assert order.reason is AccountReason.ORDER
    assert order.balances[0].balance_change == 0
    (row,) = order.positions
    pos = acct.positions[BTC]
    assert (row.symbol, row.qty, row.entry, row.isolated_wallet) == (
        BTC,
        pos.qty,
        pos.entry,
        pos.isolated_wallet,
    )
    assert order.balances[0].wallet == acct.wallet_total()
    engine.add_isolated_margin(acct.account_id, BTC, D(100))
    (transfer,) = [e for e in recorder.take() if isinstance(e, AccountUpdate)]
    assert transfer.reason is AccountReason.MARGIN_TRANSFER
    assert transfer.positions[0].isolated_wallet == pos.isolated_wallet
    funding_at = engine.prices[BTC].next_funding_ms
    engine.clock.advance(max(0, funding_at - engine.clock.now_ms()))
    funding = [e for e in recorder.take() if isinstance(e, AccountUpdate)]
    (paid,) = [u for u in funding if u.account_id == acct.account_id]
    assert paid.reason is AccountReason.FUNDING_FEE
    fee = acct.income[-1]
    assert paid.balances[0].balance_change == fee.amount != 0
    assert paid.time_ms == funding_at


def test_leverage_and_margin_mode_changes_are_config_updates() -> None:
    engine = make_engine()
    acct = engine.create_account(D(1_000))
    recorder = Recorder(engine)
    now = engine.clock.now_ms()
    engine.set_leverage(acct.account_id, BTC, 7)
    engine.set_margin_mode(acct.account_id, BTC, MarginMode.ISOLATED)
    assert recorder.of(ConfigUpdate) == [
        ConfigUpdate(
            account_id=acct.account_id, symbol=BTC, leverage=7, margin_mode=None, time_ms=now
        ),
        ConfigUpdate(
            account_id=acct.account_id,
            symbol=BTC,
            leverage=7,  # the leverage in force, as Binance's ac.l
            margin_mode=MarginMode.ISOLATED,
            time_ms=now,
        ),
    ]


# ----------------------------------------------------------------------------- updates
def test_every_update_publishes_every_mark_and_times_never_go_back() -> None:
    engine = make_engine()
    recorder = Recorder(engine)
    start = engine.clock.now_ms()
    engine.clock.advance(3_000)
    marks = recorder.of(MarkUpdate)
    assert [(m.time_ms - start, m.symbol) for m in marks] == [
        (t, s) for t in (1_000, 2_000, 3_000) for s in engine.prices
    ]
    last = marks[-1]
    state = engine.prices[last.symbol]
    assert (last.mark, last.index, last.funding_rate, last.next_funding_ms) == (
        state.mark,
        state.index,
        state.last_funding_rate,
        state.next_funding_ms,
    )
    times = [e.time_ms for e in recorder.events]
    assert times == sorted(times)


def _gap_down(engine: Engine, symbol: str, factor: str) -> None:
    idx = engine.prices[symbol].index
    engine.market_maker.set_profile(symbol, "thin")
    engine.settle()
    engine.set_price_path(symbol, PricePath(points=((0, idx * D(factor)),)))
    engine.clock.advance(1000)


def test_a_liquidation_reports_its_force_order_calculated_executions_and_account_update() -> None:
    engine = make_engine()
    acct = engine.create_account(D(10_000))
    open_position(engine, acct, BTC, Side.BUY, "0.1", mode=MarginMode.ISOLATED, leverage=20)
    recorder = Recorder(engine)
    _gap_down(engine, BTC, "0.9")
    (force,) = recorder.of(ForceOrder)
    (record,) = engine.liquidator.records
    assert (force.account_id, force.side, force.quantity, force.filled_qty) == (
        acct.account_id,
        Side.SELL,
        record.quantity,
        record.filled_qty,
    )
    assert force.trigger_mark == record.trigger_mark
    assert force.status == "FILLED"
    mine = recorder.of(OrderUpdate)
    assert mine
    assert all(e.account_id == acct.account_id for e in mine)
    assert {e.execution_type for e in mine} == {ExecutionType.CALCULATED}
    assert all(e.liquidation and not e.adl for e in mine)
    assert all(e.client_order_id.startswith("autoclose-") for e in mine)
    assert mine[-1].status == "FILLED"
    assert mine[-1].cum_qty == D("0.1")
    updates = recorder.of(AccountUpdate)
    (update,) = [u for u in updates if u.account_id == acct.account_id]
    assert update.reason is AccountReason.ORDER  # the fee (INSURANCE_CLEAR) came second
    assert update.positions[0].qty == 0


def test_deleveraged_counterparties_see_adl_executions_and_reason() -> None:
    engine = make_engine()
    short = engine.create_account(D(5_000))
    open_position(engine, short, BTC, Side.SELL, "0.05", mode=MarginMode.ISOLATED, leverage=20)
    trader = engine.create_account(D(5_000))
    open_position(engine, trader, BTC, Side.BUY, "0.05", mode=MarginMode.ISOLATED, leverage=20)
    engine.insurance.cross_wallet = D(0)
    recorder = Recorder(engine)
    _gap_down(engine, BTC, "0.85")
    assert engine.liquidator.adl_records
    adl = [
        e
        for e in recorder.of(OrderUpdate)
        if isinstance(e, OrderUpdate) and e.account_id == short.account_id
    ]
    assert adl
    assert all(e.adl and not e.liquidation for e in adl)
    assert {e.execution_type for e in adl} == {ExecutionType.CALCULATED}
    (update,) = [
        e
        for e in recorder.of(AccountUpdate)
        if isinstance(e, AccountUpdate) and e.account_id == short.account_id
    ]
    assert update.reason is AccountReason.ADL


def _price_at_ratio(engine: Engine, pos: PositionState, ratio: Decimal) -> Decimal:
    """The price where an isolated long's maintenance / equity is ``ratio`` (first tier)."""
    mmr = engine.instruments[pos.symbol].brackets[0].maint_margin_ratio
    q, entry, wallet = pos.qty, pos.entry, pos.isolated_wallet
    return (ratio * q * entry - ratio * wallet) / (ratio * q - q * mmr)


def _isolated_ratio(engine: Engine, acct_id: str) -> Decimal:
    pos = engine.accounts[acct_id].positions[BTC]
    fig = engine.ledger.figures(pos)
    return fig.maint_margin / (pos.isolated_wallet + fig.upnl)


def test_margin_calls_fire_on_reaching_the_ratio_and_rearm_only_below_the_lower_one() -> None:
    engine = make_engine(quiet=True)
    acct = engine.create_account(D(10_000))
    open_position(engine, acct, BTC, Side.BUY, "0.2", mode=MarginMode.ISOLATED, leverage=20)
    pos = acct.positions[BTC]
    idx = engine.prices[BTC].index
    # Down to a ratio of 0.9 (never 1), back up, down again, then a wobble to 0.75 and back:
    # two calls, the wobble stays above the re-arm ratio.
    near, wobble = _price_at_ratio(engine, pos, D("0.9")), _price_at_ratio(engine, pos, D("0.75"))
    points = [
        (0, idx),
        (30_000, near),
        (60_000, idx),
        (90_000, near),
        (100_000, wobble),
        (110_000, near),
    ]
    engine.set_price_path(BTC, PricePath(points=tuple(points), linear=True))
    ratios: list[tuple[int, Decimal]] = []
    calls: list[int] = []

    def listen(event: EngineEvent) -> None:
        if isinstance(event, MarkUpdate) and event.symbol == BTC:
            ratios.append((event.time_ms, _isolated_ratio(engine, acct.account_id)))
        elif isinstance(event, MarginCall):
            assert event.account_id == acct.account_id
            (row,) = event.positions
            assert row.symbol == BTC
            assert row.side is Side.BUY
            assert row.qty == D("0.2")
            calls.append(event.time_ms)

    engine.events.subscribe(listen)
    engine.clock.advance(115_000)
    assert not engine.liquidator.records
    expected, armed = [], True
    for time_ms, ratio in ratios:
        if armed and ratio >= MARGIN_CALL_RATIO:
            expected.append(time_ms)
            armed = False
        elif not armed and ratio < MARGIN_CALL_REARM_RATIO:
            armed = True
    assert len(expected) == 2
    assert calls == expected
    assert max(r for _, r in ratios) < 1


@pytest.mark.parametrize("symbol", [BTC, ETH])
def test_a_late_subscriber_continues_the_chain_from_the_book_id_at_subscription(
    symbol: str,
) -> None:
    engine = make_engine()
    engine.clock.advance(10_000)
    at_subscription = engine.books[symbol].update_id
    recorder = Recorder(engine)
    engine.market_maker.set_profile(symbol, "thin")
    engine.settle()
    (diff,) = [e for e in recorder.of(DepthDiff) if e.symbol == symbol]
    assert diff.prev_final_update_id == at_subscription
    assert Counter(type(e) for e in recorder.events)[DepthDiff] == 1
