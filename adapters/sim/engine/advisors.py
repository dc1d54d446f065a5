"""Advisors for the parameter controller (engine/params.py): pluggable, registered by name.

An advisor sees one symbol's inputs and the current parameters and proposes new values
(:class:`Advice`); it decides nothing. Whatever it answers goes through the controller's
deterministic guardrails, so an advisor may be a model, a script or an adversary.

Registered advisors (``configure(symbol, advisor=NAME)``, ``POST /control/params``):

* ``default``: a fixed model-like scorer. For each parameter, ``u = signal / tighten_at`` and
  ``z = 4·(u − 1)``; the score ``s = (1 + z/(1 + |z|)) / 2`` lies in (0, 1) and is 0.5 at the
  threshold. It is rounded down to quarters, ``q = floor(4·s)/4``, and the proposal is
  ``base + q·(stress bound − base)`` on the parameter's tick (the stress bound is ``upper``
  for a parameter stress raises, ``lower`` otherwise). A calm market gives ``q = 0``: the
  published base value.
* ``nan``, ``infinity``, ``negative``: every parameter ``NaN``, ``Infinity``, ``−base``.
* ``extreme``: every parameter 1000 times beyond its base in the stress direction
  (``base × 1000`` or ``base / 1000``).
* ``flip-flop``: alternates, decision by decision, between the stress extreme and the opposite
  extreme.
* ``stale``: the default advisor's first answer, repeated forever with its first timestamp.
* ``reversed``: the default advisor's change mirrored about the current value (it relaxes under
  stress and tightens in calm).
* ``scripted``: the given list of outputs (parameter -> decimal, ``NaN``/``Infinity`` allowed),
  one per decision, then nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Protocol

from harness.errors import ConfigError
from harness.params import PARAM_NAMES, ParamSpec

__all__ = [
    "ADVISORS",
    "Advice",
    "AdviceRequest",
    "Advisor",
    "make_advisor",
    "register_advisor",
]

EXTREME = Decimal(1000)


@dataclass(frozen=True, slots=True, kw_only=True)
class AdviceRequest:
    """What an advisor is shown at one decision."""

    symbol: str
    now_ms: int
    inputs: Mapping[str, Decimal]
    current: Mapping[str, Decimal]
    specs: Mapping[str, ParamSpec]


@dataclass(frozen=True, slots=True, kw_only=True)
class Advice:
    """Proposed values (any subset of the parameters) and the time the advice was formed."""

    values: Mapping[str, Decimal]
    as_of_ms: int


class Advisor(Protocol):
    """Proposes parameters; the controller's guardrails decide."""

    @property
    def name(self) -> str: ...

    def advise(self, request: AdviceRequest) -> Advice: ...


AdvisorFactory = Callable[[Sequence[Mapping[str, Decimal]]], Advisor]


def _score_target(spec: ParamSpec, signal: Decimal) -> Decimal:
    """The default scorer's proposal for one parameter (module docstring)."""
    z = 4 * (signal / spec.tighten_at - 1)
    score = (1 + z / (1 + abs(z))) / 2
    quarters = (score * 4).to_integral_value(rounding=ROUND_FLOOR) / 4
    bound = spec.upper if spec.direction > 0 else spec.lower
    target = spec.base + quarters * (bound - spec.base)
    return target.quantize(spec.tick, rounding=ROUND_HALF_EVEN)


@dataclass(slots=True)
class ScoringAdvisor:
    """``default``: the deterministic scorer."""

    name: str = "default"

    def advise(self, request: AdviceRequest) -> Advice:
        values = {
            name: _score_target(spec, request.inputs[spec.signal])
            for name, spec in request.specs.items()
        }
        return Advice(values=values, as_of_ms=request.now_ms)


@dataclass(slots=True)
class ConstantAdvisor:
    """``nan``/``infinity``/``negative``/``extreme``: one fixed kind of bad output."""

    name: str
    make: Callable[[ParamSpec], Decimal]

    def advise(self, request: AdviceRequest) -> Advice:
        values = {name: self.make(spec) for name, spec in request.specs.items()}
        return Advice(values=values, as_of_ms=request.now_ms)


def _stress_extreme(spec: ParamSpec) -> Decimal:
    return spec.base * EXTREME if spec.direction > 0 else spec.base / EXTREME


def _calm_extreme(spec: ParamSpec) -> Decimal:
    return spec.base / EXTREME if spec.direction > 0 else spec.base * EXTREME


@dataclass(slots=True)
class FlipFlopAdvisor:
    """``flip-flop``: stress extreme, calm extreme, stress extreme, ..."""

    name: str = "flip-flop"
    calls: int = 0

    def advise(self, request: AdviceRequest) -> Advice:
        pick = _stress_extreme if self.calls % 2 == 0 else _calm_extreme
        self.calls += 1
        values = {name: pick(spec) for name, spec in request.specs.items()}
        return Advice(values=values, as_of_ms=request.now_ms)


@dataclass(slots=True)
class StaleAdvisor:
    """``stale``: the first default answer, forever, with its first timestamp."""

    name: str = "stale"
    first: Advice | None = None

    def advise(self, request: AdviceRequest) -> Advice:
        if self.first is None:
            self.first = ScoringAdvisor().advise(request)
        return self.first


@dataclass(slots=True)
class ReversedAdvisor:
    """``reversed``: the default change mirrored about the current value."""

    name: str = "reversed"

    def advise(self, request: AdviceRequest) -> Advice:
        target = ScoringAdvisor().advise(request).values
        values = {
            name: 2 * request.current[name] - target[name]
            for name in request.specs
            if name in request.current
        }
        return Advice(values=values, as_of_ms=request.now_ms)


@dataclass(slots=True)
class ScriptedAdvisor:
    """``scripted``: one given output per decision, then nothing."""

    script: tuple[Mapping[str, Decimal], ...]
    name: str = "scripted"
    position: int = 0
    _empty: Mapping[str, Decimal] = field(default_factory=dict)

    def advise(self, request: AdviceRequest) -> Advice:
        step = self.script[self.position] if self.position < len(self.script) else self._empty
        self.position += 1
        return Advice(values=dict(step), as_of_ms=request.now_ms)


def _no_script(name: str, factory: Callable[[], Advisor]) -> AdvisorFactory:
    def make(script: Sequence[Mapping[str, Decimal]]) -> Advisor:
        if script:
            msg = f"advisor {name!r} takes no script; use advisor 'scripted'"
            raise ConfigError(msg)
        return factory()

    return make


def _scripted(script: Sequence[Mapping[str, Decimal]]) -> Advisor:
    for i, step in enumerate(script):
        unknown = sorted(set(step) - set(PARAM_NAMES))
        if unknown:
            msg = (
                f"script step {i}: unknown parameter {unknown[0]!r}; "
                f"known: {', '.join(PARAM_NAMES)}"
            )
            raise ConfigError(msg)
    return ScriptedAdvisor(script=tuple(dict(step) for step in script))


ADVISORS: dict[str, AdvisorFactory] = {
    "default": _no_script("default", ScoringAdvisor),
    "nan": _no_script("nan", lambda: ConstantAdvisor("nan", lambda _s: Decimal("NaN"))),
    "infinity": _no_script(
        "infinity", lambda: ConstantAdvisor("infinity", lambda _s: Decimal("Infinity"))
    ),
    "negative": _no_script("negative", lambda: ConstantAdvisor("negative", lambda s: -s.base)),
    "extreme": _no_script("extreme", lambda: ConstantAdvisor("extreme", _stress_extreme)),
    "flip-flop": _no_script("flip-flop", FlipFlopAdvisor),
    "stale": _no_script("stale", StaleAdvisor),
    "reversed": _no_script("reversed", ReversedAdvisor),
    "scripted": _scripted,
}


def register_advisor(name: str, factory: AdvisorFactory) -> None:
    """Add an advisor under ``name`` (in process; the HTTP control API then offers it too)."""
    if not name or name in ADVISORS:
        msg = f"advisor name {name!r} is empty or taken; taken: {', '.join(sorted(ADVISORS))}"
        raise ConfigError(msg)
    ADVISORS[name] = factory


def make_advisor(name: str, script: Sequence[Mapping[str, Decimal]] = ()) -> Advisor:
    """A fresh advisor registered as ``name``.

    Raises:
        ConfigError: unknown name (the message lists the registered ones), or a script given to
            an advisor that takes none, or a script naming an unknown parameter.
    """
    factory = ADVISORS.get(name)
    if factory is None:
        msg = f"unknown advisor {name!r}; choose one of: {', '.join(sorted(ADVISORS))}"
        raise ConfigError(msg)
    return factory(script)
