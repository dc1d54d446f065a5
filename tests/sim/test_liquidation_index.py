"""The trigger index finds exactly the liquidations of the linear scan (engine/liqindex.py).

Random populations (isolated and cross, long and short, one or two symbols, wallets from deep
underwater to far from maintenance), random marks, random changes of wallets and positions: the
steps of a scan over the index's candidates equal the steps of the scan over every account (same
accounts, order, sizes, prices), and so does the cascade early warning's at-risk table.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal, localcontext

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adapters.sim.engine import liqindex
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.liquidation_exec import Step
from harness.model import MarginMode
from tests.sim.simkit import BTC, ETH, make_engine

D = Decimal
PRICES = {BTC: D(60000), ETH: D(3000)}
QTY_UNIT = {BTC: D("0.001"), ETH: D("0.01")}

_leg = st.tuples(
    st.sampled_from((BTC, ETH)),
    st.integers(-400, 400).filter(bool),  # signed quantity in units
    st.integers(-300, 300),  # entry offset, bp of the price
)
_account = st.tuples(
    st.booleans(),  # isolated
    st.lists(_leg, min_size=1, max_size=2, unique_by=lambda leg: leg[0]),
    st.integers(0, 4000),  # wallet, in tenths of a percent of the notional
)
_change = st.tuples(
    st.integers(0, 10_000),  # which account (modulo)
    st.sampled_from(("wallet", "qty", "entry", "mode", "none")),
    st.integers(-50, 50),
)
_move = st.tuples(st.integers(-900, 900), st.integers(-900, 900))  # bp moves of BTC, ETH


def _build(accounts: list[tuple[bool, list[tuple[str, int, int]], int]]) -> Engine:
    engine = make_engine(seed=5, quiet=True)
    for isolated, legs, wallet_permille in accounts:
        notional = sum((abs(q) * QTY_UNIT[s] * PRICES[s] for s, q, _ in legs), D(0))
        wallet = (notional * wallet_permille / 1000).quantize(D("0.00000001"))
        acct = engine.create_account(wallet)
        for symbol, units, offset in legs:
            pos = acct.position(symbol, 20)
            if isolated:
                pos.margin_mode = MarginMode.ISOLATED
                acct.margin_modes[symbol] = MarginMode.ISOLATED
                share = (wallet / len(legs)).quantize(D("0.00000001"))
                acct.cross_wallet -= share
                pos.isolated_wallet = share
            pos.qty = units * QTY_UNIT[symbol]
            pos.entry = PRICES[symbol] * (1 + D(offset) / 10_000)
    return engine


def _key(step: Step) -> tuple[object, ...]:
    return (
        step.account.account_id,
        step.position.symbol,
        step.isolated,
        step.qty,
        step.trigger,
        step.bankruptcy,
        step.backstop,
    )


def _compare(engine: Engine) -> tuple[int, int]:
    """Index against linear scan, for the steps and the at-risk table; their sizes."""
    liquidator = engine.liquidator
    index = engine.trigger_index
    assert index.active
    saved = dict(liquidator._last_slice_ms)
    linear = [_key(s) for s in liquidator.linear_steps()]
    liquidator._last_slice_ms = dict(saved)
    candidates = index.candidates()
    indexed = [_key(s) for s in liquidator.evaluate(candidates)]
    index.rebase(candidates)
    liquidator._last_slice_ms = saved
    assert indexed == linear
    monitor = engine.monitor
    at_risk = monitor.at_risk()
    assert at_risk == monitor.at_risk_of(list(engine.accounts.values()))
    return len(linear), len(at_risk)


def _change_one(engine: Engine, change: tuple[int, str, int]) -> None:
    which, kind, amount = change
    traders = [a for a in engine.accounts.values() if not a.exempt]
    acct = traders[which % len(traders)]
    pos = next(iter(acct.positions.values()))
    if kind == "wallet":
        if pos.margin_mode is MarginMode.ISOLATED:
            pos.isolated_wallet += D(amount)
        else:
            acct.cross_wallet += D(amount)
    elif kind == "qty":
        pos.qty += amount * QTY_UNIT[pos.symbol]
    elif kind == "entry":
        pos.entry *= 1 + D(amount) / 10_000
    elif kind == "mode" and pos.margin_mode is MarginMode.CROSS:
        pos.margin_mode = MarginMode.ISOLATED
        pos.isolated_wallet = acct.cross_wallet / 2
        acct.cross_wallet /= 2


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    accounts=st.lists(_account, min_size=1, max_size=25),
    steps=st.lists(st.tuples(_move, _change), min_size=1, max_size=8),
)
def test_indexed_scan_steps_the_same_accounts_in_the_same_order_as_the_linear_scan(
    accounts: list[tuple[bool, list[tuple[str, int, int]], int]],
    steps: list[tuple[tuple[int, int], tuple[int, str, int]]],
) -> None:
    engine = _build(accounts)
    _compare(engine)
    for (btc_bp, eth_bp), change in steps:
        for symbol, bp in ((BTC, btc_bp), (ETH, eth_bp)):
            state = engine.prices[symbol]
            state.mark = state.round(state.mark * (1 + D(bp) / 10_000))
        stepped, at_risk = _compare(engine)
        event(f"steps: {min(stepped, 3)}")
        event(f"at-risk sides: {at_risk}")
        _change_one(engine, change)
        _compare(engine)


def test_a_scan_evaluates_only_the_accounts_near_their_trigger() -> None:
    engine = _build([(i % 2 == 0, [(BTC, 10, 0)], 200 + 10 * i) for i in range(200)])
    index = engine.trigger_index
    candidates = index.candidates()
    index.rebase(candidates)
    assert candidates == []  # everyone is 15 % or more above maintenance
    state = engine.prices[BTC]
    # The account with the thinnest wallet (20 %): liquidation about 19.6 % below entry. Keys
    # keep a reserve of a quarter of the slack, so a few more are looked at, then rebased.
    state.mark = state.round(PRICES[BTC] * D("0.795"))
    candidates = index.candidates()
    assert 1 <= len(candidates) <= 20
    steps = [s.account.account_id for s in engine.liquidator.evaluate(candidates)]
    assert steps == [s.account.account_id for s in engine.liquidator.linear_steps()]
    assert steps == ["acct-1"]
    index.rebase(candidates)
    assert len(index.candidates()) <= 2  # after the rebase: the crossed account and its twin


def test_wallet_decreases_within_the_reserve_do_not_rekey_but_stay_sound() -> None:
    engine = _build([(True, [(BTC, 10, 0)], 100), (False, [(BTC, -10, 0)], 100)])
    index = engine.trigger_index
    index.rebase(index.candidates())
    index.sync()
    iso, cross = (a for a in engine.accounts.values() if not a.exempt)
    for n in range(50):  # small payments, as funding makes them
        iso.positions[BTC].isolated_wallet -= D("0.5")
        cross.cross_wallet -= D("0.5")
        if n == 0:
            assert not index.dirty  # within the reserve: the keys stand
        _compare(engine)
    assert index.watch.version >= 100


@given(
    st.decimals(min_value=-(D(10) ** 30), max_value=D(10) ** 30, allow_nan=False)
    | st.decimals(min_value=-(10**7), max_value=10**7, places=12)
    | st.sampled_from((D("Infinity"), D("-Infinity"), D("-0"), D("1E-30"), D("-1E-30")))
)
def test_keys_are_units_of_1e_8_rounded_down(value: Decimal) -> None:
    """The index's integer keys (liqindex._units): floor(value * 10^8), exactly; infinities map
    beyond every finite key on their side."""
    got = liqindex._units(value)
    if value.is_infinite():
        assert got == (liqindex._FAR if value > 0 else -liqindex._FAR)
        return
    with localcontext() as ctx:
        ctx.prec = 1_000
        ctx.Emax = 10**6
        ctx.Emin = -(10**6)
        expected = int((value * 10**8).to_integral_value(rounding=ROUND_FLOOR))
    assert got == expected
    assert abs(got) < liqindex._FAR
