"""Control of the in-process simulated market (:class:`SimControl`, the ``CONTROL_*``
capabilities): clock, price paths, depth, accounts, scenarios, faults and the cascade views.

The loopback HTTP twin is adapters/sim/server/control.py; :class:`~adapters.sim.venue.SimVenue`
exposes this one as ``venue.control``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from adapters.sim import scenarios
from adapters.sim.account import SimAccount, liquidation_event
from adapters.sim.engine.cascade import population
from adapters.sim.engine.scenario import apply_scenario
from harness.cascade import AccountExposure, AccountLiquidation
from harness.errors import ConfigError
from harness.model import PricePath
from harness.venue import Account, Faults, RateLimits, StreamFaults

if TYPE_CHECKING:
    from adapters.sim.venue import SimVenue

__all__ = ["SimControl"]


class SimControl:
    """Control of the simulated market (the ``CONTROL_*`` capabilities)."""

    def __init__(self, venue: SimVenue) -> None:
        self._venue = venue

    async def advance(self, ms: int) -> int:
        return self._venue.clock.advance(ms)

    async def set_price_path(self, symbol: str, path: PricePath) -> None:
        self._venue.engine.set_price_path(symbol, path)

    async def set_depth_profile(self, symbol: str, profile: str) -> None:
        self._venue.engine.instrument(symbol)
        self._venue.engine.market_maker.set_profile(symbol, profile)
        self._venue.engine.settle()

    async def create_account(self, wallet: Decimal, *, label: str = "") -> Account:
        state = self._venue.engine.create_account(wallet, label)
        return SimAccount(self._venue, state, own_seat=True)

    async def load_scenario(self, name: str) -> None:
        apply_scenario(self._venue.engine, scenarios.load(name))
        self._venue.engine.settle()

    def scenarios(self) -> list[str]:
        return scenarios.available()

    async def set_insurance_fund(self, balance: Decimal) -> None:
        if not balance.is_finite() or balance < 0:
            msg = f"insurance fund balance {balance} must be a non-negative number"
            raise ConfigError(msg)
        self._venue.engine.insurance.cross_wallet = balance

    async def schedule_funding_interval(self, symbol: str, hours: int, effective_ms: int) -> None:
        self._venue.engine.instrument(symbol)
        self._venue.engine.funding.schedule_interval(symbol, hours, effective_ms)

    async def set_quote_skew(self, symbol: str, bps: Decimal) -> None:
        self._venue.engine.instrument(symbol)
        self._venue.engine.market_maker.set_skew(symbol, bps)
        self._venue.engine.settle()

    async def set_rate_limits(self, limits: RateLimits) -> None:
        self._venue.engine.gateway.set_limits(limits)

    async def set_faults(self, faults: Faults) -> None:
        self._venue.engine.gateway.set_faults(faults)

    async def set_stream_faults(self, faults: StreamFaults) -> None:
        if faults.gap_symbol is not None:
            self._venue.engine.instrument(faults.gap_symbol)
        try:
            self._venue.engine.stream_faults.set(faults)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    async def configure_params(
        self,
        symbol: str,
        *,
        enabled: bool = True,
        advisor: str = "default",
        script: Sequence[Mapping[str, Decimal]] = (),
    ) -> None:
        params = self._venue.engine.params
        params.configure(symbol, enabled=enabled, advisor=advisor, script=script)

    async def set_param_signal(self, symbol: str, signal: str, value: Decimal | None) -> None:
        self._venue.engine.params.set_signal(symbol, signal, value)

    async def population(self, name: str | None = None) -> list[AccountExposure]:
        return population(self._venue.engine, name)

    async def account_liquidations(self, since_ms: int | None = None) -> list[AccountLiquidation]:
        return [
            AccountLiquidation(account_id=r.account_id, event=liquidation_event(r, r.account_id))
            for r in self._venue.engine.liquidator.records
            if since_ms is None or r.time_ms >= since_ms
        ]

    async def set_liquidation_latency(self, ms: int) -> None:
        self._venue.engine.liquidation_latency.set(ms)
