"""The parameter controller's guardrails and audit log (engine/params.py has the whole story).

:class:`Guardrails` runs one advisor output through the guardrails in order (``valid``,
``sign``, ``fresh``, ``trigger``, ``cooling``, ``bounds``, ``max_step``, ``lead``), announces
what passes and writes the audit entry; it is mixed into
:class:`~adapters.sim.engine.params.ParamController`, which sets the attributes annotated below.
``_Track`` and ``_Symbol`` are the controller's per-parameter and per-symbol state.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import TYPE_CHECKING

from adapters.sim.engine.advisors import Advisor
from adapters.sim.engine.param_interval import IntervalRule
from adapters.sim.engine.param_signals import VOL_WINDOW
from harness.model import Bracket
from harness.params import (
    AuditEntry,
    GuardrailVerdict,
    ParamChange,
    ParamSpec,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from adapters.sim.engine.exchange import Engine

__all__ = ["DECISION_INTERVAL_MS", "Guardrails"]

DECISION_INTERVAL_MS = 5_000


@dataclass(slots=True)
class _Track:
    spec: ParamSpec
    value: Decimal  # in force
    latest: Decimal  # the last announced (the value in force when nothing is pending)
    last_announced_ms: int | None = None
    last_as_of_ms: int | None = None
    # (output, current value, outcome) of the last logged decision that announced nothing.
    last_refusal: tuple[str, Decimal, str] | None = None
    pending: list[tuple[ParamChange, str | None, str | None]] = field(default_factory=list)


@dataclass(slots=True)
class _Symbol:
    symbol: str
    base_brackets: tuple[Bracket, ...]
    base_cap: Decimal
    base_floor: Decimal
    interval: IntervalRule
    tracks: dict[str, _Track]
    advisor: Advisor
    enabled: bool = False
    returns: deque[Decimal] = field(default_factory=lambda: deque(maxlen=VOL_WINDOW))
    last_index: Decimal | None = None
    overrides: dict[str, Decimal] = field(default_factory=dict)
    signals: dict[str, Decimal] = field(default_factory=dict)
    history: list[ParamChange] = field(default_factory=list)

    def values(self) -> dict[str, Decimal]:
        return {name: t.value for name, t in self.tracks.items()}


class Guardrails:
    """Guardrails and audit log; mixed into ``ParamController``, which sets these."""

    engine: Engine
    active: bool
    _log: list[AuditEntry]
    _busy: set[str]
    _apply_due: Callable[[_Symbol, int], None]
    _install: Callable[[_Symbol, Mapping[str, Decimal]], None]

    def _judge(
        self,
        sym: _Symbol,
        track: _Track,
        inputs: dict[str, Decimal],
        raw: Decimal | None,
        as_of: int | None,
        now: int,
        failure: str,
    ) -> None:
        """Run one output through the guardrails, announce what passes, log the decision."""
        engine = self.engine
        spec = track.spec
        current = track.latest
        verdicts: list[GuardrailVerdict] = []
        rejected: str | None = None

        def verdict(name: str, passed: bool, detail: str) -> None:
            nonlocal rejected
            if rejected is not None:
                detail = f"not evaluated: rejected by {rejected}"
                verdicts.append(GuardrailVerdict(name=name, passed=None, detail=detail))
                return
            verdicts.append(GuardrailVerdict(name=name, passed=passed, detail=detail))
            if not passed:
                rejected = name

        previous_as_of = track.last_as_of_ms
        track.last_as_of_ms = as_of
        finite = raw is not None and raw.is_finite()
        verdict("valid", finite, failure or ("a finite number" if finite else f"{raw} is not"))
        value = raw if raw is not None and finite else current
        verdict("sign", value > 0, f"{value} {'>' if value > 0 else '<='} 0")
        fresh = (
            as_of is not None
            and now - DECISION_INTERVAL_MS < as_of <= now
            and (previous_as_of is None or as_of > previous_as_of)
        )
        verdict("fresh", fresh, f"formed at {as_of}, previous {previous_as_of}, now {now}")
        signal = inputs[spec.signal]
        tightening = spec.tightens(current, value)
        verdict(
            "trigger",
            self._triggered(spec, tightening, signal),
            self._trigger_detail(spec, tightening, signal),
        )
        pending = bool(track.pending)
        since = None if track.last_announced_ms is None else now - track.last_announced_ms
        cooled = engine.has("no-cooldown-on-params") or (
            not pending and (since is None or since >= spec.cooling_ms)
        )
        cooling_detail = (
            "a change is pending"
            if pending
            else f"{since} ms since the last announcement, cooling {spec.cooling_ms} ms"
        )
        verdict("cooling", cooled, cooling_detail)
        applied: Decimal | None = None
        effective: int | None = None
        if engine.has("advisor-unclamped"):
            verdict("bounds", True, "not checked")
            verdict("max_step", True, "not checked")
            new = _on_tick(value, spec.tick)
        else:
            bounded = min(max(value, spec.lower), spec.upper)
            verdict("bounds", True, _clamp_detail(value, bounded, spec.lower, spec.upper))
            low, high = current - spec.max_step, current + spec.max_step
            stepped = min(max(bounded, low), high)
            verdict("max_step", True, _clamp_detail(bounded, stepped, low, high))
            new = _on_tick(stepped, spec.tick)
        if rejected is not None:
            verdict("lead", False, "")
            reason = f"rejected by {rejected}; {spec.name} stays at its last good value {current}"
        elif new == current:
            verdicts.append(GuardrailVerdict(name="lead", passed=None, detail="nothing to do"))
            reason = f"no change: the guardrails hold {spec.name} at {current}"
        else:
            effective = now if engine.has("no-announcement-lead") else now + spec.lead_ms
            lead_ok = effective - now >= spec.lead_ms
            verdict("lead", lead_ok, f"effective at {effective}, {effective - now} ms after now")
            applied = new
            reason = f"announced {spec.name} {current} -> {new}, effective at {effective}"
        # audit-log-wrong-applied: the log shows the output, not what the guardrails made of it.
        wrong = applied is not None and engine.has("audit-log-wrong-applied")
        logged = raw if wrong else applied
        refusal = None if applied is not None else (str(raw), current, rejected or "hold")
        if refusal is not None and refusal == track.last_refusal:
            return  # the same refusal as the last logged one: not repeated (module docstring)
        track.last_refusal = refusal
        self._log_entry(
            kind="decision",
            sym=sym,
            name=spec.name,
            inputs=inputs,
            raw=raw,
            as_of=as_of,
            current=current,
            verdicts=verdicts,
            applied=logged,
            effective=effective,
            reason=reason,
            now=now,
        )
        if applied is not None and effective is not None:
            change = ParamChange(
                symbol=sym.symbol,
                name=spec.name,
                old=current,
                new=applied,
                announced_ms=now,
                effective_ms=effective,
            )
            track.latest = applied
            track.last_announced_ms = now
            track.pending.append((change, sym.advisor.name, None if raw is None else str(raw)))
            self._busy.add(sym.symbol)
            self.active = True
            if engine.has("tightening-without-grace") and spec.tightens(current, applied):
                # The risk engine loads the new table at the announcement, not at its time.
                self._install(sym, {**sym.values(), spec.name: applied})
            if effective <= now:
                self._apply_due(sym, now)

    def _triggered(self, spec: ParamSpec, tightening: bool, signal: Decimal) -> bool:
        if self.engine.has("param-trigger-ignored"):
            return True
        if self.engine.has("param-trigger-strict"):  # > and < where the rule says >= and <=
            return signal > spec.tighten_at if tightening else signal < spec.relax_at
        if tightening:
            return signal >= spec.tighten_at
        if self.engine.has("no-hysteresis"):
            return signal < spec.tighten_at
        return signal <= spec.relax_at

    def _trigger_detail(self, spec: ParamSpec, tightening: bool, signal: Decimal) -> str:
        if tightening:
            return f"tightening: {spec.signal} {signal}, needs >= {spec.tighten_at}"
        threshold = spec.tighten_at if self.engine.has("no-hysteresis") else spec.relax_at
        comparison = "<" if self.engine.has("no-hysteresis") else "<="
        return f"relaxing: {spec.signal} {signal}, needs {comparison} {threshold}"

    # ------------------------------------------------------------------ helpers
    def _log_entry(
        self,
        *,
        kind: str,
        sym: _Symbol,
        name: str,
        inputs: Mapping[str, Decimal],
        raw: Decimal | None,
        as_of: int | None,
        current: Decimal,
        verdicts: list[GuardrailVerdict],
        applied: Decimal | None,
        effective: int | None,
        reason: str,
        now: int,
        advisor: str | None = None,
    ) -> None:
        if self.engine.has("audit-log-omits-verdicts"):
            verdicts = [v for v in verdicts if v.passed is False]
        self._log.append(
            AuditEntry(
                seq=len(self._log),
                time_ms=now,
                kind=kind,
                symbol=sym.symbol,
                param=name,
                inputs=dict(inputs),
                advisor=advisor if kind != "decision" else sym.advisor.name,
                proposed=None if raw is None else str(raw),
                as_of_ms=as_of,
                current=current,
                verdicts=tuple(verdicts),
                applied=applied,
                effective_ms=effective,
                reason=reason,
            )
        )


def _clamp_detail(value: Decimal, result: Decimal, low: Decimal, high: Decimal) -> str:
    if result == value:
        return f"{value} within [{low}, {high}]"
    return f"{value} clamped to {result} in [{low}, {high}]"


def _on_tick(value: Decimal, tick: Decimal) -> Decimal:
    """``value`` on the tick grid (half-even); unchanged when it is too large to quantize."""
    try:
        return value.quantize(tick, rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        return value
