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

The guardrails and the audit log are mixed in from engine/param_guardrails.py.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from adapters.sim.engine import param_interval
from adapters.sim.engine.advisors import Advice, AdviceRequest, make_advisor
from adapters.sim.engine.param_apply import base_values, build_specs, install
from adapters.sim.engine.param_guardrails import DECISION_INTERVAL_MS, Guardrails, _Symbol, _Track
from adapters.sim.engine.param_interval import HOUR_MS, IntervalRule
from adapters.sim.engine.param_signals import measure
from harness.errors import ConfigError
from harness.params import (
    INTERVAL_PARAM,
    PARAM_NAMES,
    SIGNALS,
    AuditEntry,
    GuardrailVerdict,
    ParamChange,
    ParamState,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from adapters.sim.engine.exchange import Engine

__all__ = ["DECISION_INTERVAL_MS", "ParamController"]


class ParamController(Guardrails):
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
