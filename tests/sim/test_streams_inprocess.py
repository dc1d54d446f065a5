"""The in-process event stream (adapters/sim/streams.py), stream faults and the stream defects.

Each fault of ``engine.stream_faults`` is seen through a subscriber exactly as specified (gap,
reorder, delay on virtual time, drop and reconnect); each stream defect changes what is
published and nothing else; the harness's :class:`~harness.streams.SyncedBook` and
:class:`~harness.streams.FillRecorder` recover from what the faults do.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Iterable
from decimal import Decimal

import pytest

from adapters.sim.engine.events import (
    AccountReason,
    AccountUpdate,
    DepthDiff,
    EngineEvent,
    ForceOrder,
    MarkUpdate,
    OrderUpdate,
)
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.stream_faults import StreamFaultState
from adapters.sim.venue import SimVenue
from harness.errors import ConfigError, Rejected
from harness.model import BookSnapshot, MarginMode, PricePath, Side
from harness.streams import (
    AccountEvent,
    DepthEvent,
    FillRecorder,
    LocalBook,
    MarkEvent,
    OrderEvent,
    SyncedBook,
    TradeEvent,
    select,
)
from harness.venue import StreamFaults
from tests.sim.simkit import BTC, ETH, limit, make_engine, market, open_position

D = Decimal


def _venue(defects: Iterable[str] = ()) -> SimVenue:
    from adapters.sim.config import SimConfig

    return SimVenue(SimConfig(seed=7, defects=frozenset(defects)))


def _diff(symbol: str, u: int, time_ms: int = 0) -> DepthDiff:
    return DepthDiff(
        symbol=symbol,
        first_update_id=u,
        final_update_id=u,
        prev_final_update_id=u - 1,
        bids=((D(100), D(u)),),
        asks=(),
        time_ms=time_ms,
    )


# ---------------------------------------------------------------- the fault filter itself
def test_a_gap_withholds_the_next_diff_of_its_symbol_once_for_existing_subscribers() -> None:
    state = StreamFaultState()
    early = state.filter()
    state.set(StreamFaults(gap_symbol=BTC))
    late = state.filter()
    assert early.feed(_diff(ETH, 1)) == [_diff(ETH, 1)]  # other symbols pass
    assert early.feed(_diff(BTC, 2)) == []
    assert early.feed(_diff(BTC, 3)) == [_diff(BTC, 3)]
    assert early.withheld == 1
    assert late.feed(_diff(BTC, 2)) == [_diff(BTC, 2)]  # set before it subscribed


def test_reorder_swaps_the_next_pairs_then_stops() -> None:
    state = StreamFaultState()
    f = state.filter()
    state.set(StreamFaults(reorder=2))
    fed = [e for u in range(1, 7) for e in f.feed(_diff(BTC, u))]
    out = [e.final_update_id for e in fed if isinstance(e, DepthDiff)]
    assert out == [2, 1, 4, 3, 5, 6]
    assert f.swapped == 2


def test_delay_holds_events_on_virtual_time_and_releases_them_in_order() -> None:
    state = StreamFaultState()
    f = state.filter()
    state.set(StreamFaults(delay_ms=2000))
    assert f.feed(_diff(BTC, 1, time_ms=1000)) == []
    assert f.feed(_diff(BTC, 2, time_ms=1500)) == []
    assert f.release(2999) == []
    assert f.release(3000) == [_diff(BTC, 1, time_ms=1000)]
    state.set(StreamFaults())
    assert f.release(3000) == [_diff(BTC, 2, time_ms=1500)]  # delay off: everything goes


def test_drop_calls_listeners_and_bad_settings_are_refused() -> None:
    state = StreamFaultState()
    calls: list[int] = []
    remove = state.on_drop(lambda: calls.append(state.drops))
    state.set(StreamFaults(drop_connections=True))
    remove()
    state.set(StreamFaults(drop_connections=True))
    assert calls == [1]
    with pytest.raises(ValueError, match=">= 0"):
        state.set(StreamFaults(delay_ms=-1))


def test_depth_pu_wrong_renumbers_pu_to_hide_what_was_withheld() -> None:
    honest, hiding = StreamFaultState(), StreamFaultState(hide_gaps=True)
    chains = []
    for state in (honest, hiding):
        f = state.filter()
        f.feed(_diff(BTC, 1))
        state.set(StreamFaults(gap_symbol=BTC))
        f.feed(_diff(BTC, 2))
        (third,) = f.feed(_diff(BTC, 3))
        assert isinstance(third, DepthDiff)
        chains.append(third.prev_final_update_id)
    assert chains == [2, 1]  # honest: pu = 2 (the gap shows); hiding: pu = 1 (looks unbroken)


# ---------------------------------------------------------------- the in-process stream
def test_stream_carries_marks_trades_depth_and_the_accounts_own_events() -> None:
    async def run() -> None:
        venue = _venue()
        account = venue.account()
        stream = await venue.stream([BTC], account=account, depth=True)
        other = await venue.control.create_account(D(10_000))
        await venue.control.advance(2000)
        await account.place_order(market(BTC, Side.BUY, "0.01"))
        await other.place_order(market(BTC, Side.BUY, "0.01"))
        events = await stream.drain()
        marks = select(events, MarkEvent)
        assert [m.symbol for m in marks] == [BTC, BTC]
        assert marks[1].time_ms - marks[0].time_ms == 1000
        assert len(select(events, TradeEvent)) == 2  # public: both trades
        mine = select(events, OrderEvent)
        assert {e.execution_type for e in mine} == {"NEW", "TRADE"}
        assert len(select(events, AccountEvent)) == 1  # private: only the subscriber's
        assert select(events, DepthEvent)
        assert await stream.drain() == []
        await stream.close()
        await venue.control.advance(1000)
        assert await stream.drain() == []
        with pytest.raises(Rejected, match="-1121"):
            await venue.stream(["NOPEUSDT"])

    asyncio.run(run())


def test_a_dropped_stream_loses_the_outage_reconnects_and_the_client_recovers() -> None:
    async def run() -> None:
        venue = _venue()
        trader = await venue.control.create_account(D(100_000))
        stream = await venue.stream([BTC], account=trader, depth=True)

        async def snapshot() -> BookSnapshot:
            return await venue.order_book(BTC, 1000)

        synced = SyncedBook(stream, BTC, snapshot)
        recorder = FillRecorder(stream, lambda since: trader.fills(BTC, since_ms=since))
        await synced.start()
        await venue.control.set_stream_faults(StreamFaults(drop_connections=True))
        await trader.place_order(market(BTC, Side.BUY, "0.01"))  # lost on the wire
        events = await stream.drain()
        assert events == []
        assert stream.reconnects == 1
        await synced.feed(events)
        await recorder.feed(events, 0)
        assert synced.resyncs == ["reconnected"]
        assert recorder.recovered == 1
        assert synced.book is not None
        assert synced.book.differences(await venue.order_book(BTC, 1000)) == []
        await trader.place_order(market(BTC, Side.SELL, "0.01"))
        events = await stream.drain()
        await recorder.feed(events, 0)
        assert len(recorder.records) == len(await trader.fills(BTC)) == 2
        assert recorder.duplicates == 0
        with pytest.raises(Rejected, match="-1121"):
            await venue.control.set_stream_faults(StreamFaults(gap_symbol="NOPEUSDT"))
        with pytest.raises(ConfigError):
            await venue.control.set_stream_faults(StreamFaults(reorder=-1))

    asyncio.run(run())


def test_local_book_detects_gaps_and_reordering_and_resyncs() -> None:
    async def run() -> None:
        venue = _venue()
        stream = await venue.stream([BTC], depth=True)
        book = LocalBook(await venue.order_book(BTC, 1000))
        trader = await venue.control.create_account(D(100_000))
        await venue.control.set_stream_faults(StreamFaults(gap_symbol=BTC))
        for i in range(3):
            await trader.place_order(limit(BTC, Side.BUY, "0.01", D(59_000) - i))
        applied = [book.apply(e) for e in select(await stream.drain(), DepthEvent)]
        assert applied == [False, False]  # the first was withheld; the second breaks the chain
        assert (book.gaps, book.in_sync) == (1, False)
        book.resync(await venue.order_book(BTC, 1000))
        await trader.place_order(limit(BTC, Side.BUY, "0.01", D(58_000)))
        assert [book.apply(e) for e in select(await stream.drain(), DepthEvent)] == [True]
        assert book.differences(await venue.order_book(BTC, 1000)) == []

    asyncio.run(run())


# ---------------------------------------------------------------- the stream defects
class _Recorder:
    def __init__(self, engine: Engine) -> None:
        self.events: list[EngineEvent] = []
        engine.events.subscribe(self.events.append)


def _gap_down(engine: Engine, factor: str) -> None:
    idx = engine.prices[BTC].index
    engine.set_price_path(BTC, PricePath(points=((0, idx * D(factor)),)))
    engine.clock.advance(1000)


def test_mark_stream_stale_publishes_the_previous_mark() -> None:
    marks: dict[tuple[str, ...], tuple[list[Decimal], list[Decimal]]] = {}
    for defects in ((), ("mark-stream-stale",)):
        engine = make_engine(defects=defects)
        rec = _Recorder(engine)
        engine.set_price_path(
            BTC, PricePath(points=((0, D(60_000)), (5000, D(55_000))), linear=True)
        )
        seen: list[Decimal] = []
        for _ in range(5):
            engine.clock.advance(1000)
            seen.append(engine.prices[BTC].mark)
        published = [e.mark for e in rec.events if isinstance(e, MarkUpdate) and e.symbol == BTC]
        marks[defects] = (seen, published)
    seen, published = marks[()]
    assert published == seen
    seen, published = marks[("mark-stream-stale",)]
    assert published[1:] == seen[:-1]


def test_mark_stream_gaps_skips_every_fifth_second() -> None:
    engine = make_engine(defects=("mark-stream-gaps",))
    rec = _Recorder(engine)
    engine.clock.advance(10_000)
    times = sorted({e.time_ms for e in rec.events if isinstance(e, MarkUpdate)})
    assert len(times) == 8
    assert all((t // 1000) % 5 for t in times)


def _liquidated(defects: tuple[str, ...]) -> list[EngineEvent]:
    engine = make_engine(defects=defects)
    acct = engine.create_account(D(10_000))
    open_position(engine, acct, BTC, Side.BUY, "0.1", mode=MarginMode.ISOLATED, leverage=20)
    rec = _Recorder(engine)
    engine.market_maker.set_profile(BTC, "thin")
    engine.settle()
    _gap_down(engine, "0.9")
    assert engine.liquidator.records
    return rec.events


def test_liquidation_not_streamed_hides_force_orders_only() -> None:
    clean = _liquidated(())
    broken = _liquidated(("liquidation-not-streamed",))
    assert [e for e in clean if isinstance(e, ForceOrder)]
    assert not [e for e in broken if isinstance(e, ForceOrder)]
    assert len([e for e in broken if isinstance(e, OrderUpdate)]) == len(
        [e for e in clean if isinstance(e, OrderUpdate)]
    )


def test_liquidation_fill_unreported_hides_the_calculated_reports() -> None:
    broken = _liquidated(("liquidation-fill-unreported",))
    assert [e for e in broken if isinstance(e, ForceOrder)]
    assert not [e for e in broken if isinstance(e, OrderUpdate)]
    assert [e for e in broken if isinstance(e, AccountUpdate)]  # the account still changes


def test_partial_steps_merged_on_stream_publishes_one_order_for_several_steps() -> None:
    from adapters.sim.config import SimConfig

    async def steps(defects: tuple[str, ...]) -> tuple[int, list[Decimal]]:
        venue = SimVenue(SimConfig(seed=3, defects=frozenset(defects)))
        engine = venue.engine
        big = engine.create_account(D(1_000_000))
        inst = engine.instrument(BTC)
        qty = (inst.brackets[2].notional_floor * D("1.5") / engine.mark(BTC)).quantize(
            inst.step_size
        )
        open_position(engine, big, BTC, Side.BUY, str(qty), mode=MarginMode.ISOLATED, leverage=20)
        rec = _Recorder(engine)
        idx = engine.prices[BTC].index
        engine.set_price_path(
            BTC, PricePath(points=((0, idx), (120_000, idx * D("0.85"))), linear=True)
        )
        for _ in range(120):
            engine.clock.advance(1000)
            if not engine.accounts[big.account_id].positions[BTC].qty:
                break
        forced = [e.quantity for e in rec.events if isinstance(e, ForceOrder)]
        return len(engine.liquidator.records), forced

    records, forced = asyncio.run(steps(()))
    assert records >= 2
    assert len(forced) == records
    records, merged = asyncio.run(steps(("partial-steps-merged-on-stream",)))
    assert len(merged) < records
    assert sum(merged) == sum(forced)


def test_funding_update_wrong_reason_reports_funding_as_order() -> None:
    reasons = {}
    for defects in ((), ("funding-update-wrong-reason",)):
        engine = make_engine(defects=defects)
        acct = engine.create_account(D(10_000))
        open_position(engine, acct, ETH, Side.BUY, "1")
        rec = _Recorder(engine)
        engine.clock.advance(engine.prices[ETH].next_funding_ms - engine.clock.now_ms())
        reasons[defects] = [
            e.reason
            for e in rec.events
            if isinstance(e, AccountUpdate) and e.account_id == acct.account_id
        ]
    assert AccountReason.FUNDING_FEE in reasons[()]
    assert AccountReason.FUNDING_FEE not in reasons[("funding-update-wrong-reason",)]
    assert AccountReason.ORDER in reasons[("funding-update-wrong-reason",)]


def _diffs_through_flow(defects: tuple[str, ...]) -> tuple[list[DepthDiff], Engine]:
    engine = make_engine(defects=defects)
    rec = _Recorder(engine)
    acct = engine.create_account(D(1_000_000))
    rng = random.Random(5)
    for i in range(120):
        price = D(59_900) - rng.randint(0, 50)
        order = engine.place_order(acct.account_id, limit(BTC, Side.BUY, "0.01", price))
        if i % 2:
            engine.cancel_order(acct.account_id, BTC, order.order_id, None)
    return [e for e in rec.events if isinstance(e, DepthDiff) and e.symbol == BTC], engine


def test_depth_sequence_gap_skips_one_diff_in_forty() -> None:
    clean, _ = _diffs_through_flow(())
    broken, _ = _diffs_through_flow(("depth-sequence-gap",))
    assert all(b.prev_final_update_id == a.final_update_id for a, b in itertools.pairwise(clean))
    breaks = [
        b for a, b in itertools.pairwise(broken) if b.prev_final_update_id != a.final_update_id
    ]
    assert len(breaks) == len(clean) // 40
    assert len(broken) == len(clean) - len(clean) // 40


def test_depth_diff_level_dropped_never_sends_a_removed_level() -> None:
    clean, _ = _diffs_through_flow(())
    broken, _ = _diffs_through_flow(("depth-diff-level-dropped",))
    assert any(q == 0 for d in clean for _, q in d.bids)
    assert not any(q == 0 for d in broken for _, q in d.bids)


def test_depth_pu_wrong_is_the_engines_hide_gaps() -> None:
    assert make_engine(defects=("depth-pu-wrong",)).stream_faults.hide_gaps
    assert not make_engine().stream_faults.hide_gaps
