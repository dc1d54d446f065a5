"""Binance's funding-interval rule as a guarded trigger (perp-mechanics.md §10).

Binance 2025-05-02: when a USDⓈ-M perpetual's funding settlement *at settlement time* reaches
the cap or floor, it settles hourly from the next hour. Revert (announcement of 2026-01-02):
after :data:`CALM_RUN` consecutive settlements with ``|F| <= CALM_RATE`` the symbol returns to
its base interval, its next settlement on the base grid. The asymmetry (one capped settlement to
switch, a long calm run to revert) is the hysteresis that keeps the interval from flapping. The
rule waits while a manually announced interval change is pending. The parameter controller
(engine/params.py) runs it at every update of an enabled symbol and logs what it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from harness.params import GuardrailVerdict

if TYPE_CHECKING:
    from adapters.sim.engine.exchange import Engine

__all__ = ["CALM_RATE", "CALM_RUN", "HOUR_MS", "IntervalAction", "IntervalRule"]

CALM_RATE = Decimal("0.00025")
CALM_RUN = 16
HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True, kw_only=True)
class IntervalAction:
    """What the rule wants at one settlement; ``blocked`` when a manual change is pending."""

    old_hours: int
    new_ms: int
    next_ms: int
    verdicts: tuple[GuardrailVerdict, ...]
    inputs: dict[str, Decimal]
    blocked: bool


@dataclass(slots=True)
class IntervalRule:
    """One symbol's rule state: the settlement last seen and the calm run so far."""

    base_interval_ms: int
    seen_next_funding_ms: int = 0
    calm_count: int = 0
    switched: bool = False

    def start(self, engine: Engine, symbol: str) -> None:
        self.seen_next_funding_ms = engine.prices[symbol].next_funding_ms

    def check(self, engine: Engine, symbol: str, now: int) -> IntervalAction | None:
        """After this update's settlement (if any): the switch or revert due, else ``None``."""
        state = engine.prices[symbol]
        if state.next_funding_ms == self.seen_next_funding_ms:
            return None
        self.seen_next_funding_ms = state.next_funding_ms
        info = engine.funding.info(symbol)
        rate = state.last_funding_rate
        self.calm_count = self.calm_count + 1 if abs(rate) <= CALM_RATE else 0
        run = 1 if engine.has("no-hysteresis") else CALM_RUN
        if (rate >= info.cap or rate <= info.floor) and state.funding_interval_ms > HOUR_MS:
            new_ms, next_ms = HOUR_MS, now + HOUR_MS
            trigger = GuardrailVerdict(
                name="trigger", passed=True, detail=f"settled {rate} at the cap/floor {info.cap}"
            )
        elif (
            self.switched
            and self.calm_count >= run
            and state.funding_interval_ms != self.base_interval_ms
        ):
            new_ms = self.base_interval_ms
            next_ms = (now // new_ms + 1) * new_ms
            trigger = GuardrailVerdict(
                name="calm_run",
                passed=True,
                detail=f"{self.calm_count} settlements with |F| <= {CALM_RATE}, needs {run}",
            )
        else:
            return None
        manual = info.pending_interval_hours is not None
        detail = "a manual change is pending" if manual else "no manual change pending"
        return IntervalAction(
            old_hours=state.funding_interval_ms // HOUR_MS,
            new_ms=new_ms,
            next_ms=next_ms,
            verdicts=(trigger, GuardrailVerdict(name="manual", passed=not manual, detail=detail)),
            inputs={
                "settlement_rate": rate,
                "cap": info.cap,
                "floor": info.floor,
                "calm_count": Decimal(self.calm_count),
            },
            blocked=manual,
        )

    def apply(self, engine: Engine, symbol: str, action: IntervalAction) -> None:
        """Switch the schedule: the new interval now, the next settlement at ``next_ms``."""
        state = engine.prices[symbol]
        state.funding_interval_ms = action.new_ms
        state.next_funding_ms = action.next_ms
        self.seen_next_funding_ms = action.next_ms
        self.switched = action.new_ms != self.base_interval_ms
        self.calm_count = 0
