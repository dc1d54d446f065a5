"""The cascade lab's side of the engine: liquidation-engine latency and population views.

**Latency** (perp-mechanics.md §14 "Mark inertia", "Throttles"): a real liquidation engine does
not act in the instant an account crosses maintenance; the market keeps moving until its order
executes. :class:`LiquidationLatency` holds each crossing (an isolated position, or a whole cross
bucket) for ``latency_ms`` of virtual time after the scan that first saw it: the liquidator plans
and executes the step only at a scan at or after that moment, re-evaluated on the market of that
moment. A due time on an update boundary is served by that update's scan (after the update has
published its marks); between updates a wake-up is scheduled on the engine's clock, so the step
happens exactly then, on the marks last published. A crossing that recovers before it is due is
forgotten; one that is due stays due until it recovers, so the steps that follow the first
(re-evaluation between steps, §7) are not delayed again. 0 (the default) is the engine without
latency: nothing is held and nothing is stored. Deterministic: only the virtual clock is read.

The ``latency-ignored`` defect accepts the setting and never applies it.

**Population views**: every account's wallets and positions as the venue publishes them
(``READ_POPULATION``), for the cascade oracle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.sim.engine.views import position_view
from harness.cascade import AccountExposure
from harness.errors import ConfigError

if TYPE_CHECKING:
    from adapters.sim.engine.exchange import Engine
    from adapters.sim.engine.liquidation_exec import Step

__all__ = ["MAX_LATENCY_MS", "LiquidationLatency", "population"]

MAX_LATENCY_MS = 3_600_000  # an hour of virtual time: beyond that it is an outage, not latency


class LiquidationLatency:
    """Holds liquidation steps for ``latency_ms`` after their account first crossed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.latency_ms = 0
        # (account id, symbol or "" for the cross bucket) -> virtual time it is due
        self._due: dict[tuple[str, str], int] = {}

    def set(self, ms: int) -> None:
        """Set the latency for crossings seen from now on (those pending keep their due time)."""
        if isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= MAX_LATENCY_MS:
            msg = f"liquidation latency {ms!r} ms must be an integer in [0, {MAX_LATENCY_MS}]"
            raise ConfigError(msg)
        self.latency_ms = ms

    def admit(self, steps: list[Step]) -> list[Step]:
        """The steps due now, out of every crossing one scan found (all of them without latency)."""
        if not self._due and (self.latency_ms == 0 or self.engine.has("latency-ignored")):
            return steps
        now = self.engine.clock.now_ms()
        crossing = {
            (s.account.account_id, s.position.symbol if s.isolated else ""): s for s in steps
        }
        for key in [k for k in self._due if k not in crossing]:
            del self._due[key]  # recovered before (or after) its step: a new crossing waits again
        admitted = []
        for key, step in crossing.items():
            due = self._due.get(key)
            if due is None:
                due = now + (0 if self.engine.has("latency-ignored") else self.latency_ms)
                self._due[key] = due
                if due > now and due % self.engine.config.update_interval_ms:
                    # Between updates: wake the engine then. On an update boundary the update
                    # itself scans, after publishing that moment's marks (a wake-up event
                    # there would run first, on the marks of the update before).
                    self.engine.schedule(due, _wake)
            if due <= now:
                admitted.append(step)
        return admitted

    @property
    def idle(self) -> bool:
        """No crossing is held (nothing is stored between scans)."""
        return not self._due

    @property
    def pending(self) -> int:
        """Crossings seen and not yet due."""
        now = self.engine.clock.now_ms()
        return sum(1 for due in self._due.values() if due > now)


def _wake() -> None:
    """A scheduled event that only makes the engine settle (and so scan) at its time."""


def population(engine: Engine, name: str | None = None) -> list[AccountExposure]:
    """The accounts of scenario population ``name`` (creation order), or every account holding
    a position when ``name`` is None (the market maker and insurance fund included, exempt).

    Raises:
        ConfigError: no scenario population of that name was loaded.
    """
    if name is None:
        ids = [a.account_id for a in engine.accounts.values() if a.open_positions()]
    else:
        found = engine.scenario_accounts.get(name)
        if found is None:
            known = ", ".join(sorted(engine.scenario_accounts)) or "none loaded"
            msg = f"unknown population {name!r}; loaded: {known}"
            raise ConfigError(msg)
        ids = list(found)
    out = []
    for account_id in ids:
        acct = engine.accounts[account_id]
        out.append(
            AccountExposure(
                account_id=account_id,
                label=acct.label,
                wallet_balance=acct.wallet_total(),
                cross_wallet_balance=acct.cross_wallet,
                positions=tuple(position_view(engine, acct, p) for p in acct.open_positions()),
                exempt=acct.exempt,
            )
        )
    return out
