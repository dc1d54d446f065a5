"""Money is conserved and no account is left liquidatable, across random action sequences.

Conservation: over ALL accounts (traders, the market maker, the insurance fund, the scenario
trader if any), ``Σ (wallet_total + unrealized PnL at the marks) + Σ commissions charged`` equals
the deposits. Commissions leave the system (the venue keeps them); liquidation fees, isolated
margin moves and insurance cover are transfers between accounts.

Bound. The test sums in a 60-digit context, so the only error comes from the engine's rounding
points that are not transfers:

* each fill that closes (part of) a position realizes ``s·q·(price − entry)`` quantized half-even
  to 1e-8 for that one account while the counterparty's side stays exact: ``|error| ≤ 0.5e-8``;
* entry prices are averaged in the engine's 28-digit context (and the realized product is formed
  there before quantizing): ``|q|·ulp(entry)`` with ``|q| < 1e4`` and entries ``< 1e6`` is below
  1e-18 per fill.

Commissions, isolated margin (rounded up on lock, down on partial release) and liquidation fees are
each debited and credited (or counted) at the same rounded amount, so they add nothing. Hence
``|drift| ≤ n_close × 0.5e-8 + n_fill × 1e-15``.

Source: perp-mechanics.md §8(d) "Conservation per liquidation", §11 rounding.
"""

from __future__ import annotations

import contextlib
import os
from decimal import Decimal, localcontext

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from adapters.sim import scenarios
from adapters.sim.config import SimConfig
from adapters.sim.engine.accounts import (
    AccountState,
    FillRecord,
    OrderRecord,
    maint_margin,
    max_notional_for_leverage,
)
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.scenario import SCENARIO_TRADER, apply_scenario
from harness.clock import VirtualClock
from harness.errors import Rejected
from harness.model import MarginMode, PricePath, Side, TimeInForce, quantize_down
from tests.sim.simkit import BTC, ETH, limit, market

D = Decimal
HALF_UNIT = D("0.000000005")
PER_FILL = D("1e-15")
SYMBOLS = (BTC, ETH)
STEP = {BTC: D("0.001"), ETH: D("0.01")}
BALANCES = ["300", "2000", "10000", "50000", "400000"]
FACTORS = ["0.85", "0.9", "0.95", "0.98", "0.995", "1.005", "1.02", "1.05", "1.1", "1.15"]


class CountingEngine(Engine):
    """The engine, counting commissions and the fills that realize PnL (rounding points)."""

    def __init__(self, config: SimConfig, clock: VirtualClock) -> None:
        self.commissions = D(0)
        self.closes = 0
        self.fill_count = 0
        super().__init__(config, clock)

    def apply_fill(
        self,
        acct: AccountState,
        rec: OrderRecord,
        price: Decimal,
        qty: Decimal,
        *,
        maker: bool,
        trade_id: int,
    ) -> FillRecord:
        pos = acct.positions.get(rec.symbol)
        if pos is not None and pos.qty != 0 and (pos.qty > 0) != (rec.side == Side.BUY):
            self.closes += 1
        fill = super().apply_fill(acct, rec, price, qty, maker=maker, trade_id=trade_id)
        self.fill_count += 1
        self.commissions += fill.commission
        return fill


def initial_money(engine: Engine, deposits: Decimal) -> Decimal:
    """Deposits plus the accounts the engine funds itself (maker, fund, scenario trader)."""
    total = deposits + engine.config.market_maker_balance + engine.config.insurance_fund
    if SCENARIO_TRADER in engine.accounts:
        total += engine.config.market_maker_balance
    return total


def drift(engine: CountingEngine, deposits: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60
        total = engine.commissions
        for acct in engine.accounts.values():
            total += acct.wallet_total()
            for pos in acct.open_positions():
                total += pos.qty * (engine.mark(pos.symbol) - pos.entry)
        return total - initial_money(engine, deposits)


def bound(engine: CountingEngine) -> Decimal:
    return engine.closes * HALF_UNIT + engine.fill_count * PER_FILL


def assert_no_account_left_liquidatable(engine: Engine) -> None:
    for acct in engine.accounts.values():
        if acct.exempt:
            continue
        cross_equity, cross_mm = acct.cross_wallet, D(0)
        has_cross = False
        for pos in acct.open_positions():
            brackets = engine.instruments[pos.symbol].brackets
            mark = engine.mark(pos.symbol)
            mm = maint_margin(brackets, abs(pos.qty) * mark)
            if pos.margin_mode is MarginMode.ISOLATED:
                assert pos.isolated_wallet + pos.upnl(mark) > mm, (acct.account_id, pos)
            else:
                has_cross = True
                cross_equity += pos.upnl(mark)
                cross_mm += mm
        if has_cross:
            assert cross_equity > cross_mm, (acct.account_id, cross_equity, cross_mm)
        else:
            assert acct.cross_wallet >= 0, (acct.account_id, acct.cross_wallet)


class EngineMachine(RuleBasedStateMachine):
    engine: CountingEngine
    traders: list[AccountState]
    deposits: Decimal

    @initialize(
        seed=st.integers(min_value=0, max_value=10_000),
        balances=st.lists(st.sampled_from(BALANCES), min_size=2, max_size=4),
    )
    def start(self, seed: int, balances: list[str]) -> None:
        self.engine = CountingEngine(SimConfig(seed=seed), VirtualClock())
        self.traders = [self.engine.create_account(D(b)) for b in balances]
        self.deposits = sum((D(b) for b in balances), D(0))

    def _trader(self, i: int) -> str:
        return self.traders[i % len(self.traders)].account_id

    def _qty(self, symbol: str, steps: int) -> str:
        return str(STEP[symbol] * steps)

    @rule(
        i=st.integers(0, 3),
        symbol=st.sampled_from(SYMBOLS),
        side=st.sampled_from(Side),
        steps=st.integers(1, 500),
        offset_bps=st.integers(-300, 300),
        tif=st.sampled_from(TimeInForce),
        reduce_only=st.booleans(),
    )
    def place_limit(
        self,
        i: int,
        symbol: str,
        side: Side,
        steps: int,
        offset_bps: int,
        tif: TimeInForce,
        reduce_only: bool,
    ) -> None:
        inst = self.engine.instruments[symbol]
        price = quantize_down(
            self.engine.mark(symbol) * (1 + D(offset_bps) / 10_000), inst.tick_size
        )
        req = limit(symbol, side, self._qty(symbol, steps), price, tif, reduce_only=reduce_only)
        with contextlib.suppress(Rejected):
            self.engine.place_order(self._trader(i), req)

    @rule(
        i=st.integers(0, 3),
        symbol=st.sampled_from(SYMBOLS),
        side=st.sampled_from(Side),
        steps=st.integers(1, 500),
        reduce_only=st.booleans(),
    )
    def place_market(self, i: int, symbol: str, side: Side, steps: int, reduce_only: bool) -> None:
        req = market(symbol, side, self._qty(symbol, steps), reduce_only=reduce_only)
        with contextlib.suppress(Rejected):
            self.engine.place_order(self._trader(i), req)

    @rule(i=st.integers(0, 3), pick=st.integers(0, 100))
    def cancel(self, i: int, pick: int) -> None:
        acct = self.engine.accounts[self._trader(i)]
        live = [r for r in acct.orders.values() if r.status in ("NEW", "PARTIALLY_FILLED")]
        if live:
            rec = live[pick % len(live)]
            self.engine.cancel_order(acct.account_id, rec.symbol, rec.order_id, None)

    @rule(
        i=st.integers(0, 3),
        symbol=st.sampled_from(SYMBOLS),
        leverage=st.sampled_from([1, 2, 5, 10, 20, 50, 75, 100, 125]),
    )
    def set_leverage(self, i: int, symbol: str, leverage: int) -> None:
        with contextlib.suppress(Rejected):
            self.engine.set_leverage(self._trader(i), symbol, leverage)

    @rule(i=st.integers(0, 3), symbol=st.sampled_from(SYMBOLS), mode=st.sampled_from(MarginMode))
    def set_margin_mode(self, i: int, symbol: str, mode: MarginMode) -> None:
        with contextlib.suppress(Rejected):
            self.engine.set_margin_mode(self._trader(i), symbol, mode)

    @rule(
        i=st.integers(0, 3),
        symbol=st.sampled_from(SYMBOLS),
        side=st.sampled_from(Side),
        leverage=st.sampled_from([5, 10, 20, 50, 75, 100, 125]),
        tenths=st.sampled_from([2, 5, 9, 10]),
        isolated=st.booleans(),
        kind=st.sampled_from(["market", "ioc", "rest"]),
        away_bps=st.sampled_from([10, 100, 300]),
    )
    def open_position(
        self,
        i: int,
        symbol: str,
        side: Side,
        leverage: int,
        tenths: int,
        isolated: bool,
        kind: str,
        away_bps: int,
    ) -> None:
        """An entry sized at ``tenths``/10 of the available balance, ``away_bps`` through."""
        engine, aid = self.engine, self._trader(i)
        acct = engine.accounts[aid]
        mode = MarginMode.ISOLATED if isolated else MarginMode.CROSS
        if acct.margin_modes.get(symbol, MarginMode.CROSS) is not mode:
            engine.cancel_all(aid, symbol)
            with contextlib.suppress(Rejected):  # -4048 while a position is open
                engine.set_margin_mode(aid, symbol, mode)
        with contextlib.suppress(Rejected):
            engine.set_leverage(aid, symbol, leverage)
        inst = engine.instruments[symbol]
        mark = engine.mark(symbol)
        away = 1 + D(away_bps if side is Side.BUY else -away_bps) / 10_000
        price = {"market": mark, "ioc": mark * away, "rest": mark / away}[kind]
        price = quantize_down(price, inst.tick_size)
        budget = engine.ledger.available_balance(acct) * tenths / 10
        pos = acct.positions.get(symbol)
        lev = pos.leverage if pos else engine.config.default_leverage
        notional = min(budget * lev, max_notional_for_leverage(inst.brackets, lev) * D("0.9"))
        steps = int(notional / price / STEP[symbol])  # sized on the order's own price
        if steps < 1:
            return
        qty = self._qty(symbol, steps)
        if kind == "market":
            req = market(symbol, side, qty)
        else:
            tif = TimeInForce.IOC if kind == "ioc" else TimeInForce.GTC
            req = limit(symbol, side, qty, price, tif)
        with contextlib.suppress(Rejected):
            engine.place_order(aid, req)

    @rule(
        i=st.integers(0, 3),
        symbol=st.sampled_from(SYMBOLS),
        side=st.sampled_from(Side),
        tier=st.integers(1, 3),
        isolated=st.booleans(),
    )
    def open_in_tier(self, i: int, symbol: str, side: Side, tier: int, isolated: bool) -> None:
        """A 20x position a fifth into a higher tier, so a shock forces partial steps."""
        engine, aid = self.engine, self._trader(i)
        inst = engine.instruments[symbol]
        mode = MarginMode.ISOLATED if isolated else MarginMode.CROSS
        with contextlib.suppress(Rejected):
            engine.set_margin_mode(aid, symbol, mode)
        with contextlib.suppress(Rejected):
            engine.set_leverage(aid, symbol, 20)
        notional = inst.brackets[tier].notional_floor * D("1.2")
        steps = int(notional / engine.mark(symbol) / STEP[symbol])
        with contextlib.suppress(Rejected):
            engine.place_order(aid, market(symbol, side, self._qty(symbol, steps)))

    @rule(i=st.integers(0, 3), symbol=st.sampled_from(SYMBOLS), tenths=st.integers(1, 10))
    def close_part(self, i: int, symbol: str, tenths: int) -> None:
        acct = self.engine.accounts[self._trader(i)]
        pos = acct.positions.get(symbol)
        if pos is None or pos.qty == 0:
            return
        steps = max(int(abs(pos.qty) * tenths / 10 / STEP[symbol]), 1)
        side = Side.SELL if pos.qty > 0 else Side.BUY
        with contextlib.suppress(Rejected):
            req = market(symbol, side, self._qty(symbol, steps), reduce_only=True)
            self.engine.place_order(acct.account_id, req)

    @rule(
        symbol=st.sampled_from(SYMBOLS),
        factor=st.sampled_from(FACTORS),
        over_ms=st.sampled_from([1, 5_000, 30_000, 300_000]),
        thin=st.booleans(),
    )
    def shock(self, symbol: str, factor: str, over_ms: int, thin: bool) -> None:
        """Move the index (a step or a ramp), maybe thin the book, and let the market run."""
        idx = self.engine.prices[symbol].index
        path = PricePath(points=((0, idx), (over_ms, idx * D(factor))), linear=over_ms > 1)
        self.engine.set_price_path(symbol, path)
        self.engine.market_maker.set_profile(symbol, "thin" if thin else "normal")
        self.engine.settle()
        self.engine.clock.advance(over_ms + 1_000)

    @rule(ms=st.sampled_from([250, 1_000, 3_000, 10_000]))
    def advance(self, ms: int) -> None:
        self.engine.clock.advance(ms)

    @rule(symbol=st.sampled_from(SYMBOLS), skew=st.sampled_from(["-40", "0", "15", "60"]))
    def funding_settles(self, symbol: str, skew: str) -> None:
        """A premium (the maker's skew), then the funding time pulled to the next update.

        The real settlement code runs; only the schedule is moved, so a property test need not
        simulate the hours in between.
        """
        self.engine.market_maker.set_skew(symbol, D(skew))
        self.engine.settle()
        now = self.engine.clock.now_ms()
        self.engine.prices[symbol].next_funding_ms = (now // 1000 + 1) * 1000
        self.engine.clock.advance(1000)

    @rule(
        i=st.integers(0, 3),
        symbol=st.sampled_from(SYMBOLS),
        amount=st.sampled_from(["-50", "25", "400"]),
    )
    def move_isolated_margin(self, i: int, symbol: str, amount: str) -> None:
        with contextlib.suppress(Rejected):
            self.engine.add_isolated_margin(self._trader(i), symbol, D(amount))

    @rule(empty=st.booleans())
    def insurance_fund(self, empty: bool) -> None:
        """Drain the fund (liquidations then deleverage) or refill it; money moves in or out."""
        fund = self.engine.insurance
        target = D(0) if empty else self.engine.config.insurance_fund
        self.deposits += target - fund.cross_wallet
        fund.cross_wallet = target

    @invariant()
    def money_is_conserved(self) -> None:
        gap = drift(self.engine, self.deposits)
        assert abs(gap) <= bound(self.engine), (gap, bound(self.engine))

    @invariant()
    def positions_net_to_zero(self) -> None:
        for symbol in SYMBOLS:
            net = sum(
                (
                    a.positions[symbol].qty
                    for a in self.engine.accounts.values()
                    if symbol in a.positions
                ),
                D(0),
            )
            assert net == 0, (symbol, net)

    @invariant()
    def no_account_is_left_liquidatable_or_in_debt(self) -> None:
        assert_no_account_left_liquidatable(self.engine)

    @invariant()
    def every_liquidation_is_recorded_with_its_trigger_and_bounds(self) -> None:
        liquidator = self.engine.liquidator
        for record in liquidator.records:
            assert record.trigger_mark > 0, record
            assert record.quantity == record.filled_qty + record.taken_over_qty + record.adl_qty
            assert record.fee >= 0
            assert record.shortfall >= 0
        bankruptcy = {(r.symbol, r.time_ms): r.bankruptcy_price for r in liquidator.records}
        for adl in liquidator.adl_records:
            assert adl.quantity > 0
            assert (adl.symbol, adl.time_ms) in bankruptcy
        # What the machine exercised, in --hypothesis-show-statistics.
        if any(r.partial for r in liquidator.records):
            event("a partial liquidation step")
        if liquidator.adl_records:
            event("auto-deleveraging")
        if self.engine.funding.settlements:
            event("a funding settlement")


# CI runs the machine at full size (issue 4: >= 200 examples x 100 steps); locally it is smaller.
_CI = bool(os.environ.get("CI"))
EngineMachine.TestCase.settings = settings(
    max_examples=200 if _CI else 40,
    stateful_step_count=100 if _CI else 50,
    deadline=None,
)
test_engine_conserves_money_and_leaves_no_account_liquidatable = EngineMachine.TestCase


def test_wick_scenario_conserves_money_including_the_scenario_trader() -> None:
    engine = CountingEngine(SimConfig(seed=4), VirtualClock())
    traders = [engine.create_account(D(5000)) for _ in range(2)]
    engine.set_margin_mode(traders[0].account_id, BTC, MarginMode.ISOLATED)
    engine.set_leverage(traders[0].account_id, BTC, 125)
    engine.place_order(traders[0].account_id, market(BTC, Side.BUY, "0.5"))
    engine.set_leverage(traders[1].account_id, BTC, 100)
    engine.place_order(traders[1].account_id, market(BTC, Side.SELL, "0.6"))
    apply_scenario(engine, scenarios.load("wick"))
    for _ in range(45):
        engine.clock.advance(1000)
        assert abs(drift(engine, D(10_000))) <= bound(engine)
        assert_no_account_left_liquidatable(engine)
    assert SCENARIO_TRADER in engine.accounts
    assert engine.closes > 0


@pytest.mark.parametrize("leverage", [1, 20, 100])
@pytest.mark.parametrize("kind", ["market", "ioc-300bp", "gtc-300bp"])
@pytest.mark.parametrize("side", list(Side))
@pytest.mark.parametrize("mode", list(MarginMode))
@pytest.mark.parametrize("depth", ["normal", "thin"])
def test_the_largest_accepted_entry_never_leaves_the_cross_wallet_negative(
    leverage: int, kind: str, side: Side, mode: MarginMode, depth: str
) -> None:
    # A flat account asks for everything its balance allows, backing off 1 % per -2019 until
    # accepted: whatever the fills, fee and isolated margin must fit in the cross wallet.
    engine = CountingEngine(SimConfig(seed=6), VirtualClock())
    engine.market_maker.set_profile(BTC, depth)
    acct = engine.create_account(D(2000))
    if mode is MarginMode.ISOLATED:
        engine.set_margin_mode(acct.account_id, BTC, mode)
    engine.set_leverage(acct.account_id, BTC, leverage)
    inst = engine.instruments[BTC]
    mark = engine.mark(BTC)
    through = D("1.03") if side is Side.BUY else D("0.97")
    price = quantize_down(mark if kind == "market" else mark * through, inst.tick_size)
    tif = TimeInForce.IOC if kind.startswith("ioc") else TimeInForce.GTC
    accepted, codes = None, set()
    for pct in range(100, 50, -1):
        qty = str(quantize_down(D(2000) * leverage * pct / 100 / price, inst.step_size))
        req = market(BTC, side, qty) if kind == "market" else limit(BTC, side, qty, price, tif)
        try:
            accepted = engine.place_order(acct.account_id, req)
        except Rejected as exc:
            codes.add(exc.code)
            continue
        break
    assert codes <= {-2019}
    assert accepted is not None
    assert acct.cross_wallet >= 0
    assert abs(drift(engine, D(2000))) <= bound(engine)
    assert_no_account_left_liquidatable(engine)
