"""The parameter controller: inputs → advisor → guardrails → announced, applied parameters.

perp-mechanics.md §10 (DESIGN.md guide point 6): margin and funding parameters may change
dynamically, an advisor (a model) may propose the changes, and deterministic guardrails make
sure that no single advisor output can flip the market's behaviour; every decision is audited.
Off by default: :meth:`ParamController.configure` switches it on per symbol; while nothing is
enabled or announced, the engine's per-update hook costs one attribute test.

Inputs (engine/param_signals.py): ``volatility``, ``open_interest``, ``concentration``,
``depth`` and ``oi_to_depth``, each of which a control call may override (``set_signal``).

Decision, at every update whose time is a multiple of ``DECISION_INTERVAL_MS``: the advisor's
output for each parameter (:data:`~harness.params.PARAM_NAMES`) that differs from the current
value (the value in force, or the last one announced) goes through the guardrails in order:

1. ``valid``: a finite number; 2. ``sign``: > 0;
3. ``fresh``: formed at most one decision interval ago and later than the previous output;
4. ``trigger`` (hysteresis): a tightening change needs ``signal >= tighten_at``, a relaxing one
   ``signal <= relax_at``;
5. ``cooling``: no change pending and ``cooling_ms`` since the last announcement;
6. ``bounds``: clamped into ``[lower, upper]``; 7. ``max_step``: clamped to ``current ±
   max_step``, then put on the tick grid;
8. ``lead``: announced now, effective ``lead_ms`` later.

A rejected output leaves the parameter at its last good value; verdicts after the first failure
are recorded as not evaluated. Announced changes take effect at the first update at or after
their effective time, before that update's liquidation scan (a position is judged by the old
requirement until then: the grace the announcement gives).

Funding interval (engine/param_interval.py): Binance's capped-settlement rule, while enabled.

Audit log: one :class:`~harness.params.AuditEntry` per decision, per change taking effect and
per interval-rule action, in order; its canonical lines replay byte-identically for a seed. A
decision that announces nothing and repeats the last logged one of its parameter (same output,
same current value, same failing guardrail or the same hold) is not logged again: an advisor
stuck on one answer would otherwise fill the log with one line per parameter every 5 s.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import TYPE_CHECKING

from adapters.sim.engine import param_interval
from adapters.sim.engine.advisors import Advice, AdviceRequest, Advisor, make_advisor
from adapters.sim.engine.param_apply import base_values, build_specs, install
from adapters.sim.engine.param_interval import HOUR_MS, IntervalRule
from adapters.sim.engine.param_signals import VOL_WINDOW, measure
from harness.errors import ConfigError
from harness.model import Bracket
from harness.params import (
    INTERVAL_PARAM,
    PARAM_NAMES,
    SIGNALS,
    AuditEntry,
    GuardrailVerdict,
    ParamChange,
    ParamSpec,
    ParamState,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from adapters.sim.engine.exchange import Engine

__all__ = ["DECISION_INTERVAL_MS", "ParamController"]

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


class ParamController:
    """Per-symbol dynamic parameters of one :class:`~adapters.sim.engine.exchange.Engine`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._symbols: dict[str, _Symbol] = {}
        for symbol, si in engine.config.instruments.items():
            brackets = engine.instruments[symbol].brackets
            specs = build_specs(symbol, base_values(brackets, si.funding_cap))
            self._symbols[symbol] = _Symbol(
                symbol=symbol,
                base_brackets=brackets,
                base_cap=si.funding_cap,
                base_floor=si.funding_floor,
                interval=IntervalRule(si.instrument.funding_interval_hours * HOUR_MS),
                tracks={n: _Track(spec=s, value=s.base, latest=s.base) for n, s in specs.items()},
                advisor=make_advisor("default"),
            )
        self._log: list[AuditEntry] = []
        self._busy: set[str] = set()  # symbols enabled or with a change pending
        self.active = False

    # ------------------------------------------------------------------ control
    def configure(
        self,
        symbol: str,
        *,
        enabled: bool = True,
        advisor: str = "default",
        script: Sequence[Mapping[str, Decimal]] = (),
    ) -> None:
        """Switch the controller on (or off) for ``symbol`` with the advisor named ``advisor``.

        Raises:
            ConfigError: unknown advisor, or a script it does not take (engine/advisors.py).
        """
        sym = self._symbol(symbol)
        sym.advisor = make_advisor(advisor, script)
        if enabled and not sym.enabled:
            sym.last_index = self.engine.prices[symbol].index
            sym.interval.start(self.engine, symbol)
        sym.enabled = enabled
        self._refresh(sym)

    def set_signal(self, symbol: str, signal: str, value: Decimal | None) -> None:
        """Fix input ``signal`` at ``value`` from the next decision on (``None``: computed)."""
        sym = self._symbol(symbol)
        if signal not in SIGNALS:
            msg = f"unknown signal {signal!r}; choose one of: {', '.join(SIGNALS)}"
            raise ConfigError(msg)
        if value is None:
            sym.overrides.pop(signal, None)
            return
        if not value.is_finite() or value < 0:
            msg = f"signal {signal}={value} must be a finite number >= 0"
            raise ConfigError(msg)
        sym.overrides[signal] = value

    # ------------------------------------------------------------------ reads
    def state(self, symbol: str) -> ParamState:
        sym = self._symbol(symbol)
        values = sym.values()
        values[INTERVAL_PARAM] = Decimal(self.engine.prices[symbol].funding_interval_ms // HOUR_MS)
        return ParamState(
            symbol=symbol,
            enabled=sym.enabled,
            advisor=sym.advisor.name,
            decision_interval_ms=DECISION_INTERVAL_MS,
            values=values,
            specs={n: t.spec for n, t in sym.tracks.items()},
            pending=tuple(c for t in sym.tracks.values() for c, _, _ in t.pending),
            history=tuple(sym.history),
            signals=dict(sym.signals),
            overrides=dict(sym.overrides),
            interval_calm_rate=param_interval.CALM_RATE,
            interval_calm_run=param_interval.CALM_RUN,
            interval_calm_count=sym.interval.calm_count,
        )

    def audit(self, since_ms: int | None = None, symbol: str | None = None) -> list[AuditEntry]:
        """The audit log, oldest first (entries at or after ``since_ms``)."""
        return [
            e
            for e in self._log
            if (since_ms is None or e.time_ms >= since_ms) and symbol in (None, e.symbol)
        ]

    def audit_lines(self) -> list[str]:
        """The audit log as its canonical JSON lines."""
        return [e.line for e in self._log]

    # ------------------------------------------------------------------ the update hook
    def on_update(self, now: int) -> None:
        """Per engine update (only while :attr:`active`): effects due, inputs, a decision."""
        for symbol in sorted(self._busy):
            sym = self._symbols[symbol]
            self._apply_due(sym, now)
            if not sym.enabled:
                self._refresh(sym)
                continue
            index = self.engine.prices[symbol].index
            if sym.last_index:
                sym.returns.append((index - sym.last_index) / sym.last_index)
            sym.last_index = index
            self._interval_rule(sym, now)
            if now % DECISION_INTERVAL_MS == 0:
                self._decide(sym, now)

    # ------------------------------------------------------------------ decisions
    def _decide(self, sym: _Symbol, now: int) -> None:
        inputs = measure(self.engine, sym.symbol, sym.returns, sym.overrides)
        sym.signals = inputs
        specs = {n: t.spec for n, t in sym.tracks.items()}
        request = AdviceRequest(
            symbol=sym.symbol,
            now_ms=now,
            inputs=inputs,
            current={n: t.latest for n, t in sym.tracks.items()},
            specs=specs,
        )
        try:
            advice: Advice | None = sym.advisor.advise(request)
            failure = ""
        except Exception as exc:  # an advisor is untrusted code: its failure is an invalid output
            advice, failure = None, f"the advisor failed: {type(exc).__name__}: {exc}"
        for name in PARAM_NAMES:
            track = sym.tracks[name]
            if advice is None:
                self._judge(sym, track, inputs, None, None, now, failure)
                continue
            raw = advice.values.get(name)
            if raw is None or (raw.is_finite() and raw == track.latest):
                continue  # no proposal, or the current value: nothing to decide
            self._judge(sym, track, inputs, raw, advice.as_of_ms, now, "")

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

    # ------------------------------------------------------------------ effects
    def _apply_due(self, sym: _Symbol, now: int) -> None:
        changed = False
        for track in sym.tracks.values():
            while track.pending and track.pending[0][0].effective_ms <= now:
                change, advisor, raw = track.pending.pop(0)
                track.value = change.new
                sym.history.append(change)
                changed = True
                self._log_entry(
                    kind="effective",
                    sym=sym,
                    name=change.name,
                    inputs=sym.signals,
                    raw=None if raw is None else Decimal(raw),
                    as_of=None,
                    current=change.old,
                    verdicts=[
                        GuardrailVerdict(
                            name="effective_time",
                            passed=True,
                            detail=f"now {now} >= effective {change.effective_ms}",
                        )
                    ],
                    applied=change.new,
                    effective=change.effective_ms,
                    reason=f"{change.name} {change.old} -> {change.new} in force",
                    now=now,
                    advisor=advisor,
                )
        if changed:
            self._install(sym, sym.values())

    def _install(self, sym: _Symbol, values: Mapping[str, Decimal]) -> None:
        install(self.engine, sym.symbol, sym.base_brackets, sym.base_cap, sym.base_floor, values)

    def _interval_rule(self, sym: _Symbol, now: int) -> None:
        """Binance's funding-interval rule after this update's settlement, logged."""
        action = sym.interval.check(self.engine, sym.symbol, now)
        if action is None:
            return
        old = Decimal(action.old_hours)
        new = Decimal(action.new_ms // HOUR_MS)
        if action.blocked:
            applied, effective = None, None
            reason = "a manually announced interval change is pending; the rule waits"
        else:
            sym.interval.apply(self.engine, sym.symbol, action)
            sym.history.append(
                ParamChange(
                    symbol=sym.symbol,
                    name=INTERVAL_PARAM,
                    old=old,
                    new=new,
                    announced_ms=now,
                    effective_ms=now,
                )
            )
            applied, effective = new, now
            reason = f"funding every {new} h from now; next settlement at {action.next_ms}"
        self._log_entry(
            kind="interval",
            sym=sym,
            name=INTERVAL_PARAM,
            inputs={**sym.signals, **action.inputs},
            raw=None,
            as_of=None,
            current=old,
            verdicts=list(action.verdicts),
            applied=applied,
            effective=effective,
            reason=reason,
            now=now,
        )

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

    def _symbol(self, symbol: str) -> _Symbol:
        self.engine.instrument(symbol)  # Rejected -1121 for an unknown symbol
        return self._symbols[symbol]

    def _refresh(self, sym: _Symbol) -> None:
        busy = sym.enabled or any(t.pending for t in sym.tracks.values())
        if busy:
            self._busy.add(sym.symbol)
        else:
            self._busy.discard(sym.symbol)
        self.active = bool(self._busy)


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
