"""Liquidation on mark: trigger, step sizing per variant, and the band of steps ahead.

Rules (perp-mechanics.md §5, §6, §7, §8, §9, §13):

* Trigger: margin balance <= maintenance margin at the **mark** (non-strict), per isolated
  position, or for the whole cross bucket. The trader's open orders are cancelled (on the symbol
  for isolated, all for cross) before the step.
* Step size by the symbol's :class:`~harness.model.LiquidationPolicy`:
  ``tier-step-down`` closes just enough for the remainder to land in the highest lower tier that
  restores margin (a position in the lowest tier is closed whole); ``fraction`` sends
  ``slice_fraction`` of positions above ``slice_min_notional`` and, within ``cooldown_ms`` after a
  slice, the whole position; below ``backstop_ratio`` x maintenance the insurance fund takes the
  position over at once; ``full`` closes everything. A cross account reduces its largest position
  first; the scan repeats until every account is above maintenance (re-evaluation between steps).
* Execution (:mod:`adapters.sim.engine.liquidation_exec`): one IOC per symbol and side for all
  steps of the same scan, limited at the bankruptcy price, shared pro rata at one average price
  (identical accounts get identical outcomes, whatever their ids); the rest is taken over by the
  insurance fund at the bankruptcy price, or auto-deleveraged when the fund cannot.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_UP, Decimal
from typing import TYPE_CHECKING

from adapters.sim.engine.accounts import (
    AccountState,
    PositionState,
    liquidation_price,
    maint_margin,
)
from adapters.sim.engine.liquidation_exec import AdlRecord, Executor, LiquidationRecord, Step
from adapters.sim.engine.partial import largest_safe_remainder, tier_index
from harness.model import (
    BandStep,
    Bracket,
    LiquidationBand,
    LiquidationPolicy,
    LiquidationVariant,
    MarginMode,
    quantize_down,
    quantize_up,
)

if TYPE_CHECKING:
    from adapters.sim.engine.exchange import Engine

__all__ = ["AdlRecord", "LiquidationEngine", "LiquidationRecord"]

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class _Sizing:
    """What the planner needs of a position to size a step at price ``price``."""

    qty: Decimal  # absolute
    price: Decimal
    equity: Decimal  # isolated: the position's equity; cross: the account's cross equity
    others_mm: Decimal  # cross only: the other positions' maintenance
    isolated: bool


class LiquidationEngine:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.executor = Executor(engine)
        self._last_slice_ms: dict[str, int] = {}
        # What the trigger read at the last scan that found nothing (None: rescan).
        self._clean: tuple[object, ...] | None = None

    def _inputs(self) -> tuple[object, ...]:
        """What the trigger rule reads, by version or identity: wallets and positions (the
        index's watch), the tier tables, the accounts and the marks (a published mark is a new
        object; the tuple holds them, so an identity cannot be reused)."""
        engine = self.engine
        index = engine.trigger_index
        instruments = engine.instruments
        return (
            index.watch.version,
            instruments,
            getattr(instruments, "version", None),
            len(engine.accounts) + len(index.pending),
            tuple([state.mark for state in engine.prices.values()]),
        )

    def _unchanged(self) -> bool:
        clean = self._clean
        if clean is None:
            return False
        engine = self.engine
        index = engine.trigger_index
        instruments = engine.instruments
        if (
            clean[0] != index.watch.version
            or clean[1] is not instruments
            or clean[2] is None
            or clean[2] != instruments.version
            or clean[3] != len(engine.accounts) + len(index.pending)
        ):
            return False
        marks = clean[4]
        assert isinstance(marks, tuple)  # noqa: S101 - built by _inputs
        prices = engine.prices
        if len(prices) != len(marks):
            return False
        for state, mark in zip(prices.values(), marks, strict=True):  # noqa: SIM110 - hot path
            if state.mark is not mark:
                return False
        return True

    def clean(self) -> bool:
        """Whether :meth:`scan` would return 0 at once: the index is on and nothing the trigger
        reads changed since a scan found nothing (the request paths' settle skips the scan)."""
        return self._clean is not None and self.engine.trigger_index.active and self._unchanged()

    @property
    def records(self) -> list[LiquidationRecord]:
        return self.executor.records

    @property
    def adl_records(self) -> list[AdlRecord]:
        return self.executor.adl_records

    def policy(self, symbol: str) -> LiquidationPolicy:
        return self.engine.instruments[symbol].liquidation

    def _trigger_price(self, symbol: str) -> Decimal:
        state = self.engine.prices[symbol]
        return state.last_price if self.engine.has("liquidate-on-last") else state.mark

    # ------------------------------------------------------------------ scan
    def scan(self) -> int:
        """One liquidation step for every account at or below maintenance; returns how many.

        Accounts are evaluated in account-table order: all of them (:meth:`linear_steps`), or only
        the candidates of the trigger index (engine/liqindex.py), which yields the same steps.
        """
        engine = self.engine
        index = engine.trigger_index
        if index.active:
            if self._unchanged():
                return 0  # nothing the trigger reads changed since a scan found nothing
            candidates = index.candidates()
            steps = self.evaluate(candidates)
            # Candidates left standing get bands around today's marks (a bucket is re-keyed
            # anyway when a step changes it).
            index.rebase(candidates)
        else:
            steps = self.linear_steps()
        # Liquidation-engine latency (engine/cascade.py): only crossings that are due act now.
        steps = engine.liquidation_latency.admit(steps)
        if not steps:
            latency = engine.liquidation_latency
            self._clean = self._inputs() if index.active and latency.idle else None
            return 0
        self._clean = None
        for step in steps:
            engine.cancel_all(
                step.account.account_id, step.position.symbol if step.isolated else None
            )
        self.executor.run(steps)
        return len(steps)

    def linear_steps(self) -> list[Step]:
        """The steps of a scan over every account (the reference the index must match)."""
        return self.evaluate(list(self.engine.accounts.values()))

    def evaluate(self, accounts: list[AccountState]) -> list[Step]:
        """The steps due for ``accounts`` (in that order), by the trigger rule of the module."""
        engine = self.engine
        # The maintenance-halved-in-trigger defect compares with half the maintenance margin.
        factor = Decimal("0.5") if engine.has("maintenance-halved-in-trigger") else Decimal(1)
        steps: list[Step] = []
        for acct in accounts:
            if acct.exempt:
                continue
            for pos in acct.open_positions():
                if pos.margin_mode is not MarginMode.ISOLATED:
                    continue
                price = self._trigger_price(pos.symbol)
                mm = maint_margin(engine.instruments[pos.symbol].brackets, abs(pos.qty) * price)
                equity = pos.isolated_wallet + pos.upnl(price)
                if equity <= factor * mm:
                    steps.append(self._plan(acct, pos, price, equity, mm, ZERO, isolated=True))
            cross = engine.ledger.cross_positions(acct)
            if not cross:
                continue
            equity = acct.cross_wallet
            mms: dict[str, Decimal] = {}
            for pos in cross:
                price = self._trigger_price(pos.symbol)
                equity += pos.upnl(price)
                brackets = engine.instruments[pos.symbol].brackets
                mms[pos.symbol] = maint_margin(brackets, abs(pos.qty) * price)
            total_mm = sum(mms.values(), ZERO)
            if engine.has("cascade-ignores-shared-collateral"):
                # The defect: each cross position is judged on the wallet and its own PnL only,
                # blind to what the account's other positions lose.
                crossed = any(
                    acct.cross_wallet + pos.upnl(self._trigger_price(pos.symbol))
                    <= factor * mms[pos.symbol]
                    for pos in cross
                )
            else:
                crossed = equity <= factor * total_mm
            if crossed:
                largest = max(
                    cross, key=lambda p: (abs(p.qty) * self._trigger_price(p.symbol), p.symbol)
                )
                price = self._trigger_price(largest.symbol)
                others = total_mm - mms[largest.symbol]
                steps.append(
                    self._plan(acct, largest, price, equity, total_mm, others, isolated=False)
                )
        return steps

    # ------------------------------------------------------------------ sizing
    def _plan(
        self,
        acct: AccountState,
        pos: PositionState,
        price: Decimal,
        equity: Decimal,
        mm: Decimal,
        others_mm: Decimal,
        *,
        isolated: bool,
    ) -> Step:
        engine = self.engine
        policy = self.policy(pos.symbol)
        qty = abs(pos.qty)
        now = engine.clock.now_ms()
        backstop = False
        if policy.variant is LiquidationVariant.FRACTION and equity < policy.backstop_ratio * mm:
            close, backstop = qty, True
        else:
            sizing_equity = equity
            if isolated and engine.has("sizing-ignores-added-margin"):
                initial = (qty * pos.entry / pos.leverage).quantize(engine.quantum, ROUND_UP)
                sizing_equity = initial + pos.upnl(price)
            close = self.step_size(
                acct, pos, policy, _Sizing(qty, price, sizing_equity, others_mm, isolated), now
            )
        return Step(
            account=acct,
            position=pos,
            qty=close,
            trigger=price,
            bankruptcy=self._bankruptcy_price(acct, pos, isolated),
            isolated=isolated,
            backstop=backstop,
        )

    def step_size(
        self,
        acct: AccountState,
        pos: PositionState,
        policy: LiquidationPolicy,
        sizing: _Sizing,
        now: int,
    ) -> Decimal:
        """How much the next step closes; a fraction slice starts the account's cooldown."""
        last = self._last_slice_ms.get(acct.account_id)
        cooling = last is not None and now - last < policy.cooldown_ms
        if self.engine.has("no-cooldown"):
            cooling = False
        close = self._size(pos.symbol, policy, sizing, cooling=cooling)
        if policy.variant is LiquidationVariant.FRACTION and close < sizing.qty:
            self._last_slice_ms[acct.account_id] = now
        return close

    def _size(
        self, symbol: str, policy: LiquidationPolicy, sizing: _Sizing, *, cooling: bool
    ) -> Decimal:
        """The step size by the symbol's policy (pure: no state is touched)."""
        engine = self.engine
        inst = engine.instruments[symbol]
        qty = sizing.qty
        if policy.variant is LiquidationVariant.FULL or engine.has("close-whole-position"):
            return qty
        if policy.variant is LiquidationVariant.FRACTION:
            if qty * sizing.price <= policy.slice_min_notional or cooling:
                return qty
            return min(quantize_up(qty * policy.slice_fraction, inst.step_size), qty)
        remainder = largest_safe_remainder(
            qty=qty,
            price=sizing.price,
            step=inst.step_size,
            brackets=inst.brackets,
            coefficients=_Coefficients(sizing, inst.liquidation_fee_rate or ZERO),
            lowest_first=engine.has("step-down-skips-tiers"),
        )
        return qty if remainder is None else qty - remainder

    def _bankruptcy_price(self, acct: AccountState, pos: PositionState, isolated: bool) -> Decimal:
        sign, qty = pos.sign, abs(pos.qty)
        if isolated:
            collateral = pos.isolated_wallet
        else:
            collateral = acct.cross_wallet + sum(
                (
                    other.upnl(self.engine.mark(other.symbol))
                    for other in self.engine.ledger.cross_positions(acct)
                    if other is not pos
                ),
                ZERO,
            )
        return pos.entry - collateral / (sign * qty)

    # ------------------------------------------------------------------ band
    def band(self, acct: AccountState, symbol: str) -> LiquidationBand | None:
        """The marks and steps from the first forced reduction to full closure (READ_BAND).

        Walks the position's future as the venue would liquidate it if the mark moved against
        it: each step at the price where equity meets maintenance for what remains, sized by the
        symbol's policy, filled at that mark, with the cooldown of the fraction variant assumed
        to have passed between steps. The other cross positions stay at their current marks.
        """
        pos = acct.positions.get(symbol)
        if pos is None or pos.qty == 0:
            return None
        engine = self.engine
        inst = engine.instruments[symbol]
        policy = self.policy(symbol)
        fee_rate = inst.liquidation_fee_rate or ZERO
        isolated = pos.margin_mode is MarginMode.ISOLATED
        sign = pos.sign
        remaining = abs(pos.qty)
        wallet = pos.isolated_wallet if isolated else acct.cross_wallet
        other_upnl = ZERO
        other_mm = ZERO
        if not isolated:
            for other in engine.ledger.cross_positions(acct):
                if other is not pos:
                    fig = engine.ledger.figures(other)
                    other_upnl += fig.upnl
                    other_mm += fig.maint_margin
        steps: list[BandStep] = []
        while remaining > 0 and len(steps) < 100:
            mark = liquidation_price(
                sign=sign,
                qty=remaining,
                entry=pos.entry,
                brackets=inst.brackets,
                wallet=wallet,
                other_upnl=other_upnl,
                other_mm=other_mm,
            )
            if mark is None:
                break
            equity = wallet + other_upnl + sign * remaining * (mark - pos.entry)
            sizing = _Sizing(remaining, mark, equity, other_mm, isolated)
            # A step due at a mark no further than the previous one comes at once, inside the
            # fraction variant's cooldown; one further away is assumed to come after it.
            cooling = bool(steps) and sign * (mark - steps[-1].mark) >= 0
            close = self._size(symbol, policy, sizing, cooling=cooling)
            after = remaining - close
            steps.append(
                BandStep(
                    mark=mark,
                    close_qty=close,
                    remaining_qty=after,
                    bracket_before=inst.brackets[
                        tier_index(inst.brackets, remaining * mark)
                    ].bracket,
                    bracket_after=(
                        inst.brackets[tier_index(inst.brackets, after * mark)].bracket
                        if after
                        else None
                    ),
                )
            )
            if isolated:
                wallet = quantize_down(wallet * after / remaining, engine.quantum)
            else:
                realized = sign * close * (mark - pos.entry)
                wallet += realized - close * mark * fee_rate
            remaining = after
        return LiquidationBand(symbol=symbol, quantity=pos.qty, steps=tuple(steps))


class _Coefficients:
    """``(alpha_j, beta_j)`` of the restore condition for tier ``j`` (engine/partial.py)."""

    __slots__ = ("_fee", "_s")

    def __init__(self, sizing: _Sizing, fee_rate: Decimal) -> None:
        self._s = sizing
        self._fee = fee_rate

    def __call__(self, bracket: Bracket) -> tuple[Decimal, Decimal]:
        s = self._s
        mmr = bracket.maint_margin_ratio
        if s.isolated:
            return s.equity / s.qty - s.price * mmr, bracket.cum
        alpha = s.price * (self._fee - mmr)
        beta = s.equity - s.others_mm - self._fee * s.qty * s.price + bracket.cum
        return alpha, beta
