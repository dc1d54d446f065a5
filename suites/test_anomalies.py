"""ANOM: early-warning anomalies — the venue's monitor flags unusual flow as it happens.

DESIGN.md guide item 10: early-warning anomalies beat late incident response. A venue that runs
an anomaly monitor (``READ_ALERTS``) must flag a burst of cancels, a cluster of leverage raises
and orders crowding a thin book at the moment the documented statistic crosses its threshold —
not before, not late, and not at all for flow below it — and must warn of a liquidation cascade
before its first liquidation. Thresholds are the reference monitor's
(:class:`harness.alerts.MonitorRules`, PROTOCOL.md "Alerts"); each check derives the expected
alert time from the flow it drove, so the verdict never depends on the venue's own account.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_DOWN, Decimal

from harness.alerts import (
    CANCEL_BURST,
    CASCADE_RISK,
    LEVERAGE_CLUSTER,
    THIN_BOOK_CLUSTER,
    Alert,
    MonitorRules,
    read_alerts,
)
from harness.checks import CheckContext, check
from harness.model import BookSnapshot, PricePath, Side, quantize_down
from harness.probes import limit, min_qty_for_notional
from harness.venue import Account, Capability, Venue, VenueControl

SYMBOL = "BTCUSDT"
RULES = MonitorRules()
BPS = Decimal(10_000)
NEEDS = {
    Capability.READ_ALERTS,
    Capability.TRADE,
    Capability.CONTROL_CLOCK,
    Capability.CONTROL_ACCOUNTS,
}
SCENARIO = "crowded-long-thin-book"


def _secs(ms: int) -> Decimal:
    return Decimal(ms) / 1000


async def _alerts(venue: Venue, since_ms: int, detector: str) -> list[Alert]:
    return [
        a
        for a in await read_alerts(venue, since_ms)
        if a.detector == detector and a.symbol == SYMBOL
    ]


def _alert_rows(alerts: Sequence[Alert], start_ms: int) -> list[list[str]]:
    return [
        [
            format(_secs(a.time_ms - start_ms), "f"),
            a.detector,
            a.account_id or "",
            format(a.statistic, "f"),
            format(a.threshold, "f"),
            ", ".join(f"{k}={v}" for k, v in a.evidence.items()),
        ]
        for a in alerts
    ]


def _alert_table(title: str, alerts: Sequence[Alert], start_ms: int) -> dict[str, object]:
    return {
        "type": "table",
        "title": title,
        "columns": ["time (s)", "detector", "account", "statistic", "threshold", "evidence"],
        "rows": _alert_rows(alerts, start_ms),
    }


def _alert_timeline(
    title: str, alerts: Sequence[Alert], start_ms: int, activity: dict[str, Sequence[int]]
) -> dict[str, object]:
    """For the report: the activity the check drove, one lane per flow, and the alerts raised."""
    events: list[dict[str, str]] = [
        {"x": format(_secs(t - start_ms), "f"), "lane": lane, "kind": lane, "label": lane}
        for lane, times in activity.items()
        for t in times
    ]
    events += [
        {
            "x": format(_secs(a.time_ms - start_ms), "f"),
            "lane": f"{a.detector} alerts",
            "kind": "alert",
            "tone": "warn",
            "label": f"{a.detector} {a.account_id or ''}: {a.statistic} >= {a.threshold}",
        }
        for a in alerts
    ]
    lanes = [*activity, *dict.fromkeys(f"{a.detector} alerts" for a in alerts)]
    return {
        "type": "timeline",
        "title": title,
        "x_label": "time since the check began (s)",
        "lanes": lanes,
        "events": events,
    }


def _crossing(times: Sequence[int], window_ms: int, threshold: int) -> int | None:
    """The first event time at which ``threshold`` events lie in ``(t - window, t]``."""
    for i, t in enumerate(times):
        if sum(1 for u in times[: i + 1] if u > t - window_ms) >= threshold:
            return t
    return None


def _max_in_window(times: Sequence[int], window_ms: int) -> int:
    return max(
        (sum(1 for u in times[: i + 1] if u > t - window_ms) for i, t in enumerate(times)),
        default=0,
    )


async def _churn(
    venue: Venue, control: VenueControl, trader: Account, cycles: int, pace_ms: int
) -> list[int]:
    """Add and cancel one small resting bid ``cycles`` times, ``pace_ms`` apart; cancel times."""
    inst = (await venue.instruments())[SYMBOL]
    mark = (await venue.mark(SYMBOL)).mark_price
    price = quantize_down(mark * Decimal("0.95"), inst.tick_size)
    qty = min_qty_for_notional(inst, price)
    times = []
    for _ in range(cycles):
        order = await trader.place_order(limit(SYMBOL, Side.BUY, qty, price))
        cancelled = await trader.cancel_order(SYMBOL, order_id=order.order_id)
        times.append(cancelled.update_time_ms)
        await control.advance(pace_ms)
    return times


@check("ANOM-001", needs=NEEDS)
async def test_a_cancel_burst_is_flagged_when_the_window_count_reaches_the_threshold(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """A burst of cancels raises one cancel-burst alert at the crossing; slower flow raises none.

    Statistic: cancels by one account on one symbol within a sliding window of virtual time;
    threshold ``MonitorRules.cancel_burst`` (20) in ``cancel_window_ms`` (10 s). A steady
    account adds and cancels a resting bid every second (10 in any window): no alert. A bursty
    account first churns one cancel short of the threshold every 100 ms (no alert: the
    statistic never reached it), waits out the window, then churns 25 cycles every 100 ms: one
    alert for that account and symbol, at the virtual time of the cancel that brought the
    window's count to the threshold — not before, not later — with ``statistic >= threshold``.

    Source: perp-mechanics.md §14 (early warning ahead of cascades); DESIGN.md guide item 10
    """
    start = venue.clock.now_ms()
    steady = await control.create_account(Decimal(10_000), label="steady canceller")
    bursty = await control.create_account(Decimal(10_000), label="bursty canceller")
    window, threshold = RULES.cancel_window_ms, RULES.cancel_burst
    steady_times = await _churn(venue, control, steady, 15, 1_000)
    short_burst = await _churn(venue, control, bursty, threshold - 1, 100)
    short_alerts = [
        a for a in await _alerts(venue, start, CANCEL_BURST) if a.account_id == bursty.account_id
    ]
    await control.advance(window + 1_000)
    burst_start = venue.clock.now_ms()
    burst = await _churn(venue, control, bursty, threshold + 5, 100)
    alerts = await _alerts(venue, start, CANCEL_BURST)
    ctx.add_evidence(
        "timeline",
        _alert_timeline(
            "Cancels and the alerts they raised",
            alerts,
            start,
            {
                "steady account: cancels": steady_times,
                "bursty account: cancels": short_burst + burst,
            },
        ),
    )
    ctx.add_evidence("alerts", _alert_table("cancel-burst alerts", alerts, start))
    ctx.add_evidence(
        "flows",
        {
            "type": "table",
            "title": "Flows driven (add then cancel, one resting bid at a time)",
            "columns": ["flow", "account", "cancels", "pace (ms)", "max cancels in a window"],
            "rows": [
                [name, acct.account_id, str(len(times)), pace, str(_max_in_window(times, window))]
                for name, acct, times, pace in (
                    ("steady", steady, steady_times, "1000"),
                    ("one short of the threshold", bursty, short_burst, "100"),
                    ("burst", bursty, burst, "100"),
                )
            ],
        },
    )
    steady_alerts = [a for a in alerts if a.account_id == steady.account_id]
    ctx.equal(
        "alerts for the steady account (below threshold)",
        expected=Decimal(0),
        observed=Decimal(len(steady_alerts)),
    )
    ctx.equal(
        "alerts while the bursty account stayed one cancel short",
        expected=Decimal(0),
        observed=Decimal(len(short_alerts)),
    )
    expected_ms = _crossing(burst, window, threshold)
    burst_alerts = [
        a for a in alerts if a.account_id == bursty.account_id and a.time_ms >= burst_start
    ]
    ctx.equal("alerts for the burst", expected=Decimal(1), observed=Decimal(len(burst_alerts)))
    if not burst_alerts or expected_ms is None:
        return
    alert = burst_alerts[0]
    ctx.equal(
        "alert time after the burst's start (the crossing cancel)",
        expected=_secs(expected_ms - burst_start),
        observed=_secs(alert.time_ms - burst_start),
        unit="s",
    )
    ctx.at_least(
        "alert statistic against its threshold",
        limit=alert.threshold,
        observed=alert.statistic,
        unit="cancels",
    )
    ctx.equal("alert threshold (documented)", expected=Decimal(threshold), observed=alert.threshold)


@check("ANOM-002", needs=NEEDS)
async def test_a_cluster_of_leverage_raises_is_flagged_at_the_crossing(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """Several accounts raising leverage within the window raise one leverage-cluster alert.

    Statistic: distinct accounts that raised their leverage on one symbol within a sliding
    window; threshold ``MonitorRules.leverage_cluster`` (5) in ``leverage_window_ms`` (60 s).
    Six accounts raising 20 s apart (at most 3 in a window): no alert. Six others raising 2 s
    apart: one alert at the fifth raise. The same six lowering their leverage 2 s apart: no
    alert (only raises count).

    Source: perp-mechanics.md §14 (crowded same-side leverage); DESIGN.md guide item 10
    """
    start = venue.clock.now_ms()
    window, threshold = RULES.leverage_window_ms, RULES.leverage_cluster

    async def raise_all(traders: Sequence[Account], leverage: int, pace_ms: int) -> list[int]:
        times = []
        for trader in traders:
            await trader.set_leverage(SYMBOL, leverage)
            times.append(venue.clock.now_ms())
            await control.advance(pace_ms)
        return times

    slow = [await control.create_account(Decimal(1_000), label=f"slow {i}") for i in range(6)]
    fast = [await control.create_account(Decimal(1_000), label=f"fast {i}") for i in range(6)]
    slow_times = await raise_all(slow, 30, 20_000)
    await control.advance(window + 1_000)
    fast_start = venue.clock.now_ms()
    fast_times = await raise_all(fast, 30, 2_000)
    await control.advance(window + 1_000)
    lower_start = venue.clock.now_ms()
    lower_times = await raise_all(fast, 10, 2_000)
    alerts = await _alerts(venue, start, LEVERAGE_CLUSTER)
    ctx.add_evidence(
        "timeline",
        _alert_timeline(
            "Leverage changes and the alerts they raised",
            alerts,
            start,
            {
                "slow raises": slow_times,
                "clustered raises": fast_times,
                "clustered cuts": lower_times,
            },
        ),
    )
    ctx.add_evidence("alerts", _alert_table("leverage-cluster alerts", alerts, start))
    ctx.add_evidence(
        "changes",
        {
            "type": "table",
            "title": "Leverage changes driven (one per account)",
            "columns": ["flow", "accounts", "change", "pace (s)", "max accounts in a window"],
            "rows": [
                [name, str(len(times)), change, pace, str(_max_in_window(times, window))]
                for name, times, change, pace in (
                    ("slow raises", slow_times, "20x -> 30x", "20"),
                    ("clustered raises", fast_times, "20x -> 30x", "2"),
                    ("clustered cuts", lower_times, "30x -> 10x", "2"),
                )
            ],
        },
    )
    in_slow = [a for a in alerts if a.time_ms < fast_start]
    in_fast = [a for a in alerts if fast_start <= a.time_ms < lower_start]
    in_lower = [a for a in alerts if a.time_ms >= lower_start]
    ctx.equal(
        "alerts for raises spread wider than the window",
        expected=Decimal(0),
        observed=Decimal(len(in_slow)),
    )
    ctx.equal(
        "alerts for the clustered raises", expected=Decimal(1), observed=Decimal(len(in_fast))
    )
    ctx.equal(
        "alerts for clustered leverage cuts", expected=Decimal(0), observed=Decimal(len(in_lower))
    )
    expected_ms = _crossing(fast_times, window, threshold)
    if in_fast and expected_ms is not None:
        ctx.equal(
            "alert time after the first clustered raise (the crossing raise)",
            expected=_secs(expected_ms - fast_start),
            observed=_secs(in_fast[0].time_ms - fast_start),
            unit="s",
        )
        ctx.at_least(
            "alert statistic against its threshold",
            limit=in_fast[0].threshold,
            observed=in_fast[0].statistic,
            unit="accounts",
        )


def _band_bids(book: BookSnapshot, mark: Decimal) -> Decimal:
    """Bid notional within the cluster band of the mark."""
    edge = mark * (1 - RULES.cluster_band_bps / BPS)
    return sum((p * q for p, q in book.bids if p >= edge), Decimal(0))


@check("ANOM-003", needs=NEEDS | {Capability.CONTROL_PRICES})
async def test_orders_clustering_at_a_thin_book_are_flagged(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """New bids crowding a thin book near the mark raise one thin-book-cluster alert.

    Statistic: of one side's resting notional within ``cluster_band_bps`` (50 bp) of the mark,
    the share owned by orders placed within ``cluster_window_ms``; it fires at
    ``cluster_share`` (0.75) while the rest of that depth is below ``thin_depth`` (20 000
    USDT). Four accounts each bid 5 000 USDT 10 bp under the mark: on the normal (deep) book no
    alert; on the thin book one alert, at the first bid that takes the new orders' share to
    the threshold, with the share the book shows.

    Source: perp-mechanics.md §14 (forced flow against thin depth); DESIGN.md guide item 10
    """
    start = venue.clock.now_ms()
    inst = (await venue.instruments())[SYMBOL]
    traders = [await control.create_account(Decimal(10_000), label=f"bidder {i}") for i in range(4)]

    async def bid_all(phase: str) -> tuple[list[list[str]], int | None, list[Alert], int]:
        """Each trader bids once; the index of the bid that should alert (by the book)."""
        phase_start = venue.clock.now_ms()
        mark = (await venue.mark(SYMBOL)).mark_price
        base = _band_bids(await venue.order_book(SYMBOL, 1000), mark)
        price = quantize_down(mark * (1 - Decimal(10) / BPS), inst.tick_size)
        qty = quantize_down(Decimal(5_000) / price, inst.step_size)
        rows, expected, new = [], None, Decimal(0)
        for i, trader in enumerate(traders, start=1):
            await trader.place_order(limit(SYMBOL, Side.BUY, qty, price))
            new += price * qty
            share = (new / (new + base)).quantize(Decimal("0.000001"), ROUND_DOWN)
            crosses = base < RULES.thin_depth and share >= RULES.cluster_share
            if crosses and expected is None:
                expected = i
            rows.append([phase, str(i), format(base, "f"), format(new, "f"), format(share, "f")])
        alerts = await _alerts(venue, phase_start, THIN_BOOK_CLUSTER)
        for trader in traders:
            await trader.cancel_all(SYMBOL)
        return rows, expected, alerts, phase_start

    deep_rows, deep_expected, deep_alerts, _ = await bid_all("normal book")
    await control.set_depth_profile(SYMBOL, "thin")
    await control.advance(1_000)
    thin_rows, thin_expected, thin_alerts, _ = await bid_all("thin book")
    ctx.add_evidence(
        "bids",
        {
            "type": "table",
            "title": "Bids placed 10 bp under the mark, 5 000 USDT each",
            "columns": ["book", "bid", "other depth in band", "new notional", "new share"],
            "rows": deep_rows + thin_rows,
        },
    )
    ctx.add_evidence(
        "alerts", _alert_table("thin-book-cluster alerts", deep_alerts + thin_alerts, start)
    )
    ctx.require(
        "the thin book is thin and the deep one deep (by the documented threshold)",
        deep_expected is None and thin_expected is not None,
        expected="no crossing on the normal book, a crossing on the thin book",
        observed=f"normal: {deep_expected}, thin: {thin_expected}",
    )
    ctx.equal(
        "alerts on the normal (deep) book", expected=Decimal(0), observed=Decimal(len(deep_alerts))
    )
    ctx.equal("alerts on the thin book", expected=Decimal(1), observed=Decimal(len(thin_alerts)))
    if not thin_alerts or thin_expected is None:
        return
    alert = thin_alerts[0]
    ctx.equal(
        "bid that raised the alert (by the new notional it reports)",
        expected=Decimal(thin_rows[thin_expected - 1][3]),
        observed=Decimal(alert.evidence.get("new_notional", "0")),
        unit="USDT",
    )
    ctx.equal(
        "alert statistic: the new orders' share of the band",
        expected=Decimal(thin_rows[thin_expected - 1][4]),
        observed=alert.statistic,
        tolerance=Decimal("0.000001"),
    )


@check(
    "ANOM-004",
    needs=NEEDS
    | {Capability.CONTROL_SCENARIO, Capability.CONTROL_PRICES, Capability.READ_LIQUIDATIONS},
)
async def test_the_cascade_warning_fires_before_the_first_liquidation(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """In the crowded-long scenario a cascade-risk alert fires before the first liquidation.

    The scenario loads 24 isolated 20x-30x longs bought from a thin book, their liquidation
    prices 2.5-5 % under the index; the index then falls linearly 6 % over 10 minutes. The
    early-warning detector compares the notional a 2 % move would liquidate with the bid
    depth within 2 % of the mark (perp-mechanics.md §14, ``Λ(P)`` against depth); its first
    alert on the long side must precede the first liquidation. Reported: the lead time in
    seconds of virtual time (must be > 0, i.e. at least one virtual millisecond).

    Source: perp-mechanics.md §14 (Λ(P) against depth); DESIGN.md guide item 10
    """
    await control.load_scenario(SCENARIO)
    start = venue.clock.now_ms()
    index = (await venue.mark(SYMBOL)).index_price
    path = PricePath(
        points=((0, index), (600_000, index * Decimal("0.94"))), linear=True, name="-6 % in 10 min"
    )
    await control.set_price_path(SYMBOL, path)
    await control.advance(600_000)
    liquidations = sorted(
        (e for e in await venue.liquidations(SYMBOL, since_ms=start)), key=lambda e: e.time_ms
    )
    warnings = [
        a for a in await _alerts(venue, start, CASCADE_RISK) if a.evidence.get("side") == "long"
    ]
    ctx.add_evidence(
        "timeline",
        _alert_timeline(
            "The early warning against the liquidations (-6 % over 10 min)",
            warnings,
            start,
            {"liquidations": [e.time_ms for e in liquidations]},
        ),
    )
    ctx.add_evidence("alerts", _alert_table("cascade-risk alerts (long side)", warnings, start))
    ctx.add_evidence(
        "liquidations",
        {
            "type": "table",
            "title": "First liquidations",
            "columns": ["time (s)", "side", "quantity", "trigger mark"],
            "rows": [
                [
                    format(_secs(e.time_ms - start), "f"),
                    e.side.value,
                    format(e.quantity, "f"),
                    format(e.trigger_mark, "f") if e.trigger_mark is not None else "",
                ]
                for e in liquidations[:10]
            ],
        },
    )
    ctx.require(
        "the scenario's fall liquidated the crowd",
        bool(liquidations),
        expected="liquidations",
        observed=f"{len(liquidations)} liquidation(s)",
    )
    ctx.require(
        "a cascade-risk alert on the long side",
        bool(warnings),
        expected="an alert",
        observed=f"{len(warnings)} alert(s)",
    )
    if not liquidations or not warnings:
        return
    lead = _secs(liquidations[0].time_ms - warnings[0].time_ms)
    ctx.note(
        f"first cascade-risk alert at {_secs(warnings[0].time_ms - start)} s, first liquidation "
        f"at {_secs(liquidations[0].time_ms - start)} s: lead {lead} s of virtual time"
    )
    ctx.at_least(
        "lead time of the first warning before the first liquidation",
        limit=Decimal("0.001"),
        observed=lead,
        unit="s",
    )
