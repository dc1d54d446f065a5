"""Drive and observe a venue's dynamic parameters (the PARAM checks' toolkit).

Venue-neutral: only :class:`~harness.venue.Venue`, :class:`~harness.venue.VenueControl` and
:class:`~harness.params.ParamSource`. Signals are set relative to each parameter's published
thresholds, so the checks do not depend on a venue's constants.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from harness.params import (
    PARAM_NAMES,
    AuditEntry,
    ParamChange,
    ParamSource,
    ParamSpec,
    ParamState,
    param_source,
    published_value,
)
from harness.venue import Capability, Venue, VenueControl

__all__ = [
    "CALM",
    "NEEDS",
    "STRESSED",
    "ParamProbe",
    "changes_since",
    "changes_table",
    "decision_of",
    "signal_levels",
]

#: What every PARAM check needs.
NEEDS = frozenset(
    {
        Capability.READ_PARAMS,
        Capability.CONTROL_PARAMS,
        Capability.CONTROL_CLOCK,
        Capability.READ_BRACKETS,
        Capability.READ_FUNDING,
    }
)
STRESSED = Decimal(2)  # signals at twice their tightening threshold: every trigger holds
CALM = Decimal(0)  # signals at zero: every relaxing trigger holds


def signal_levels(specs: Mapping[str, ParamSpec], factor: Decimal) -> dict[str, Decimal]:
    """Each signal the specs use at ``factor × tighten_at`` (of the first spec reading it)."""
    out: dict[str, Decimal] = {}
    for name in PARAM_NAMES:
        spec = specs.get(name)
        if spec is not None and spec.signal not in out:
            out[spec.signal] = spec.tighten_at * factor
    return out


def changes_since(state: ParamState, since_ms: int, name: str | None = None) -> list[ParamChange]:
    """Changes applied or pending, announced at or after ``since_ms``, in announcement order."""
    found = [
        c
        for c in (*state.history, *state.pending)
        if c.announced_ms >= since_ms and name in (None, c.name)
    ]
    order = {name: i for i, name in enumerate(PARAM_NAMES)}
    return sorted(
        found, key=lambda c: (c.announced_ms, c.effective_ms, order.get(c.name, len(order)))
    )


def decision_of(entries: Iterable[AuditEntry], change: ParamChange) -> AuditEntry | None:
    """The logged decision that announced ``change`` (same parameter, time and effect)."""
    return next(
        (
            e
            for e in entries
            if e.kind == "decision"
            and e.symbol == change.symbol
            and e.param == change.name
            and e.effective_ms == change.effective_ms
            and e.time_ms == change.announced_ms
        ),
        None,
    )


def changes_table(title: str, changes: Iterable[ParamChange], start: int) -> dict[str, object]:
    """Report evidence: the changes with their times in seconds from ``start``."""

    def t(ms: int) -> str:
        return format(Decimal(ms - start) / 1000, "f")

    return {
        "type": "table",
        "title": title,
        "columns": ["parameter", "from", "to", "announced (s)", "effective (s)"],
        "rows": [
            [c.name, str(c.old), str(c.new), t(c.announced_ms), t(c.effective_ms)] for c in changes
        ],
    }


@dataclass(slots=True)
class ParamProbe:
    """One symbol's parameters on a venue with ``READ_PARAMS`` and ``CONTROL_PARAMS``."""

    venue: Venue
    control: VenueControl
    symbol: str
    source: ParamSource

    @classmethod
    async def open(
        cls, venue: Venue, control: VenueControl, symbol: str | None = None
    ) -> ParamProbe:
        """On ``symbol`` (default: the venue's first symbol in name order).

        Raises:
            Missing: the venue publishes no dynamic parameters.
        """
        chosen = symbol or sorted(await venue.instruments())[0]
        return cls(venue=venue, control=control, symbol=chosen, source=param_source(venue))

    async def state(self) -> ParamState:
        return await self.source.param_state(self.symbol)

    async def specs(self) -> dict[str, ParamSpec]:
        return {n: s for n, s in (await self.state()).specs.items() if n in PARAM_NAMES}

    async def set_signals(self, levels: Mapping[str, Decimal]) -> None:
        for signal, value in sorted(levels.items()):
            await self.control.set_param_signal(self.symbol, signal, value)

    async def visible(self, names: Iterable[str] = PARAM_NAMES) -> dict[str, Decimal]:
        """Each parameter as the venue's ordinary reads show it (brackets, funding info)."""
        brackets = await self.venue.brackets(self.symbol)
        funding = await self.venue.funding_info(self.symbol)
        return {n: published_value(n, brackets, funding) for n in names}

    async def advance_to(self, time_ms: int) -> int:
        """Advance the venue's clock to ``time_ms`` (no-op when already there)."""
        now = self.venue.clock.now_ms()
        if time_ms > now:
            now = await self.control.advance(time_ms - now)
        return now
