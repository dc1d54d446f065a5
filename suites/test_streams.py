"""STRM: what a trader learns from the streams, and whether a careful client can trust it.

A local order book kept from the REST snapshot plus the diff-depth stream (Binance's recipe:
``U``/``u``/``pu``) must be the venue's book, exactly, under heavy order flow; and when the
stream misbehaves — a dropped connection, a missing update, frames out of order or late — the
client must be able to notice, resynchronise and end with nothing missed. The harness's client
is :class:`~harness.streams.SyncedBook` (book) and :class:`~harness.streams.FillRecorder`
(the account's executions, completed over REST after a reconnect).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from decimal import Decimal

from harness.checks import CheckContext, check
from harness.flow import OrderFlow
from harness.model import BookSnapshot, Fill, Instrument, Side
from harness.probes import limit, min_qty_for_notional
from harness.streams import DepthEvent, EventStream, FillRecorder, SyncedBook, select
from harness.venue import Account, Capability, StreamFaults, Venue, VenueControl

SYMBOL = "BTCUSDT"
DEPTH = 1000  # levels in each REST snapshot: the whole simulated book
NEEDS = {
    Capability.READ_STREAMS,
    Capability.TRADE,
    Capability.CONTROL_CLOCK,
    Capability.CONTROL_ACCOUNTS,
}


async def _flow(
    venue: Venue, control: VenueControl, ctx: CheckContext, check_id: str, accounts: int = 2
) -> tuple[Instrument, OrderFlow]:
    inst = (await venue.instruments())[SYMBOL]
    traders: list[Account] = [
        await control.create_account(Decimal(1_000_000), label=f"flow {i + 1}")
        for i in range(accounts)
    ]
    rng = random.Random(f"{ctx.seed}:{check_id}")  # noqa: S311 - replayable flow, not secrets
    return inst, OrderFlow(venue, inst, traders, rng)


def _snapshotter(venue: Venue) -> Callable[[], Awaitable[BookSnapshot]]:
    async def snapshot() -> BookSnapshot:
        return await venue.order_book(SYMBOL, DEPTH)

    return snapshot


async def _compare(synced: SyncedBook, venue: Venue) -> list[str]:
    """Where the local book differs from the venue's book now (empty: identical)."""
    snapshot = await venue.order_book(SYMBOL, DEPTH)
    book = synced.book
    if book is None:
        return ["no local book"]
    out = book.differences(snapshot)
    if book.last_update_id != snapshot.update_id:
        out.insert(0, f"update id: local {book.last_update_id} vs venue {snapshot.update_id}")
    return out


def _order_breaks(events: list[DepthEvent]) -> list[str]:
    """Received diffs whose ids or times go backwards (reordering on the wire)."""
    out = []
    for a, b in itertools.pairwise(events):
        if b.final_update_id <= a.final_update_id or b.time_ms < a.time_ms:
            out.append(f"u {a.final_update_id} then {b.final_update_id}")
    return out


@check("STRM-001", needs=NEEDS)
async def test_diff_depth_rebuilds_the_book_under_heavy_flow(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """The diff-depth stream plus one snapshot rebuilds the venue's book exactly, under load.

    Binance's recipe: open ``<symbol>@depth``, take ``GET /fapi/v1/depth``, drop diffs with
    ``u <= lastUpdateId``, start at the diff with ``U <= lastUpdateId + 1 <= u``, then require
    ``pu`` = the previous ``u``. Through 600 seeded actions (passive adds, cancels, takes and
    market-maker requotes) the chain never breaks, diffs never arrive out of order, and at every
    checkpoint (every 50 actions) the local book equals a fresh snapshot level for level, with
    the same ``lastUpdateId``.

    Source: binance-usdm-surface.md (diff depth U/u/pu, GET /fapi/v1/depth lastUpdateId)
    """
    inst, flow = await _flow(venue, control, ctx, "STRM-001")
    stream = await venue.stream([SYMBOL], depth=True)
    synced = SyncedBook(stream, SYMBOL, _snapshotter(venue))
    received: list[DepthEvent] = []
    mismatches: list[str] = []
    try:
        await synced.start()
        for checkpoint in range(12):
            await flow.run(50)
            events = await stream.drain()
            received += select(events, DepthEvent, lambda e: e.symbol == SYMBOL)
            await synced.feed(events)
            differences = await _compare(synced, venue)
            if differences:
                mismatches.append(f"after {50 * (checkpoint + 1)} actions: {differences[0]}")
        await flow.cancel_all()
        events = await stream.drain()
        received += select(events, DepthEvent, lambda e: e.symbol == SYMBOL)
        await synced.feed(events)
        differences = await _compare(synced, venue)
        if differences:
            mismatches.append(f"after cancelling the flow: {differences[0]}")
    finally:
        await stream.close()
    book = synced.book
    applied = book.applied if book is not None else 0
    ctx.at_least(
        "diffs applied (heavy flow, precondition)",
        limit=Decimal(300),
        observed=Decimal(applied),
    )
    ctx.require(
        "the U/u/pu chain never broke",
        not synced.resyncs,
        expected="no resynchronisation needed",
        observed=f"{len(synced.resyncs)}: {synced.resyncs[:2]}",
    )
    reordered = _order_breaks(received)
    ctx.require(
        "diffs arrived in order",
        not reordered,
        expected="u and E increasing",
        observed=f"{len(reordered)} out of order, e.g. {reordered[:2]}",
    )
    ctx.require(
        "local book = the venue's book at all 13 checkpoints",
        not mismatches,
        expected="identical, level for level, same lastUpdateId",
        observed=f"{len(mismatches)} checkpoint(s) differ: {mismatches[:2]}",
    )
    ctx.add_evidence(
        "flow",
        {
            "type": "table",
            "title": f"Order flow in {inst.symbol} and what the stream carried",
            "columns": ["actions", "diffs received", "diffs applied", "resyncs"],
            "rows": [
                [
                    ", ".join(f"{k} {v}" for k, v in sorted(flow.actions.items())),
                    str(len(received)),
                    str(applied),
                    str(len(synced.resyncs)),
                ]
            ],
        },
    )


async def _phase(
    name: str,
    stream: EventStream,
    synced: SyncedBook,
    recorder: FillRecorder,
    venue: Venue,
    since_ms: int,
    rows: list[list[str]],
) -> list[str]:
    """Drain, feed the book and the recorder, compare with the venue; one evidence row."""
    resyncs = len(synced.resyncs)
    events = await stream.drain()
    await synced.feed(events)
    await recorder.feed(events, since_ms)
    differences = await _compare(synced, venue)
    rows.append(
        [
            name,
            str(len(select(events, DepthEvent))),
            "; ".join(synced.resyncs[resyncs:]) or "-",
            str(stream.reconnects),
            differences[0] if differences else "identical",
        ]
    )
    return synced.resyncs[resyncs:]


@check("STRM-002", needs=NEEDS | {Capability.CONTROL_STREAM_FAULTS})
async def test_stream_faults_detected_and_recovered(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """Stream faults are detectable, and a careful client recovers with nothing missed.

    Injected in turn under order flow: one withheld diff (a sequence gap), two pairs of diffs
    swapped, a dropped connection, frames delayed by 2 s of virtual time. The venue's ``pu`` must
    expose the gap and the swap (the client resynchronises from a snapshot), the connection must
    come back and the client must re-sync its book and fetch the executions it missed over REST;
    delayed frames must still arrive, in order. After each fault the local book equals the venue's
    book, and the account's executions as recorded (stream + REST) equal its trade history:
    none missing, none twice.

    Source: binance-usdm-surface.md (diff depth U/u/pu: "if pu != previous u, re-initialise";
    user data stream); perp-mechanics.md §13 (nothing lost under faults)
    """
    inst, flow = await _flow(venue, control, ctx, "STRM-002", accounts=1)
    trader = flow.accounts[0]
    stream = await venue.stream([SYMBOL], account=trader, depth=True)
    synced = SyncedBook(stream, SYMBOL, _snapshotter(venue))
    since = venue.clock.now_ms()

    async def fills(since_ms: int) -> list[Fill]:
        return await trader.fills(SYMBOL, since_ms=since_ms)

    recorder = FillRecorder(stream, fills)
    rows: list[list[str]] = []
    tick = inst.tick_size
    try:
        await synced.start()
        await flow.run(40)
        clean = await _phase("clean", stream, synced, recorder, venue, since, rows)
        # A gap: the next diff is withheld; make it one that stays (a far resting order).
        await control.set_stream_faults(StreamFaults(gap_symbol=SYMBOL))
        book = await venue.order_book(SYMBOL, 5)
        far = (book.best_bid or Decimal(0)) - 200 * tick
        await trader.place_order(limit(SYMBOL, Side.BUY, min_qty_for_notional(inst, far), far))
        await flow.run(20)
        gap = await _phase("one diff withheld", stream, synced, recorder, venue, since, rows)
        await control.set_stream_faults(StreamFaults(reorder=2))
        await flow.run(30)
        swapped = await _phase("2 pairs swapped", stream, synced, recorder, venue, since, rows)
        await control.set_stream_faults(StreamFaults(drop_connections=True))
        await flow.run(30)  # published while disconnected: lost on the wire
        reconnects_before = stream.reconnects
        await _phase("connection dropped", stream, synced, recorder, venue, since, rows)
        reconnected = stream.reconnects - reconnects_before
        await flow.run(10)
        await _phase("reconnected", stream, synced, recorder, venue, since, rows)
        await control.set_stream_faults(StreamFaults(delay_ms=2000))
        flow.mix = replace(flow.mix, wait=0)  # the clock stands still while frames are held
        await flow.run(20)
        held = await stream.drain()
        await synced.feed(held)
        await recorder.feed(held, since)
        await control.advance(3 * venue.rules.mark_update_interval_ms)
        await control.set_stream_faults(StreamFaults())
        before_late = len(rows)
        late = await _phase("delayed 2 s", stream, synced, recorder, venue, since, rows)
        arrived_late = int(rows[before_late][1])
        await flow.cancel_all()
        await _phase("end", stream, synced, recorder, venue, since, rows)
    finally:
        await control.set_stream_faults(StreamFaults())
        await stream.close()
    differences = await _compare(synced, venue)
    history = {(str(f.order_id), f.trade_id) for f in await trader.fills(SYMBOL, since_ms=since)}
    recorded = set(recorder.records)
    off = [f"{row[0]}: {row[4]}" for row in rows if row[4] != "identical"]
    ctx.require(
        "local book = the venue's book after every phase",
        not off,
        expected="identical after each drain",
        observed=f"{len(off)} phase(s) differ: {off[:2]}",
    )
    ctx.require("no resync on the clean stream", not clean, expected="none", observed=str(clean))
    ctx.require(
        "the withheld diff was detectable (pu broke, client resynchronised)",
        bool(gap),
        expected="a sequence break",
        observed=str(gap) or "none: the gap went unnoticed",
    )
    ctx.require(
        "the swapped diffs were detectable",
        bool(swapped),
        expected="a sequence break",
        observed=str(swapped) or "none: the swap went unnoticed",
    )
    ctx.equal(
        "the dropped connection came back (reconnects)",
        expected=Decimal(1),
        observed=Decimal(reconnected),
    )
    ctx.equal(
        "diffs delivered while the delay held them (precondition: the fault acts)",
        expected=Decimal(0),
        observed=Decimal(len(select(held, DepthEvent))),
    )
    ctx.at_least(
        "held diffs delivered once the clock moved on",
        limit=Decimal(1),
        observed=Decimal(arrived_late),
    )
    ctx.require(
        "no sequence break from the delayed frames (late but in order)",
        not late,
        expected="none",
        observed=str(late),
    )
    ctx.require(
        "local book = the venue's book at the end",
        not differences,
        expected="identical",
        observed=f"{len(differences)} difference(s): {differences[:2]}",
    )
    ctx.require(
        "every execution recorded (stream + REST after the reconnect) = the trade history",
        recorded == history,
        expected=f"{len(history)} executions",
        observed=(
            f"{len(recorded)} recorded, {len(history - recorded)} missing, "
            f"{len(recorded - history)} unknown"
        ),
    )
    ctx.equal(
        "executions reported twice", expected=Decimal(0), observed=Decimal(recorder.duplicates)
    )
    ctx.add_evidence(
        "faults",
        {
            "type": "table",
            "title": "Stream faults and how the client recovered",
            "columns": ["phase", "diffs received", "resync", "reconnects", "book vs venue"],
            "rows": rows,
        },
    )
    ctx.note(
        f"{recorder.recovered} execution(s) recovered over REST after the reconnect; "
        f"{len(synced.resyncs)} resynchronisation(s) in all"
    )
