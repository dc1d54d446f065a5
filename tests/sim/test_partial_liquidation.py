"""Partial liquidation, the band, batched fairness, the fund's shortfall and ADL in the engine.

Engine behaviour is judged against the independent oracle (harness.oracle.partial) wherever the
oracle has an opinion; each new defect is shown to change exactly what it names.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.sim.engine.accounts import AccountState
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.liquidation import LiquidationRecord
from harness.model import LiquidationVariant, MarginMode, PricePath, Side
from harness.oracle import PositionInput, PositionSide, expected_band, step_close_quantity
from tests.sim.simkit import BTC, ETH, limit, make_engine, market, open_position

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
_Levels = tuple[tuple[Decimal, Decimal], ...]
ISOLATED = MarginMode.ISOLATED


def _walk(engine: Engine, symbol: str, factor: str, seconds: int) -> None:
    """Index linearly to ``factor`` x now over ``seconds``, then advance through it."""
    idx = engine.prices[symbol].index
    engine.set_price_path(
        symbol, PricePath(points=((0, idx), (seconds * 1000, idx * D(factor))), linear=True)
    )
    engine.clock.advance(seconds * 1000 + 2000)


def _gap(engine: Engine, symbol: str, factor: str) -> None:
    idx = engine.prices[symbol].index
    engine.market_maker.set_profile(symbol, "thin")
    engine.set_price_path(symbol, PricePath(points=((0, idx * D(factor)),)))
    engine.clock.advance(1000)


def _records(engine: Engine, acct: AccountState) -> list[LiquidationRecord]:
    return [r for r in engine.liquidator.records if r.account_id == acct.account_id]


def _tiered_long(engine: Engine, qty: str = "15") -> AccountState:
    acct = engine.create_account(D(1_000_000))
    open_position(engine, acct, BTC, BUY, qty, mode=ISOLATED, leverage=20)
    return acct


def _oracle_input(engine: Engine, acct: AccountState, symbol: str) -> PositionInput:
    pos = acct.positions[symbol]
    return PositionInput(
        symbol=symbol,
        side=PositionSide.parse(pos.sign),
        quantity=abs(pos.qty),
        entry_price=pos.entry,
        brackets=engine.instruments[symbol].brackets,
    )


def test_tier_step_down_walks_the_band_the_oracle_predicts() -> None:
    engine = make_engine(seed=3)
    acct = _tiered_long(engine)
    inst = engine.instruments[BTC]
    pos = acct.positions[BTC]
    band = engine.liquidator.band(acct, BTC)
    assert band is not None
    expected = expected_band(
        _oracle_input(engine, acct, BTC),
        wallet=pos.isolated_wallet,
        policy=inst.liquidation,
        step_size=inst.step_size,
        isolated=True,
        fee_rate=inst.liquidation_fee_rate or D(0),
    )
    assert [(s.close_qty, s.bracket_before, s.bracket_after) for s in band.steps] == [
        (e.close_qty, e.bracket_before, e.bracket_after) for e in expected
    ]
    assert all(abs(s.mark - e.mark) < D("1e-9") for s, e in zip(band.steps, expected, strict=True))
    assert [s.bracket_before for s in band.steps] == [3, 2, 1]
    _walk(engine, BTC, "0.9", 3000)  # about 2 USDT per update: every band step gets its own
    realized = _records(engine, acct)
    assert [r.partial for r in realized] == [True, True, False]
    for record, step in zip(realized, band.steps, strict=True):
        trigger = record.trigger_mark
        remaining = record.position_before - record.quantity
        # Beyond the band's mark the target tier holds a little more: that much slack.
        slack = inst.step_size + step.remaining_qty * (step.mark - trigger) / trigger
        assert trigger <= step.mark
        assert abs(remaining - step.remaining_qty) <= slack
    assert acct.open_positions() == []


def test_each_step_is_the_oracles_minimal_step_at_its_trigger() -> None:
    engine = make_engine(seed=4)
    acct = _tiered_long(engine)
    inst = engine.instruments[BTC]
    snapshots = []
    for _ in range(400):
        pos = acct.positions[BTC]
        snapshots.append((abs(pos.qty), pos.entry, pos.isolated_wallet))
        before = len(engine.liquidator.records)
        if not snapshots or pos.qty == 0:
            break
        idx = engine.prices[BTC].index
        engine.set_price_path(BTC, PricePath(points=((0, idx * D("0.9995")),)))
        engine.clock.advance(1000)
        for record in engine.liquidator.records[before:]:
            qty, entry, wallet = snapshots[-1]
            position = PositionInput(
                symbol=BTC,
                side=PositionSide.LONG,
                quantity=qty,
                entry_price=entry,
                brackets=inst.brackets,
            )
            trigger = record.trigger_mark
            expected = step_close_quantity(
                position,
                price=trigger,
                equity=wallet + qty * (trigger - entry),
                policy=inst.liquidation,
                step_size=inst.step_size,
                isolated=True,
            )
            assert record.quantity == expected
        if acct.positions[BTC].qty == 0:
            break
    assert acct.positions[BTC].qty == 0


@settings(max_examples=30, deadline=None)
@given(
    qty=st.decimals(min_value=D("0.9"), max_value=D("40"), places=3),
    leverage=st.integers(min_value=5, max_value=40),
    extra=st.decimals(min_value=D(0), max_value=D(5000), places=2),
)
def test_engine_band_equals_the_oracle_band(qty: Decimal, leverage: int, extra: Decimal) -> None:
    engine = make_engine(seed=1)
    acct = engine.create_account(D(5_000_000))
    engine.set_margin_mode(acct.account_id, BTC, ISOLATED)
    engine.set_leverage(acct.account_id, BTC, leverage)
    engine.place_order(acct.account_id, market(BTC, BUY, str(qty)))
    pos = acct.positions[BTC]
    if extra:
        engine.add_isolated_margin(acct.account_id, BTC, extra)
    inst = engine.instruments[BTC]
    band = engine.liquidator.band(acct, BTC)
    assert band is not None
    expected = expected_band(
        _oracle_input(engine, acct, BTC),
        wallet=pos.isolated_wallet,
        policy=inst.liquidation,
        step_size=inst.step_size,
        isolated=True,
    )
    assert [s.close_qty for s in band.steps] == [e.close_qty for e in expected]
    assert all(abs(s.mark - e.mark) < D("1e-9") for s, e in zip(band.steps, expected, strict=True))


def test_twins_liquidated_together_share_one_average_price() -> None:
    engine = make_engine(seed=2)
    seller = engine.create_account(D(1_000_000))
    ask = engine.books[BTC].best_ask()
    assert ask is not None
    engine.place_order(seller.account_id, limit(BTC, SELL, "2", str(ask - D("0.1"))))
    twins = [engine.create_account(D(50_000)) for _ in range(2)]
    for twin in twins:
        open_position(engine, twin, BTC, BUY, "1", mode=ISOLATED, leverage=20)
    engine.market_maker.set_profile(BTC, "thin")
    _walk(engine, BTC, "0.9", 200)
    first = [_records(engine, t)[0] for t in twins]
    assert first[0].time_ms == first[1].time_ms
    keys = ("quantity", "filled_qty", "avg_price", "fee", "taken_over_qty")
    assert [getattr(first[0], k) for k in keys] == [getattr(first[1], k) for k in keys]


def test_fraction_variant_slices_then_sends_the_whole_position_inside_the_cooldown() -> None:
    engine = make_engine(seed=1)
    inst = engine.instruments[ETH]
    assert inst.liquidation.variant is LiquidationVariant.FRACTION
    acct = engine.create_account(D(20_000))
    open_position(engine, acct, ETH, BUY, "66.666")
    _walk(engine, ETH, "0.85", 600)
    records = _records(engine, acct)
    assert records[0].quantity == D("13.334")
    assert records[0].partial
    gap = records[1].time_ms - records[0].time_ms
    assert gap < inst.liquidation.cooldown_ms
    assert not records[1].partial


def test_fraction_backstop_takes_the_position_over_below_two_thirds_of_maintenance() -> None:
    engine = make_engine(seed=1)
    acct = engine.create_account(D(20_000))
    open_position(engine, acct, ETH, BUY, "66.666")
    _gap(engine, ETH, "0.9")  # far past the liquidation price in one update
    (record,) = _records(engine, acct)
    assert record.taken_over_qty == D("66.666")
    assert record.filled_qty == 0
    assert acct.open_positions() == []


def test_the_fund_shortfall_counts_only_what_it_disposed_of() -> None:
    engine = make_engine(seed=1)
    acct = engine.create_account(D(10_000))
    open_position(engine, acct, BTC, BUY, "0.5", mode=ISOLATED, leverage=20)
    fund_before = engine.insurance.cross_wallet
    _gap(engine, BTC, "0.88")
    (record,) = _records(engine, acct)
    fund = engine.insurance
    held = fund.positions[BTC].qty if BTC in fund.positions else D(0)
    assert held > 0  # the thin book could not absorb it all
    # Fund balance moved by fee - shortfall: the units it still holds are not a loss yet.
    assert fund.cross_wallet - fund_before == record.fee - record.shortfall


def test_empty_fund_deleverages_opposite_positions_by_rank_at_the_bankruptcy_price() -> None:
    engine = make_engine(seed=1)
    shorts = []
    for leverage, qty in ((5, "0.02"), (20, "0.02"), (10, "0.03")):
        acct = engine.create_account(D(5_000))
        open_position(engine, acct, BTC, SELL, qty, mode=ISOLATED, leverage=leverage)
        shorts.append(acct)
    _walk(engine, BTC, "0.93", 30)
    trader = engine.create_account(D(5_000))
    open_position(engine, trader, BTC, BUY, "0.05", mode=ISOLATED, leverage=20)
    engine.insurance.cross_wallet = D(0)
    _gap(engine, BTC, "0.85")
    (record,) = _records(engine, trader)
    assert record.adl_qty == D("0.05")
    adl = engine.liquidator.adl_records
    assert [a.account_id for a in adl] == [shorts[1].account_id, shorts[2].account_id]
    assert [a.quantity for a in adl] == [D("0.02"), D("0.03")]
    assert all(a.price == record.bankruptcy_price for a in adl)
    assert adl[0].rank > adl[1].rank


# ----------------------------------------------------------------------------- defects
def _first_step(defects: list[str]) -> list[LiquidationRecord]:
    engine = make_engine(seed=3, defects=defects)
    acct = _tiered_long(engine)
    _walk(engine, BTC, "0.9", 300)
    return _records(engine, acct)


def test_close_whole_position_replaces_the_step_by_a_full_close() -> None:
    clean, broken = _first_step([]), _first_step(["close-whole-position"])
    assert len(clean) == 3
    assert clean[0].partial
    assert len(broken) == 1
    assert not broken[0].partial


def test_step_down_skips_tiers_jumps_to_the_lowest_tier() -> None:
    clean, broken = _first_step([]), _first_step(["step-down-skips-tiers"])
    assert len(clean) == 3
    assert len(broken) == 2
    assert broken[0].quantity > clean[0].quantity


def _twins_avg(defects: list[str]) -> list[Decimal | None]:
    engine = make_engine(seed=2, defects=defects)
    seller = engine.create_account(D(1_000_000))
    ask = engine.books[BTC].best_ask()
    assert ask is not None
    engine.place_order(seller.account_id, limit(BTC, SELL, "2", str(ask - D("0.1"))))
    twins = [engine.create_account(D(50_000)) for _ in range(2)]
    for twin in twins:
        open_position(engine, twin, BTC, BUY, "1", mode=ISOLATED, leverage=20)
    engine.market_maker.set_profile(BTC, "thin")
    _walk(engine, BTC, "0.9", 200)
    return [_records(engine, t)[0].avg_price for t in twins]


def test_liquidate_by_account_id_order_gives_the_first_account_better_prices() -> None:
    clean, broken = _twins_avg([]), _twins_avg(["liquidate-by-account-id-order"])
    assert clean[0] == clean[1]
    assert broken[0] != broken[1]


def _rich_first_step(defects: list[str]) -> Decimal:
    engine = make_engine(seed=2, defects=defects)
    acct = engine.create_account(D(50_000))
    open_position(engine, acct, BTC, BUY, "1", mode=ISOLATED, leverage=20)
    engine.add_isolated_margin(acct.account_id, BTC, D(1000))
    _walk(engine, BTC, "0.9", 3000)  # slow: the two steps of its band are 6 USDT apart
    return _records(engine, acct)[0].quantity


def test_sizing_ignores_added_margin_closes_more_of_a_better_margined_position() -> None:
    assert _rich_first_step([]) < D("0.2")
    assert _rich_first_step(["sizing-ignores-added-margin"]) == D(1)


def _second_eth_step(defects: list[str]) -> bool:
    engine = make_engine(seed=1, defects=defects)
    acct = engine.create_account(D(20_000))
    open_position(engine, acct, ETH, BUY, "66.666")
    _walk(engine, ETH, "0.85", 600)
    return bool(_records(engine, acct)[1].partial)


def test_no_cooldown_slices_again_inside_the_cooldown() -> None:
    assert _second_eth_step([]) is False
    assert _second_eth_step(["no-cooldown"]) is True


def _lowest_fill(defects: list[str]) -> tuple[Decimal, Decimal]:
    engine = make_engine(seed=1, defects=defects)
    acct = engine.create_account(D(10_000))
    open_position(engine, acct, BTC, BUY, "0.05", mode=ISOLATED, leverage=20)
    _gap(engine, BTC, "0.88")
    (record,) = _records(engine, acct)
    fills = [f.price for f in acct.fills if f.liquidation]
    return min(fills), record.bankruptcy_price


def test_liquidation_without_price_limit_fills_below_bankruptcy() -> None:
    low, bankruptcy = _lowest_fill([])
    assert low >= bankruptcy - D("1e-8")
    low, bankruptcy = _lowest_fill(["liquidation-without-price-limit"])
    assert low < bankruptcy - 100


def _adl_in_funded_case(defects: list[str]) -> int:
    engine = make_engine(seed=1, defects=defects)
    short = engine.create_account(D(5_000))
    open_position(engine, short, BTC, SELL, "0.05", mode=ISOLATED, leverage=20)
    trader = engine.create_account(D(5_000))
    open_position(engine, trader, BTC, BUY, "0.05", mode=ISOLATED, leverage=20)
    _gap(engine, BTC, "0.9")
    return len(engine.liquidator.adl_records)


def test_adl_before_insurance_deleverages_while_the_fund_could_take_over() -> None:
    assert _adl_in_funded_case([]) == 0
    assert _adl_in_funded_case(["adl-before-insurance"]) > 0


def test_depth_overstated_doubles_the_published_book_only() -> None:
    import asyncio

    from adapters.sim.venue import open_sim_venue
    from harness.venue import VenueConfig

    async def levels(defects: tuple[str, ...]) -> tuple[_Levels, _Levels]:
        venue = await open_sim_venue(VenueConfig(seed=1, defects=defects))
        book = await venue.order_book(BTC, 5)
        return book.bids, venue.engine.books[BTC].levels(BUY, 5)

    clean_pub, clean_real = asyncio.run(levels(()))
    broken_pub, broken_real = asyncio.run(levels(("depth-overstated",)))
    assert clean_pub == clean_real == broken_real
    assert broken_pub == tuple((p, q * 2) for p, q in broken_real)
