"""FUND: small funding transfers compound over cycles (testing guide point 5) — one settlement.

The harness samples the premium from the book itself and asks the oracle for the rate, then
follows positions through a settlement: who pays, how much, and where the money goes. Several
cycles (compounding, interval switches) are in ``test_funding_cycles.py``. The symbol used is
the one the venue settles most often, switched to hourly where that is possible.
"""

from __future__ import annotations

from decimal import Decimal
from types import ModuleType

from harness.checks import CheckContext, check
from harness.funding_probe import (
    PremiumSampler,
    advance_to,
    funding_paid,
    hourly_symbol,
    settlement_at,
)
from harness.model import (
    FundingInfo,
    IncomeType,
    Instrument,
    MarginMode,
    Side,
    TimeInForce,
    quantize_down,
)
from harness.probes import limit, market, need, open_isolated, position_of
from harness.streams import AccountEvent, select
from harness.venue import Account, Capability, Venue, VenueControl

D = Decimal
BPS = D(10_000)
OBSERVE = {
    Capability.READ_FUNDING,
    Capability.CONTROL_CLOCK,
    Capability.CONTROL_PRICES,
    Capability.CONTROL_FUNDING,
}
TRADING = OBSERVE | {Capability.TRADE, Capability.CONTROL_ACCOUNTS}


def _qty(inst: Instrument, notional: Decimal, price: Decimal) -> Decimal:
    return max(quantize_down(notional / price, inst.step_size), inst.min_qty)


def _regime(oracle: ModuleType, info: FundingInfo, premium: Decimal) -> str:
    """Which branch of the rule a premium falls in: band, clamped, cap or floor."""
    raw = oracle.funding_rate(
        premium, info.interest_rate, info.clamp, None, None, info.interval_hours
    )
    if raw > info.cap:
        return "cap"
    if raw < info.floor:
        return "floor"
    return "band" if abs(info.interest_rate - premium) <= info.clamp else "clamped"


@check("FUND-001", needs=OBSERVE)
async def test_funding_rate_formula_with_clamp_and_caps(
    venue: Venue, control: VenueControl, oracle: ModuleType, ctx: CheckContext
) -> None:
    """The settled rate is F = [P̄ + clamp(r − P̄, −c, +c)] / (8/N), capped, on sampled premiums.

    The harness steps the clock one premium sample (5 s) at a time, walks the impact notional
    through the book it observes, averages each interval's samples into P̄ and asks the oracle
    for the rate with the parameters the venue announces (r, c, cap, floor, N). Three intervals
    under a quote skew: a premium inside the interest band (F = r·N/8), a premium past the clamp
    (F = (P̄ − c)·N/8) and a discount past the floor (F = floor). Rates are published to the
    venue's precision: half a unit of tolerance.

    Source: perp-mechanics.md §3(a) premium index, impact notional, rate and caps; §3(d) clamp;
    §10 per-settlement cap/floor
    """
    symbol, info = await hourly_symbol(venue)
    sampler = PremiumSampler(venue, symbol)
    tolerance = D(1).scaleb(-venue.rules.funding_rate_decimals) / 2
    past_floor = (info.floor * 8 / info.interval_hours - info.clamp) * BPS * D("1.2")
    cases = (
        ("premium inside the interest band", D(3), "band"),
        ("premium past the interest clamp", D(20), "clamped"),
        ("discount past the floor", past_floor.quantize(D(1)), "floor"),
    )
    rows: list[list[str]] = []
    for label, skew, intended in cases:
        await control.set_quote_skew(symbol, skew)
        obs = await sampler.observe_interval()
        regime = _regime(oracle, obs.info, obs.average_premium)
        ctx.require(
            f"{label}: a {skew} bps quote skew puts P̄ in the intended branch (precondition)",
            regime == intended,
            expected=intended,
            observed=f"{regime} (P̄ = {obs.average_premium:.8f})",
        )
        event = need(obs.event, f"a settlement at {obs.funding_time_ms}")
        ctx.equal(
            f"{label}: settled rate, P̄ = {obs.average_premium:.8f} over {len(obs.samples)} samples",
            expected=obs.expected_rate,
            observed=event.funding_rate,
            tolerance=tolerance,
        )
        ctx.within(
            f"{label}: rate within [floor, cap]",
            low=obs.info.floor,
            high=obs.info.cap,
            observed=event.funding_rate,
        )
        rows.append(
            [
                label,
                str(skew),
                str(len(obs.samples)),
                format(obs.average_premium.quantize(D("1e-10")), "f"),
                f"{obs.info.interest_rate} / {obs.info.clamp}",
                f"[{obs.info.floor}, {obs.info.cap}]",
                str(obs.info.interval_hours),
                regime,
                format(obs.expected_rate.quantize(D("1e-12")), "f"),
                str(event.funding_rate),
            ]
        )
    ctx.add_evidence("premium", sampler.evidence(f"{symbol} premium samples and P̄"))
    ctx.add_evidence(
        "rates",
        {
            "type": "table",
            "title": "Rate per interval: oracle on sampled premiums vs venue",
            "columns": [
                "case",
                "skew (bps)",
                "samples",
                "P̄",
                "r / c",
                "floor, cap",
                "N (h)",
                "branch",
                "oracle F",
                "venue F",
            ],
            "rows": rows,
        },
    )


@check("FUND-002", needs=TRADING)
async def test_payment_sign_size_and_eligibility(
    venue: Venue, control: VenueControl, oracle: ModuleType, ctx: CheckContext
) -> None:
    """Positions held at the funding time pay s × Q × mark × F to the unit; no one else pays.

    Under a premium (F > 0) an isolated long pays from its isolated wallet and a cross short
    receives into its cross wallet, each exactly s × Q × P × F rounded by the venue's documented
    rule (payer up, receiver down), P the mark published at the funding time. A long closed one
    update before the funding time and a long opened just after it (after the venue's documented
    eligibility window) pay nothing for that settlement.

    Source: perp-mechanics.md §0 sign convention; §3(a) payment table and timing; §3(d) sign,
    proportionality, eligibility; §11 rounding
    """
    rules = venue.rules
    unit, step = rules.atomic_unit, rules.mark_update_interval_ms
    symbol, info = await hourly_symbol(venue)
    inst = (await venue.instruments())[symbol]
    await control.set_quote_skew(symbol, D(30))  # a persistent premium: F > 0, longs pay
    mark0 = (await venue.mark(symbol)).mark_price
    qty = _qty(inst, D(3000), mark0) + 3 * inst.step_size  # odd digits: payments need rounding
    held_long = await control.create_account(D(50_000), label="isolated long, held")
    held_short = await control.create_account(D(50_000), label="cross short, held")
    leaver = await control.create_account(D(50_000), label="long closed just before")
    joiner = await control.create_account(D(50_000), label="long opened just after")
    await open_isolated(held_long, symbol, Side.BUY, qty, leverage=10)
    await held_short.place_order(market(symbol, Side.SELL, qty + 7 * inst.step_size))
    await leaver.place_order(market(symbol, Side.BUY, qty))
    funding_time = info.next_funding_time_ms
    await advance_to(venue, funding_time - step)
    await leaver.place_order(market(symbol, Side.SELL, qty, reduce_only=True))
    long_before = need(await position_of(held_long, symbol), "the isolated long")
    long_cross_before = (await held_long.balance()).cross_wallet_balance
    short_before = need(await position_of(held_short, symbol), "the cross short")
    short_cross_before = (await held_short.balance()).cross_wallet_balance
    await advance_to(venue, funding_time)
    published = await venue.mark(symbol)
    event = await settlement_at(venue, symbol, funding_time)
    reference = published.mark_price
    if rules.funding_reference_price == "index":
        reference = published.index_price
    else:
        ctx.equal(
            "the settlement's mark is the mark published at the funding time",
            expected=published.mark_price,
            observed=event.mark_price,
            unit="USDT",
        )
    late = funding_time + rules.funding_eligibility_window_ms + step
    await advance_to(venue, late)
    await joiner.place_order(market(symbol, Side.BUY, qty))
    await advance_to(venue, late + 120_000)  # past any settlement jitter
    rate = event.funding_rate
    ctx.require(
        "F > 0 under a premium (precondition)", rate > 0, expected="> 0", observed=str(rate)
    )
    rows = []
    for label, acct, pos in (
        ("isolated long", held_long, long_before),
        ("cross short", held_short, short_before),
    ):
        expected = oracle.settled_payment(
            pos.quantity, reference, rate, unit, rules.funding_payment_rounding
        )
        paid, records = await funding_paid(acct, symbol, funding_time)
        ctx.require(
            f"{label}: {'pays' if pos.quantity * rate > 0 else 'receives'} (sign of s × F)",
            paid * pos.quantity * rate > 0,
            expected="long pays, short receives" if rate > 0 else "long receives, short pays",
            observed=f"paid {paid}",
        )
        ctx.equal(
            f"{label} {pos.quantity}: payment = s × Q × {reference} × {rate} ({records} record(s))",
            expected=expected,
            observed=paid,
            unit="USDT",
        )
        rows.append([label, str(pos.quantity), str(reference), str(rate), str(expected), str(paid)])
    long_after = need(await position_of(held_long, symbol), "the isolated long")
    ctx.equal(
        "isolated long: paid from its isolated wallet",
        expected=long_before.isolated_wallet
        - (await funding_paid(held_long, symbol, funding_time))[0],
        observed=long_after.isolated_wallet,
        unit="USDT",
    )
    ctx.equal(
        "isolated long: its cross wallet untouched",
        expected=long_cross_before,
        observed=(await held_long.balance()).cross_wallet_balance,
        unit="USDT",
    )
    ctx.equal(
        "cross short: received into its cross wallet",
        expected=short_cross_before - (await funding_paid(held_short, symbol, funding_time))[0],
        observed=(await held_short.balance()).cross_wallet_balance,
        unit="USDT",
    )
    for label, acct in (
        ("long closed one update before the funding time", leaver),
        ("long opened after the funding time", joiner),
    ):
        paid, records = await funding_paid(acct, symbol, funding_time)
        ctx.require(
            f"{label}: no funding for that settlement",
            records == 0,
            expected="no FUNDING_FEE record",
            observed=f"{records} record(s), paid {paid}",
        )
        rows.append([label, "0 at the funding time", str(reference), str(rate), "0", str(paid)])
    ctx.add_evidence(
        "payments",
        {
            "type": "table",
            "title": f"{symbol} settlement at {funding_time}",
            "columns": ["account", "position", "reference price", "rate", "expected", "paid"],
            "rows": rows,
        },
    )


async def _cross_trade(
    maker: Account, taker: Account, symbol: str, side: Side, qty: Decimal, price: Decimal
) -> None:
    """``maker`` rests a post-only order inside the spread and ``taker`` takes exactly it."""
    await maker.place_order(limit(symbol, side, qty, price, TimeInForce.GTX))
    await taker.place_order(limit(symbol, side.opposite, qty, price, TimeInForce.IOC))


@check("FUND-003", needs=TRADING | {Capability.READ_INSURANCE, Capability.READ_LIQUIDATIONS})
async def test_funding_is_zero_sum_with_the_rounding_residual(
    venue: Venue, control: VenueControl, oracle: ModuleType, ctx: CheckContext
) -> None:
    """Per settlement, Σ payments over all positions = the residual to the insurance fund.

    On a fresh controlled market, three accounts trade only with each other (every fill's trade
    id is matched by another of them), so they hold the symbol's whole open interest and nobody
    else pays or receives: a long, a short and a reduced long with another entry price. At the
    funding time their FUNDING_FEE income and the insurance fund's change must sum to exactly 0,
    and that change must be the rounding residual alone: Σ of the payments s × Q × mark × F
    rounded by the venue's rule, between 0 and one unit per position (a venue paying on entry
    notional leaves Q × ΔEP × F instead). Another holder would show as a non-zero sum.

    Source: perp-mechanics.md §3(d) conservation (dYdX: −n < Σ ≤ 0), §3(a) "transferred
    directly between traders", §8 insurance fund, §11 rounding
    """
    rules = venue.rules
    unit = rules.atomic_unit
    symbol, info = await hourly_symbol(venue)
    inst = (await venue.instruments())[symbol]
    await control.set_quote_skew(symbol, D(30))
    accounts = [await control.create_account(D(50_000), label=f"trader {c}") for c in "ABC"]
    a, b, c = accounts
    book = await venue.order_book(symbol, 5)
    bid, ask = need(book.best_bid, "a best bid"), need(book.best_ask, "a best ask")
    p1 = quantize_down((bid + ask) / 2, inst.tick_size)
    p2 = max(p1 - 10 * inst.tick_size, bid + inst.tick_size)
    ctx.require(
        "the spread leaves room for two prices inside it (precondition)",
        bid < p2 < p1 < ask,
        expected=f"{bid} < p2 < p1 < {ask}",
        observed=f"p2 = {p2}, p1 = {p1}",
    )
    q1 = _qty(inst, D(4000), p1) + 3 * inst.step_size
    q2 = _qty(inst, D(1500), p2) + 1 * inst.step_size
    await _cross_trade(a, b, symbol, Side.BUY, q1, p1)  # A long q1 @ p1, B short q1 @ p1
    await _cross_trade(c, a, symbol, Side.BUY, q2, p2)  # A sells q2 to C @ p2 (entry stays p1)
    trade_ids = [[f.trade_id for f in await acct.fills(symbol)] for acct in accounts]
    every = [t for ids in trade_ids for t in ids]
    ctx.require(
        "every fill is between two of the check's accounts (precondition)",
        all(every.count(t) == 2 for t in every),
        expected="each trade id on two of our accounts",
        observed=str(trade_ids),
    )
    funding_time = info.next_funding_time_ms
    await advance_to(venue, funding_time - rules.mark_update_interval_ms)
    positions = [need(await position_of(x, symbol), "a position") for x in accounts]
    ctx.equal(
        "the accounts' positions net to zero (precondition)",
        expected=D(0),
        observed=sum((p.quantity for p in positions), D(0)),
    )
    fund_before = (await venue.insurance_fund()).balance
    await advance_to(venue, funding_time + rules.funding_eligibility_window_ms + 120_000)
    fund_change = (await venue.insurance_fund()).balance - fund_before
    liquidations = await venue.liquidations(since_ms=funding_time - rules.mark_update_interval_ms)
    ctx.require(
        "no liquidation moved the insurance fund meanwhile (precondition)",
        not liquidations,
        expected="none",
        observed=str(len(liquidations)),
    )
    event = await settlement_at(venue, symbol, funding_time)
    rows, total_paid, expected_residual = [], D(0), D(0)
    for acct, pos in zip(accounts, positions, strict=True):
        paid, _ = await funding_paid(acct, symbol, funding_time)
        expected = oracle.settled_payment(
            pos.quantity, event.mark_price, event.funding_rate, unit, rules.funding_payment_rounding
        )
        total_paid += paid
        expected_residual += expected
        rows.append(
            [
                acct.account_id,
                str(pos.quantity),
                str(pos.entry_price),
                str(oracle.funding_payment(pos.quantity, event.mark_price, event.funding_rate)),
                str(expected),
                str(paid),
            ]
        )
    rows.append(["insurance fund", "", "", "0", str(expected_residual), str(-fund_change)])
    ctx.equal(
        "Σ payments of all position holders − insurance fund change = 0",
        expected=D(0),
        observed=total_paid - fund_change,
        unit="USDT",
    )
    ctx.equal(
        f"insurance fund change = Σ rounded payments on the mark {event.mark_price}",
        expected=expected_residual,
        observed=fund_change,
        unit="USDT",
    )
    ctx.within(
        "residual is rounding only: 0 <= residual <= one unit per position",
        low=D(0),
        high=unit * len(positions),
        observed=fund_change,
        unit="USDT",
    )
    ctx.add_evidence(
        "settlement",
        {
            "type": "table",
            "title": f"{symbol} settlement at {funding_time}, F = {event.funding_rate}",
            "columns": ["account", "position", "entry", "exact s·Q·M·F", "rounded", "paid"],
            "rows": rows,
        },
    )


@check("FUND-006", needs=TRADING | {Capability.READ_STREAMS})
async def test_funding_settlements_on_the_user_stream(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """Each funding settlement reaches the account's stream as an update with reason FUNDING_FEE.

    Over two settlements, for a cross long that pays and an isolated short that receives: one
    update with reason ``FUNDING_FEE`` per income record, at the funding time, whose balance
    change equals the income record's amount to the unit, and whose wallet balance is the
    wallet after the payment (for the isolated short, its isolated wallet moves).

    Source: perp-mechanics.md §3(a) payment and timing, §3(d) zero-sum; binance-usdm-surface.md
    (ACCOUNT_UPDATE reason FUNDING_FEE, income FUNDING_FEE)
    """
    unit = venue.rules.atomic_unit
    symbol, info = await hourly_symbol(venue)
    inst = (await venue.instruments())[symbol]
    await control.set_quote_skew(symbol, D(30))  # a persistent premium: longs pay
    mark0 = (await venue.mark(symbol)).mark_price
    qty = _qty(inst, D(3000), mark0) + 3 * inst.step_size
    payer = await control.create_account(D(50_000), label="cross long (pays)")
    receiver = await control.create_account(D(50_000), label="isolated short (receives)")
    await payer.place_order(market(symbol, Side.BUY, qty))
    await open_isolated(receiver, symbol, Side.SELL, qty, leverage=10)
    streams = {
        "cross long": (payer, await venue.stream([symbol], account=payer)),
        "isolated short": (receiver, await venue.stream([symbol], account=receiver)),
    }
    events: dict[str, list[AccountEvent]] = {name: [] for name in streams}
    since = venue.clock.now_ms()
    try:
        for _, stream in streams.values():
            await stream.drain()
        first = info.next_funding_time_ms
        for funding_time in (first, first + 3_600_000):
            await advance_to(venue, funding_time + venue.rules.mark_update_interval_ms)
            for name, (_, stream) in streams.items():
                events[name] += select(await stream.drain(), AccountEvent)
    finally:
        for _, stream in streams.values():
            await stream.close()
    rows = []
    for name, (acct, _) in streams.items():
        fees = await acct.income(IncomeType.FUNDING_FEE, symbol, since_ms=since)
        funding = [e for e in events[name] if e.reason == "FUNDING_FEE"]
        ctx.require(
            f"{name}: two settlements paid (precondition)",
            len(fees) == 2 and all(f.amount != 0 for f in fees),
            expected="2 non-zero FUNDING_FEE records",
            observed=f"{len(fees)}: {[str(f.amount) for f in fees]}",
        )
        ctx.equal(
            f"{name}: FUNDING_FEE updates on the stream = income records",
            expected=D(len(fees)),
            observed=D(len(funding)),
        )
        for fee, update in zip(fees, funding, strict=False):
            rows.append([name, str(fee.time_ms), str(fee.amount), str(update.balance_change)])
            ctx.equal(
                f"{name} at {fee.time_ms}: balance change = income amount",
                expected=fee.amount,
                observed=update.balance_change,
                tolerance=unit,
                unit="USDT",
            )
            ctx.equal(
                f"{name} at {fee.time_ms}: update time = funding time",
                expected=D(fee.time_ms),
                observed=D(update.time_ms),
                unit="ms",
            )
        if funding:
            balance = await acct.balance()
            ctx.equal(
                f"{name}: wallet on the last FUNDING_FEE update = the wallet now",
                expected=balance.wallet_balance,
                observed=funding[-1].wallet_balance,
                tolerance=unit,
                unit="USDT",
            )
            pos = await position_of(acct, symbol)
            if pos is not None and pos.margin_mode is MarginMode.ISOLATED:
                shown = [p for p in funding[-1].positions if p.symbol == symbol]
                ctx.require(
                    f"{name}: isolated wallet on the last FUNDING_FEE update = the venue's",
                    bool(shown) and shown[0].isolated_wallet == pos.isolated_wallet,
                    expected=str(pos.isolated_wallet),
                    observed=str(shown[0].isolated_wallet) if shown else "position not shown",
                )
    ctx.add_evidence(
        "funding on the stream",
        {
            "type": "table",
            "title": "Funding: income records against ACCOUNT_UPDATE FUNDING_FEE",
            "columns": ["account", "time", "income amount", "stream balance change"],
            "rows": rows,
        },
    )
