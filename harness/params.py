"""Dynamic risk parameters as a venue publishes them: specs, announcements, the audit log.

perp-mechanics.md §10: margin and funding parameters that change while positions are open must
change only on their trigger, after an announcement, no faster than a cooling period, without
oscillating, and auditably. A venue with ``READ_PARAMS`` publishes, per symbol, each dynamic
parameter's guardrail constants (:class:`ParamSpec`), the changes it announced and applied
(:class:`ParamChange`) and an append-only audit log (:class:`AuditEntry`, one JSON line per
decision); with ``CONTROL_PARAMS`` a check can switch the controller on, plug an advisor by name
and override the signals it reads.

The parameters and where a venue shows them (:func:`published_value`):

* ``maint_margin_rate``: the first bracket's maintenance-margin rate (every tier's rate scales
  with it);
* ``max_leverage``: the first bracket's initial leverage (every tier's leverage scales with it);
* ``max_notional``: the first bracket's notional cap (every floor and cap scales with it);
* ``funding_cap``: the funding-rate cap per settlement (the floor moves with it);
* ``funding_interval_hours``: the funding interval (Binance's capped-settlement rule, §10).

The audit log's line format is canonical (:func:`canonical_json`: keys sorted, no spaces,
decimals as strings), so replaying the same seed must give byte-identical lines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from harness.errors import Missing, PerpcheckError
from harness.model import Bracket, FundingInfo
from harness.venue import Capability

__all__ = [
    "GUARDRAILS",
    "INTERVAL_PARAM",
    "PARAM_NAMES",
    "SIGNALS",
    "AuditEntry",
    "GuardrailVerdict",
    "ParamChange",
    "ParamSource",
    "ParamSpec",
    "ParamState",
    "canonical_json",
    "param_source",
    "published_value",
    "write_audit",
]

# The parameters an advisor may propose, in the order a decision treats them.
PARAM_NAMES = ("maint_margin_rate", "max_leverage", "max_notional", "funding_cap")
# The funding interval: changed only by its documented rule, never by an advisor.
INTERVAL_PARAM = "funding_interval_hours"
# The inputs a controller computes per symbol (``oi_to_depth`` is derived from the others).
SIGNALS = ("volatility", "open_interest", "concentration", "depth", "oi_to_depth")
# Every decision's verdicts, in the order they are evaluated.
GUARDRAILS = ("valid", "sign", "fresh", "trigger", "cooling", "bounds", "max_step", "lead")
KINDS = ("decision", "effective", "interval")


def canonical_json(obj: Any) -> str:
    """One JSON line with sorted keys and no spaces: the same object gives the same bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _dec(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        msg = f"{name}={value!r} must be a decimal string"
        raise ValueError(msg)
    try:
        return Decimal(value)
    except InvalidOperation:
        msg = f"{name}={value!r} is not a decimal"
        raise ValueError(msg) from None


def _opt_dec(value: Any, name: str) -> Decimal | None:
    return None if value is None else _dec(value, name)


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{name}={value!r} must be an integer"
        raise ValueError(msg)
    return value


def _opt_int(value: Any, name: str) -> int | None:
    return None if value is None else _int(value, name)


def _opt_str(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        msg = f"{name}={value!r} must be a string or null"
        raise ValueError(msg)
    return value


def _decimals(raw: Any, name: str) -> dict[str, Decimal]:
    if not isinstance(raw, dict):
        msg = f"{name} must be an object of decimal strings"
        raise ValueError(msg)
    return {str(k): _dec(v, f"{name}.{k}") for k, v in raw.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamSpec:
    """One dynamic parameter's published guardrail constants.

    ``direction`` is +1 when stress raises the parameter (a higher maintenance rate, a wider
    funding cap) and -1 when stress lowers it (lower max leverage, lower notional caps); a
    change in that direction *tightens*, the other way *relaxes*. Tightening needs
    ``signal >= tighten_at``, relaxing ``signal <= relax_at`` (the hysteresis band between
    them holds the value). Values stay in ``[lower, upper]`` on the ``tick`` grid; one change
    moves at most ``max_step``; a change is announced ``lead_ms`` before it takes effect, and
    the next one may be announced ``cooling_ms`` after it at the earliest.
    """

    symbol: str
    name: str
    base: Decimal
    lower: Decimal
    upper: Decimal
    max_step: Decimal
    tick: Decimal
    direction: int
    signal: str
    tighten_at: Decimal
    relax_at: Decimal
    cooling_ms: int
    lead_ms: int

    def __post_init__(self) -> None:
        if self.direction not in (1, -1):
            msg = f"{self.name}: {self.direction=} must be +1 or -1"
            raise ValueError(msg)
        if not 0 < self.lower <= self.base <= self.upper:
            msg = f"{self.name}: need 0 < {self.lower=} <= {self.base=} <= {self.upper=}"
            raise ValueError(msg)
        if not (self.max_step > 0 and self.tick > 0):
            msg = f"{self.name}: {self.max_step=} and {self.tick=} must be > 0"
            raise ValueError(msg)
        if not self.relax_at < self.tighten_at:
            msg = f"{self.name}: {self.relax_at=} must be < {self.tighten_at=}"
            raise ValueError(msg)
        if self.signal not in SIGNALS:
            msg = f"{self.name}: signal {self.signal!r} must be one of {', '.join(SIGNALS)}"
            raise ValueError(msg)

    def tightens(self, current: Decimal, new: Decimal) -> bool:
        """Whether moving from ``current`` to ``new`` is in the stress direction."""
        return (new - current) * self.direction > 0

    def to_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "name": self.name,
            "base": str(self.base),
            "lower": str(self.lower),
            "upper": str(self.upper),
            "max_step": str(self.max_step),
            "tick": str(self.tick),
            "direction": self.direction,
            "signal": self.signal,
            "tighten_at": str(self.tighten_at),
            "relax_at": str(self.relax_at),
            "cooling_ms": self.cooling_ms,
            "lead_ms": self.lead_ms,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ParamSpec:
        return cls(
            symbol=str(raw["symbol"]),
            name=str(raw["name"]),
            base=_dec(raw["base"], "base"),
            lower=_dec(raw["lower"], "lower"),
            upper=_dec(raw["upper"], "upper"),
            max_step=_dec(raw["max_step"], "max_step"),
            tick=_dec(raw["tick"], "tick"),
            direction=_int(raw["direction"], "direction"),
            signal=str(raw["signal"]),
            tighten_at=_dec(raw["tighten_at"], "tighten_at"),
            relax_at=_dec(raw["relax_at"], "relax_at"),
            cooling_ms=_int(raw["cooling_ms"], "cooling_ms"),
            lead_ms=_int(raw["lead_ms"], "lead_ms"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamChange:
    """A change announced at ``announced_ms`` to take effect at ``effective_ms``."""

    symbol: str
    name: str
    old: Decimal
    new: Decimal
    announced_ms: int
    effective_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "name": self.name,
            "old": str(self.old),
            "new": str(self.new),
            "announced_ms": self.announced_ms,
            "effective_ms": self.effective_ms,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ParamChange:
        return cls(
            symbol=str(raw["symbol"]),
            name=str(raw["name"]),
            old=_dec(raw["old"], "old"),
            new=_dec(raw["new"], "new"),
            announced_ms=_int(raw["announced_ms"], "announced_ms"),
            effective_ms=_int(raw["effective_ms"], "effective_ms"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardrailVerdict:
    """One guardrail's verdict on a decision; ``passed`` is ``None`` when it was not evaluated
    because an earlier guardrail rejected the output."""

    name: str
    passed: bool | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> GuardrailVerdict:
        passed = raw.get("passed")
        if passed is not None and not isinstance(passed, bool):
            msg = f"verdict passed={passed!r} must be true, false or null"
            raise ValueError(msg)
        return cls(name=str(raw["name"]), passed=passed, detail=str(raw.get("detail", "")))


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One line of the audit log.

    ``kind`` is ``decision`` (an advisor output went through the guardrails), ``effective``
    (an announced change took effect) or ``interval`` (the funding-interval rule acted).
    ``proposed`` is the advisor's raw output as text (it may read ``NaN``); ``current`` the
    parameter's value before the decision; ``applied`` the value announced (``None`` when the
    output was rejected or changed nothing), effective at ``effective_ms``.
    """

    seq: int
    time_ms: int
    kind: str
    symbol: str
    param: str
    inputs: Mapping[str, Decimal]
    advisor: str | None
    proposed: str | None
    as_of_ms: int | None
    current: Decimal
    verdicts: tuple[GuardrailVerdict, ...]
    applied: Decimal | None
    effective_ms: int | None
    reason: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            msg = f"audit entry kind {self.kind!r} must be one of {', '.join(KINDS)}"
            raise ValueError(msg)

    @property
    def accepted(self) -> bool:
        """Every guardrail passed and a value was announced."""
        return self.applied is not None and all(v.passed for v in self.verdicts)

    @property
    def rejected_by(self) -> str | None:
        """The first guardrail that rejected the output (``None``: none did)."""
        return next((v.name for v in self.verdicts if v.passed is False), None)

    def verdict(self, name: str) -> GuardrailVerdict | None:
        return next((v for v in self.verdicts if v.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time_ms": self.time_ms,
            "kind": self.kind,
            "symbol": self.symbol,
            "param": self.param,
            "inputs": {k: str(v) for k, v in self.inputs.items()},
            "advisor": self.advisor,
            "proposed": self.proposed,
            "as_of_ms": self.as_of_ms,
            "current": str(self.current),
            "verdicts": [v.to_json() for v in self.verdicts],
            "applied": None if self.applied is None else str(self.applied),
            "effective_ms": self.effective_ms,
            "reason": self.reason,
        }

    @property
    def line(self) -> str:
        """The entry as its canonical JSON line (without the newline)."""
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> AuditEntry:
        """Decode one entry; ``ValueError``/``KeyError`` on a malformed one."""
        verdicts = raw.get("verdicts")
        if not isinstance(verdicts, list):
            msg = "verdicts must be a list"
            raise ValueError(msg)
        return cls(
            seq=_int(raw["seq"], "seq"),
            time_ms=_int(raw["time_ms"], "time_ms"),
            kind=str(raw["kind"]),
            symbol=str(raw["symbol"]),
            param=str(raw["param"]),
            inputs=_decimals(raw.get("inputs", {}), "inputs"),
            advisor=_opt_str(raw.get("advisor"), "advisor"),
            proposed=_opt_str(raw.get("proposed"), "proposed"),
            as_of_ms=_opt_int(raw.get("as_of_ms"), "as_of_ms"),
            current=_dec(raw["current"], "current"),
            verdicts=tuple(GuardrailVerdict.from_json(v) for v in verdicts),
            applied=_opt_dec(raw.get("applied"), "applied"),
            effective_ms=_opt_int(raw.get("effective_ms"), "effective_ms"),
            reason=str(raw.get("reason", "")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamState:
    """A symbol's dynamic parameters now: values in force, specs, announcements, inputs.

    ``values`` holds every parameter of :data:`PARAM_NAMES` plus :data:`INTERVAL_PARAM`;
    ``pending`` the changes announced and not yet in force, ``history`` those applied, oldest
    first. ``signals`` are the inputs of the last decision and ``overrides`` the signals a
    control call fixed. The funding interval switches to hourly after a settlement at the cap
    or floor and reverts after ``interval_calm_run`` consecutive settlements with
    ``|F| <= interval_calm_rate`` (``interval_calm_count`` so far).
    """

    symbol: str
    enabled: bool
    advisor: str
    decision_interval_ms: int
    values: Mapping[str, Decimal]
    specs: Mapping[str, ParamSpec]
    pending: tuple[ParamChange, ...] = ()
    history: tuple[ParamChange, ...] = ()
    signals: Mapping[str, Decimal] = field(default_factory=dict)
    overrides: Mapping[str, Decimal] = field(default_factory=dict)
    interval_calm_rate: Decimal = Decimal(0)
    interval_calm_run: int = 0
    interval_calm_count: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "enabled": self.enabled,
            "advisor": self.advisor,
            "decision_interval_ms": self.decision_interval_ms,
            "values": {k: str(v) for k, v in self.values.items()},
            "specs": {k: s.to_json() for k, s in self.specs.items()},
            "pending": [c.to_json() for c in self.pending],
            "history": [c.to_json() for c in self.history],
            "signals": {k: str(v) for k, v in self.signals.items()},
            "overrides": {k: str(v) for k, v in self.overrides.items()},
            "interval_calm_rate": str(self.interval_calm_rate),
            "interval_calm_run": self.interval_calm_run,
            "interval_calm_count": self.interval_calm_count,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ParamState:
        specs = raw.get("specs", {})
        if not isinstance(specs, dict):
            msg = "specs must be an object"
            raise ValueError(msg)
        enabled = raw.get("enabled")
        if not isinstance(enabled, bool):
            msg = f"enabled={enabled!r} must be true or false"
            raise ValueError(msg)
        return cls(
            symbol=str(raw["symbol"]),
            enabled=enabled,
            advisor=str(raw["advisor"]),
            decision_interval_ms=_int(raw["decision_interval_ms"], "decision_interval_ms"),
            values=_decimals(raw.get("values", {}), "values"),
            specs={str(k): ParamSpec.from_json(v) for k, v in specs.items()},
            pending=tuple(ParamChange.from_json(c) for c in raw.get("pending", ())),
            history=tuple(ParamChange.from_json(c) for c in raw.get("history", ())),
            signals=_decimals(raw.get("signals", {}), "signals"),
            overrides=_decimals(raw.get("overrides", {}), "overrides"),
            interval_calm_rate=_dec(raw.get("interval_calm_rate", "0"), "interval_calm_rate"),
            interval_calm_run=_int(raw.get("interval_calm_run", 0), "interval_calm_run"),
            interval_calm_count=_int(raw.get("interval_calm_count", 0), "interval_calm_count"),
        )


def published_value(
    name: str, brackets: Sequence[Bracket], funding: FundingInfo | None = None
) -> Decimal:
    """Where a venue shows parameter ``name``: the first bracket or the funding info.

    Raises:
        ValueError: an unknown parameter, or ``funding`` missing for a funding parameter.
    """
    first = min(brackets, key=lambda b: b.notional_floor)
    if name == "maint_margin_rate":
        return first.maint_margin_ratio
    if name == "max_leverage":
        return Decimal(first.initial_leverage)
    if name == "max_notional":
        return first.notional_cap
    if name in ("funding_cap", INTERVAL_PARAM):
        if funding is None:
            msg = f"{name} is shown in the funding info; pass it"
            raise ValueError(msg)
        return funding.cap if name == "funding_cap" else Decimal(funding.interval_hours)
    msg = f"unknown parameter {name!r}; known: {', '.join((*PARAM_NAMES, INTERVAL_PARAM))}"
    raise ValueError(msg)


@runtime_checkable
class ParamSource(Protocol):
    """A venue that publishes its dynamic parameters and their audit log (``READ_PARAMS``)."""

    async def param_state(self, symbol: str) -> ParamState:
        """The symbol's parameters, specs, announcements and last inputs."""
        ...

    async def param_audit(self, since_ms: int | None = None) -> list[AuditEntry]:
        """The audit log's entries at or after ``since_ms`` (all when None), oldest first."""
        ...


def param_source(venue: object) -> ParamSource:
    """``venue`` as a :class:`ParamSource`.

    Raises:
        Missing: the venue publishes no dynamic parameters.
    """
    if not isinstance(venue, ParamSource):
        msg = f"{getattr(venue, 'name', venue)} does not publish dynamic parameters (READ_PARAMS)"
        raise Missing(msg)
    return venue


async def write_audit(venue: object, path: Path) -> bool:
    """Write ``venue``'s audit log to ``path`` (one canonical line each) if it has one.

    For the report folder after each check; a venue without ``READ_PARAMS``, or with an empty
    log, writes nothing. Reading or writing failures are swallowed: the log is an artifact of
    the check, never its outcome. Returns whether a file was written.
    """
    capabilities: frozenset[Capability] = getattr(venue, "capabilities", frozenset())
    if Capability.READ_PARAMS not in capabilities or not isinstance(venue, ParamSource):
        return False
    try:
        entries = await venue.param_audit()
        if not entries:
            return False
        _save(path, "".join(f"{e.line}\n" for e in entries))
    except (PerpcheckError, OSError):
        return False
    return True


def _save(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
