"""The simulator's funding engine (adapters/sim/engine/funding.py, perp-mechanics.md §3, §10).

Engines here carry ETHUSDT only (hourly funding, cap ±0.75 %): one simulated hour is about 0.15 s.
Expected values come from the oracle (an independent implementation) or are worked by hand.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

import pytest

from adapters.sim.config import SimConfig, default_instruments
from adapters.sim.engine.accounts import AccountState
from adapters.sim.engine.exchange import INSURANCE, MARKET_MAKER, Engine
from adapters.sim.engine.funding import Settlement, impact_price
from adapters.sim.venue import open_sim_venue
from harness.clock import DEFAULT_EPOCH_MS, VirtualClock
from harness.errors import ConfigError
from harness.model import IncomeType, MarginMode, Side, TimeInForce
from harness.oracle import book_premium, funding_rate
from harness.venue import Capability, VenueConfig
from tests.sim.simkit import ETH, clear_quotes, limit, market, open_position

D = Decimal
HOUR = 3_600_000
T0 = DEFAULT_EPOCH_MS
UNIT = D("0.00000001")
R, CLAMP, CAP = D("0.0001"), D("0.0005"), D("0.0075")


def eth_engine(*defects: str, hours: int = 1, quiet: bool = True, seed: int = 3) -> Engine:
    """An engine with ETHUSDT alone, settling every ``hours``; ``quiet``: feeds without noise."""
    si = default_instruments()[ETH]
    si = dataclasses.replace(
        si,
        instrument=dataclasses.replace(si.instrument, funding_interval_hours=hours),
        feed_noise_bps=D(0) if quiet else si.feed_noise_bps,
    )
    config = SimConfig(seed=seed, defects=frozenset(defects), instruments={ETH: si})
    return Engine(config, VirtualClock())


def advance_to(engine: Engine, time_ms: int) -> None:
    engine.clock.advance(time_ms - engine.clock.now_ms())


def wallets(engine: Engine) -> dict[str, Decimal]:
    return {a.account_id: a.wallet_total() for a in engine.accounts.values()}


def fees(acct: AccountState) -> list[tuple[Decimal, int, str]]:
    return [
        (r.amount, r.time_ms, r.info)
        for r in acct.income
        if r.income_type is IncomeType.FUNDING_FEE
    ]


def rest(engine: Engine, acct: AccountState, side: Side, qty: str, price: str) -> None:
    engine.place_order(acct.account_id, limit(ETH, side, qty, price, TimeInForce.GTX))


# ---------------------------------------------------------------------------- premium samples
def test_premium_is_sampled_at_updates_on_multiples_of_5_seconds_only() -> None:
    engine = eth_engine()
    engine.clock.advance(61_000)
    assert [t for t, _ in engine.funding.samples(ETH)] == [T0 + 5_000 * k for k in range(1, 13)]


def test_impact_price_is_the_average_fill_of_the_notional_walked_through_the_levels() -> None:
    engine = eth_engine()
    clear_quotes(engine, ETH)
    maker = engine.create_account(D(10_000_000))
    rest(engine, maker, Side.BUY, "2", "3010")
    rest(engine, maker, Side.BUY, "10", "3000")
    rest(engine, maker, Side.SELL, "1", "3020")
    book = engine.books[ETH]
    # 2 @ 3010 = 6020, then 6000 more at 3000 = 2 ETH: 12 020 for 4 ETH.
    assert impact_price(book, Side.BUY, D(12_020)) == D(3005)
    assert impact_price(book, Side.BUY, D(6_020)) == D(3010)
    assert impact_price(book, Side.BUY, D(36_021)) is None  # the bids hold 36 020
    assert impact_price(book, Side.SELL, D(3_021)) is None  # one ask worth 3 020


def test_a_sample_is_the_impact_premium_of_the_book_against_the_index() -> None:
    engine = eth_engine()
    clear_quotes(engine, ETH)
    maker = engine.create_account(D(10_000_000))
    rest(engine, maker, Side.BUY, "2", "3010")
    rest(engine, maker, Side.BUY, "10", "3000")
    rest(engine, maker, Side.SELL, "100", "3020")
    engine.clock.advance(5_000)
    (_, sample), index = engine.funding.samples(ETH)[-1], engine.prices[ETH].index
    assert index == D(3000)
    bids = ((D(3010), D(2)), (D(3000), D(10)))
    # Impact notional 200 x 100 (ETH max leverage) = 20 000: 6 020 + 13 980 at 3000 (4.66 ETH).
    expected = (D(20_000) / (D(2) + D(13_980) / D(3000)) - index) / index
    assert abs(sample - expected) < D("1e-25")
    assert abs(sample - book_premium(bids, ((D(3020), D(100)),), index, D(20_000))) < D("1e-25")


def test_a_side_too_thin_for_the_impact_notional_adds_nothing_to_the_premium() -> None:
    engine = eth_engine()
    clear_quotes(engine, ETH)
    maker = engine.create_account(D(10_000_000))
    rest(engine, maker, Side.BUY, "1", "3010")  # above the index but worth 3 010 < 20 000
    rest(engine, maker, Side.SELL, "100", "3020")
    engine.clock.advance(5_000)
    assert engine.funding.samples(ETH)[-1][1] == 0
    clear_quotes(engine, ETH)
    for order in engine.books[ETH].orders_of(maker.account_id):
        engine.books[ETH].remove(order.order_id)
    rest(engine, maker, Side.SELL, "1", "2999")  # below the index, too thin
    rest(engine, maker, Side.BUY, "100", "2990")
    engine.clock.advance(5_000)
    assert engine.funding.samples(ETH)[-1][1] == 0


# ---------------------------------------------------------------------------- the rate
def _oracle_rate(s: Settlement, hours: int = 1) -> Decimal:
    exact = funding_rate(s.average_premium, R, CLAMP, CAP, -CAP, hours)
    return exact.quantize(UNIT, rounding=ROUND_HALF_EVEN)


@pytest.mark.parametrize(
    ("skew", "branch"), [("3", "band"), ("20", "clamped"), ("700", "cap"), ("-700", "floor")]
)
def test_settled_rate_is_the_clamped_formula_scaled_to_the_interval_then_capped(
    skew: str, branch: str
) -> None:
    engine = eth_engine()
    engine.market_maker.set_skew(ETH, D(skew))
    engine.clock.advance(HOUR)
    (settled,) = engine.funding.settlements
    assert settled.sample_count == 720
    assert settled.rate == _oracle_rate(settled)
    premium = settled.average_premium
    expected = {
        "band": R / 8,  # |r − P̄| <= 0.05 %: F8 = r
        "clamped": ((premium - CLAMP) / 8).quantize(UNIT, rounding=ROUND_HALF_EVEN),
        # F8/8 is beyond ±0.75 % here; capping F8 before scaling would give F8_capped/8 instead.
        "cap": CAP,
        "floor": -CAP,
    }[branch]
    assert settled.rate == expected


def test_a_two_hour_interval_pays_a_quarter_of_the_eight_hour_rate() -> None:
    engine = eth_engine(hours=2)
    engine.clock.advance(2 * HOUR)
    (settled,) = engine.funding.settlements
    assert (settled.funding_time_ms, settled.sample_count) == (T0 + 2 * HOUR, 1440)
    assert settled.average_premium == 0  # quiet book straddling the index
    assert settled.rate == R * 2 / 8


def test_interest_clamp_ignored_defect_settles_premium_plus_interest() -> None:
    engine = eth_engine("funding-interest-clamp-ignored")
    engine.market_maker.set_skew(ETH, D(3))
    engine.clock.advance(HOUR)
    (settled,) = engine.funding.settlements
    expected = ((settled.average_premium + R) / 8).quantize(UNIT, rounding=ROUND_HALF_EVEN)
    assert settled.rate == expected != _oracle_rate(settled)


# ---------------------------------------------------------------------------- settlement
@dataclass(frozen=True, slots=True)
class Run:
    engine: Engine
    long: AccountState  # isolated, held
    short: AccountState  # cross, held
    closer: AccountState  # closed 1 ms before the funding time
    joiner: AccountState  # opened at the funding time, after the settlement
    before: dict[str, Decimal]  # wallet totals 1 ms before the funding time
    after: dict[str, Decimal]  # and right after the settlement
    cross_before: dict[str, Decimal]
    isolated_before: Decimal
    qty: dict[str, Decimal]  # signed positions at the funding time
    settled: Settlement


def _settle_once(*defects: str) -> Run:
    engine = eth_engine(*defects, quiet=False)
    engine.market_maker.set_skew(ETH, D(30))  # F > 0: longs pay
    engine.clock.advance(60_000)
    long, short, closer, joiner = (engine.create_account(D(50_000)) for _ in range(4))
    open_position(engine, long, ETH, Side.BUY, "1.003", mode=MarginMode.ISOLATED, leverage=10)
    open_position(engine, short, ETH, Side.SELL, "2.017")
    open_position(engine, closer, ETH, Side.BUY, "0.5")
    advance_to(engine, T0 + HOUR - 1)
    engine.place_order(closer.account_id, market(ETH, Side.SELL, "0.5", reduce_only=True))
    before = wallets(engine)
    cross_before = {a.account_id: a.cross_wallet for a in engine.accounts.values()}
    isolated_before = long.positions[ETH].isolated_wallet
    qty = {
        a.account_id: a.positions[ETH].qty for a in engine.accounts.values() if ETH in a.positions
    }
    engine.clock.advance(1)
    after = wallets(engine)
    open_position(engine, joiner, ETH, Side.BUY, "0.7")  # same instant, after the settlement
    return Run(
        engine=engine,
        long=long,
        short=short,
        closer=closer,
        joiner=joiner,
        before=before,
        after=after,
        cross_before=cross_before,
        isolated_before=isolated_before,
        qty=qty,
        settled=engine.funding.settlements[-1],
    )


@pytest.fixture(scope="module")
def run() -> Run:
    return _settle_once()


def test_each_holder_pays_signed_qty_times_mark_times_rate_payer_up_receiver_down(run: Run) -> None:
    settled = run.settled
    assert settled.funding_time_ms == T0 + HOUR
    assert settled.rate > 0
    holders = {aid: q for aid, q in run.qty.items() if q != 0}
    assert set(settled.payments) == set(holders)
    for aid, q in holders.items():
        exact = q * settled.mark * settled.rate
        assert settled.payments[aid] == exact.quantize(UNIT, rounding=ROUND_CEILING), aid
    assert settled.payments[run.long.account_id] > 0  # the long pays
    assert settled.payments[run.short.account_id] < 0  # the short receives


def test_the_market_makers_inventory_pays_too_so_payments_net_out(run: Run) -> None:
    assert run.qty[MARKET_MAKER] == -(D("1.003") - D("2.017"))
    assert MARKET_MAKER in run.settled.payments
    assert sum(run.qty.values()) == 0


def test_isolated_positions_pay_from_the_isolated_wallet_cross_ones_from_the_cross_wallet(
    run: Run,
) -> None:
    paid = run.settled.payments
    assert (
        run.long.positions[ETH].isolated_wallet == run.isolated_before - paid[run.long.account_id]
    )
    assert run.long.cross_wallet == run.cross_before[run.long.account_id]
    assert (
        run.short.cross_wallet
        == run.cross_before[run.short.account_id] - paid[run.short.account_id]
    )


def test_the_rounding_residual_goes_to_the_insurance_fund_and_money_is_conserved(run: Run) -> None:
    settled, after = run.settled, run.after
    assert settled.residual == sum(settled.payments.values(), D(0))
    assert 0 <= settled.residual < UNIT * len(settled.payments)
    assert after[INSURANCE] - run.before[INSURANCE] == settled.residual
    assert sum(after.values(), D(0)) == sum(run.before.values(), D(0))  # exactly
    for aid, paid in settled.payments.items():
        assert after[aid] == run.before[aid] - paid


def test_only_positions_held_at_the_funding_instant_pay(run: Run) -> None:
    assert fees(run.closer) == []  # closed 1 ms before
    assert fees(run.joiner) == []  # opened at the funding time, after the settlement
    assert run.joiner.positions[ETH].qty == D("0.7")


def test_funding_fee_income_records_the_amount_and_the_funding_time(run: Run) -> None:
    t = T0 + HOUR
    assert fees(run.long) == [(-run.settled.payments[run.long.account_id], t, str(t))]
    assert fees(run.short) == [(-run.settled.payments[run.short.account_id], t, str(t))]


def test_the_settled_rate_feeds_p1_and_the_schedule_rolls_at_the_funding_time(run: Run) -> None:
    state, settled = run.engine.prices[ETH], run.settled
    event = run.engine.funding.history(ETH)[-1]
    assert (event.funding_rate, event.funding_time_ms, event.mark_price) == (
        settled.rate,
        settled.funding_time_ms,
        settled.mark,
    )
    assert state.last_funding_rate == settled.rate
    assert (state.next_funding_ms, state.funding_interval_ms) == (T0 + 2 * HOUR, HOUR)
    assert state.p1 == state.index * (1 + settled.rate)  # τ = T right after the settlement
    assert run.engine.funding.info(ETH).next_funding_time_ms == T0 + 2 * HOUR


def test_funding_that_drains_an_isolated_position_to_maintenance_liquidates_it_at_once() -> None:
    engine = eth_engine()
    engine.market_maker.set_skew(ETH, D(700))  # F at the +0.75 % cap
    engine.clock.advance(60_000)  # the mark follows the premium before entry
    trader = engine.create_account(D(10_000))
    open_position(engine, trader, ETH, Side.BUY, "1", mode=MarginMode.ISOLATED, leverage=100)
    advance_to(engine, T0 + HOUR - 1_000)
    assert engine.liquidator.records == []
    engine.clock.advance(1_000)
    assert engine.funding.settlements[-1].rate == CAP
    assert [(r.account_id, r.time_ms) for r in engine.liquidator.records][:1] == [
        (trader.account_id, T0 + HOUR)
    ]


# ---------------------------------------------------------------------------- defects
def test_sign_flipped_defect_makes_longs_receive_under_a_premium() -> None:
    broken = _settle_once("funding-sign-flipped")
    assert broken.settled.rate > 0
    assert broken.settled.payments[broken.long.account_id] < 0
    assert broken.settled.payments[broken.short.account_id] > 0


def test_entry_notional_defect_pays_on_entry_price_and_leaves_a_large_residual() -> None:
    broken = _settle_once("funding-on-entry-notional")
    long = broken.long.positions[ETH]
    exact = long.qty * long.entry * broken.settled.rate
    assert broken.settled.payments[broken.long.account_id] == exact.quantize(
        UNIT, rounding=ROUND_CEILING
    )
    assert abs(broken.settled.residual) > UNIT * len(broken.settled.payments)


def test_late_joiner_defect_settles_60_s_later_on_the_positions_then() -> None:
    engine = eth_engine("funding-paid-to-late-joiner")
    engine.market_maker.set_skew(ETH, D(30))
    late = engine.create_account(D(50_000))
    advance_to(engine, T0 + HOUR + 30_000)
    open_position(engine, late, ETH, Side.BUY, "1")
    assert engine.funding.settlements == []  # nothing paid at the funding time
    advance_to(engine, T0 + HOUR + 60_000)
    ((amount, time_ms, info),) = fees(late)
    assert (time_ms, info) == (T0 + HOUR + 60_000, str(T0 + HOUR))
    assert amount < 0


def test_switch_early_defect_applies_the_new_interval_at_the_announcement() -> None:
    engine = eth_engine("funding-interval-switch-early")
    engine.funding.schedule_interval(ETH, 2, T0 + HOUR)
    state = engine.prices[ETH]
    assert (state.funding_interval_ms, state.next_funding_ms) == (2 * HOUR, T0 + 2 * HOUR)
    assert engine.funding.info(ETH).pending_interval_hours is None
    engine.clock.advance(HOUR)
    assert engine.funding.history(ETH) == []


# ---------------------------------------------------------------------------- interval switch
def test_interval_switch_needs_a_funding_time_at_least_the_notice_ahead() -> None:
    engine = eth_engine()
    with pytest.raises(ConfigError, match="choose 1, 2, 4 or 8"):
        engine.funding.schedule_interval(ETH, 3, T0 + HOUR)
    with pytest.raises(ConfigError, match="already settles every 1 h"):
        engine.funding.schedule_interval(ETH, 1, T0 + HOUR)
    with pytest.raises(ConfigError, match=f"must be a funding time.*the earliest is {T0 + HOUR}"):
        engine.funding.schedule_interval(ETH, 2, T0 + HOUR // 2)
    engine.clock.advance(HOUR // 2)
    with pytest.raises(ConfigError, match=f"3600000 ms after now.*earliest is {T0 + 2 * HOUR}"):
        engine.funding.schedule_interval(ETH, 2, T0 + HOUR)  # a funding time, 30 min away
    engine.funding.schedule_interval(ETH, 2, T0 + 2 * HOUR)
    with pytest.raises(ConfigError, match="already pending"):
        engine.funding.schedule_interval(ETH, 4, T0 + 2 * HOUR)


def test_interval_switch_closes_the_old_interval_at_the_effective_time_then_follows_the_new() -> (
    None
):
    engine = eth_engine()
    engine.funding.schedule_interval(ETH, 2, T0 + HOUR)
    info = engine.funding.info(ETH)
    assert (info.interval_hours, info.next_funding_time_ms) == (1, T0 + HOUR)
    assert (info.pending_interval_hours, info.pending_effective_ms) == (2, T0 + HOUR)
    assert info.pending_announced_ms == T0
    state = engine.prices[ETH]
    advance_to(engine, T0 + HOUR - 1_000)
    assert (state.next_funding_ms, state.funding_interval_ms) == (T0 + HOUR, HOUR)
    engine.clock.advance(1_000)
    assert (state.next_funding_ms, state.funding_interval_ms) == (T0 + 3 * HOUR, 2 * HOUR)
    assert engine.funding.info(ETH).pending_interval_hours is None
    advance_to(engine, T0 + 3 * HOUR)
    history = engine.funding.history(ETH)
    assert [e.funding_time_ms for e in history] == [T0 + HOUR, T0 + 3 * HOUR]
    assert [e.funding_rate for e in history] == [R / 8, R * 2 / 8]  # quiet book: P̄ = 0
    assert [s.sample_count for s in engine.funding.settlements] == [720, 1440]


# ---------------------------------------------------------------------------- the venue facade
@pytest.mark.asyncio
async def test_sim_venue_publishes_funding_info_history_rules_and_the_last_rate() -> None:
    venue = await open_sim_venue(VenueConfig(seed=2))
    assert {Capability.READ_FUNDING, Capability.CONTROL_FUNDING} <= venue.capabilities
    rules = venue.rules
    assert (rules.premium_sample_interval_ms, rules.funding_rate_decimals) == (5_000, 8)
    assert (rules.funding_reference_price, rules.funding_payment_rounding) == (
        "mark",
        ROUND_CEILING,
    )
    info = await venue.funding_info(ETH)
    assert (info.interval_hours, info.cap, info.floor) == (1, CAP, -CAP)
    assert (info.interest_rate, info.clamp, info.impact_margin_notional) == (R, CLAMP, D(20_000))
    btc = await venue.funding_info("BTCUSDT")
    assert (btc.interval_hours, btc.cap, btc.impact_margin_notional) == (8, D("0.003"), D(25_000))
    await venue.control.schedule_funding_interval(ETH, 4, T0 + HOUR)
    assert (await venue.funding_info(ETH)).pending_interval_hours == 4
    with pytest.raises(ConfigError, match="already pending"):
        await venue.control.schedule_funding_interval(ETH, 2, T0 + HOUR)
    await venue.control.advance(HOUR)
    (event,) = await venue.funding_history(ETH)
    assert event.funding_time_ms == T0 + HOUR
    assert await venue.funding_history(ETH, since_ms=T0 + HOUR + 1) == []
    mark = await venue.mark(ETH)
    assert mark.last_funding_rate == event.funding_rate
    assert (mark.next_funding_time_ms, mark.funding_interval_ms) == (T0 + 5 * HOUR, 4 * HOUR)
