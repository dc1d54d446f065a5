"""The check registry, the ``@check`` decorator and the context a check records into.

A check is one async function under ``suites/``::

    @check("LIQ-001", needs={Capability.READ_BRACKETS})
    async def test_isolated_liquidation_price(venue, oracle, ctx):
        '''Isolated liquidation price equals the oracle's to the tick.

        Source: perp-mechanics.md §6
        '''
        ctx.equal("BTCUSDT long LP", expected=lp, observed=reported, tolerance=tick, unit="USDT")

The decorator attaches a frozen :class:`CheckSpec` and registers it; the registry refuses
duplicate IDs, malformed IDs and docstrings without a ``Source:`` line, naming the culprit.
Comparisons are recorded on :class:`CheckContext`; any failed comparison fails the check with
:class:`~harness.errors.CheckFailed` when the function returns.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

import pytest

from harness.deviations import Judgement, KnownDeviation, judge
from harness.errors import CheckDefinitionError, CheckFailed
from harness.results import Measurement
from harness.safety import SafetyRefused
from harness.venue import Capability

__all__ = [
    "AREAS",
    "REGISTRY",
    "CheckContext",
    "CheckSpec",
    "check",
]

ID_PATTERN = re.compile(r"^[A-Z]{3,5}-\d{3}$")
SOURCE_PATTERN = re.compile(r"^\s*Source:\s*(?P<source>.+?)\s*$", re.MULTILINE)

#: Area code -> the testing-guide topic it covers (DESIGN.md "The testing guide").
AREAS: dict[str, str] = {
    "ORD": "Small-size experiments validate edge cases before capital is at risk",
    "MARK": "Mark against index under fast moves",
    "LIQ": "Liquidation math with fees and conservative slippage",
    "PLQ": "Partial-liquidation fairness and the liquidation band",
    "FUND": "Funding transfers compound over cycles",
    "RATE": "Degraded mode under rate limits and throttling",
    "STRM": "What a trader learns from the streams, as it happens",
    "PARAM": "Dynamic margin parameters: triggers, cooling periods, no oscillation",
    "CONC": "Concentration warnings as a sizing input",
    "CASC": "Cascades as connected exposure",
    "ANOM": "Early-warning anomalies",
}

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckSpec:
    """What the registry knows of a check."""

    id: str
    area: str
    title: str
    rule: str
    source: str
    needs: frozenset[Capability]
    qualname: str
    module: str

    @property
    def topic(self) -> str:
        return AREAS[self.area]


class _Registry:
    def __init__(self) -> None:
        self._specs: dict[str, CheckSpec] = {}

    def add(self, spec: CheckSpec) -> None:
        existing = self._specs.get(spec.id)
        if existing is not None and (existing.module, existing.qualname) != (
            spec.module,
            spec.qualname,
        ):
            msg = (
                f"check ID {spec.id} is used twice: by {existing.module}.{existing.qualname} "
                f"and by {spec.module}.{spec.qualname}; IDs are never reused, pick a new one"
            )
            raise CheckDefinitionError(msg)
        self._specs[spec.id] = spec

    def __getitem__(self, check_id: str) -> CheckSpec:
        return self._specs[check_id]

    def __contains__(self, check_id: object) -> bool:
        return check_id in self._specs

    def __iter__(self) -> Any:
        return iter(sorted(self._specs.values(), key=lambda s: s.id))

    def __len__(self) -> int:
        return len(self._specs)


REGISTRY = _Registry()


def check(
    check_id: str, *, needs: Iterable[Capability] = ()
) -> Callable[[Callable[P, Awaitable[None]]], Callable[P, Awaitable[None]]]:
    """Declare an async function a conformance check with a stable ID.

    The function must take a ``ctx`` argument (:class:`CheckContext`); its docstring's first line
    is the rule, and a ``Source:`` line names the section of perp-mechanics.md it follows.
    """
    if not ID_PATTERN.match(check_id):
        msg = f"check ID {check_id!r} must look like 'LIQ-001' (pattern {ID_PATTERN.pattern})"
        raise CheckDefinitionError(msg)
    area = check_id.split("-", 1)[0]
    if area not in AREAS:
        msg = f"check ID {check_id!r}: unknown area {area!r}; known areas: {', '.join(AREAS)}"
        raise CheckDefinitionError(msg)

    def decorate(fn: Callable[P, Awaitable[None]]) -> Callable[P, Awaitable[None]]:
        where = f"{fn.__module__}.{fn.__qualname__}"
        if not inspect.iscoroutinefunction(fn):
            msg = f"check {check_id} ({where}) must be an 'async def' function"
            raise CheckDefinitionError(msg)
        if "ctx" not in inspect.signature(fn).parameters:
            msg = f"check {check_id} ({where}) must take a 'ctx' parameter to record results"
            raise CheckDefinitionError(msg)
        doc = inspect.getdoc(fn) or ""
        source = SOURCE_PATTERN.search(doc)
        if not doc or source is None:
            msg = (
                f"check {check_id} ({where}) needs a docstring whose first line states the rule "
                "and which has a 'Source: perp-mechanics.md §N' line"
            )
            raise CheckDefinitionError(msg)
        rule = doc.splitlines()[0].strip()
        spec = CheckSpec(
            id=check_id,
            area=area,
            title=rule,
            rule=doc,
            source=source.group("source"),
            needs=frozenset(needs),
            qualname=fn.__qualname__,
            module=fn.__module__,
        )
        REGISTRY.add(spec)

        @functools.wraps(fn)
        async def run_check(*args: P.args, **kwargs: P.kwargs) -> None:
            try:
                await fn(*args, **kwargs)
            except SafetyRefused as exc:
                pytest.skip(f"refused by the run's safety caps before sending: {exc}")
            ctx = kwargs.get("ctx")
            if isinstance(ctx, CheckContext):
                ctx.finish()

        run_check.perpcheck_spec = spec  # type: ignore[attr-defined]
        marked = pytest.mark.asyncio(pytest.mark.perpcheck(check_id)(run_check))
        return marked  # type: ignore[no-any-return]

    return decorate


_DISPLAY = Decimal("1e-8")


def _fmt(value: object) -> str:
    """Decimals for people: at most 8 decimal places (comparisons use the exact values).

    A value too small for them is shown to two digits in exponent form (``-3.3E-9``), not as a
    ``0`` or ``-0`` that would hide it (a venue's rounding of a mark, say); zero is ``0``.
    """
    if isinstance(value, Decimal):
        shown = value.quantize(_DISPLAY) if value.as_tuple().exponent < -8 else value  # type: ignore[operator]
        if not shown:  # zero once shown: a negative zero is 0, a tiny value keeps its size
            return format(value, ".1E") if value else "0"
        return format(shown.normalize(), "f")
    return str(value)


@dataclass(slots=True)
class CheckContext:
    """Where a running check records its comparisons, notes and evidence."""

    spec: CheckSpec
    venue: str
    seed: int
    measurements: list[Measurement] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # The venue's documented rules for this check (harness.deviations) and, once finished with
    # failures they cover, how the failures were judged by them.
    deviations: tuple[KnownDeviation, ...] = ()
    judgement: Judgement | None = None

    # -- comparisons -------------------------------------------------------------------------
    def equal(
        self,
        label: str,
        *,
        expected: Decimal,
        observed: Decimal | None,
        tolerance: Decimal = Decimal(0),
        unit: str = "",
    ) -> bool:
        """``|observed - expected| <= tolerance``; a missing observation fails."""
        if observed is None:
            return self._record(
                label, _fmt(expected), "none reported", tolerance, None, unit, False
            )
        deviation = observed - expected
        ok = abs(deviation) <= tolerance
        return self._record(label, _fmt(expected), _fmt(observed), tolerance, deviation, unit, ok)

    def at_most(
        self,
        label: str,
        *,
        limit: Decimal,
        observed: Decimal,
        tolerance: Decimal = Decimal(0),
        unit: str = "",
    ) -> bool:
        """``observed <= limit + tolerance``; deviation is how far above the limit it is."""
        deviation = max(observed - limit, Decimal(0))
        ok = observed <= limit + tolerance
        return self._record(
            label, f"<= {_fmt(limit)}", _fmt(observed), tolerance, deviation, unit, ok
        )

    def at_least(
        self,
        label: str,
        *,
        limit: Decimal,
        observed: Decimal,
        tolerance: Decimal = Decimal(0),
        unit: str = "",
    ) -> bool:
        """``observed >= limit - tolerance``; deviation is how far below the limit it is."""
        deviation = min(observed - limit, Decimal(0))
        ok = observed >= limit - tolerance
        return self._record(
            label, f">= {_fmt(limit)}", _fmt(observed), tolerance, deviation, unit, ok
        )

    def within(
        self,
        label: str,
        *,
        low: Decimal,
        high: Decimal,
        observed: Decimal,
        tolerance: Decimal = Decimal(0),
        unit: str = "",
    ) -> bool:
        """``low - tol <= observed <= high + tol``; deviation is the distance outside the band."""
        if observed < low:
            deviation = observed - low
        elif observed > high:
            deviation = observed - high
        else:
            deviation = Decimal(0)
        ok = low - tolerance <= observed <= high + tolerance
        return self._record(
            label, f"[{_fmt(low)}, {_fmt(high)}]", _fmt(observed), tolerance, deviation, unit, ok
        )

    def require(self, label: str, ok: bool, *, expected: str, observed: str) -> bool:
        """A categorical comparison (a status, a rejection code, an event that must happen)."""
        return self._record(label, expected, observed, None, None, "", ok)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def add_evidence(self, name: str, data: Any) -> None:
        """Attach a JSON-able series or table the report can chart."""
        self.evidence[name] = data

    # -- outcome -----------------------------------------------------------------------------
    @property
    def failures(self) -> list[Measurement]:
        return [m for m in self.measurements if not m.passed]

    @property
    def headline(self) -> Measurement | None:
        """The measurement a one-line summary should show: the first failure, else the first
        that is not a precondition, else the first."""
        failures = self.failures
        if self.judgement is not None and self.judgement.undocumented:
            return self.judgement.undocumented[0]
        if failures:
            return failures[0]
        for m in self.measurements:
            if "(precondition" not in m.label:
                return m
        return self.measurements[0] if self.measurements else None

    def finish(self) -> None:
        """Called when the check returns: fail if anything failed or nothing was measured."""
        if not self.measurements:
            msg = (
                f"{self.spec.id} recorded no comparison: a check that measures nothing "
                "proves nothing"
            )
            raise CheckFailed(msg)
        failures = self.failures
        if failures and self.deviations:  # judged by the venue's documented rule, if it has one
            self.judgement = judge(failures, self.deviations)
            self.notes.extend(self.judgement.notes())
            if self.judgement.all_documented:
                return
            failures = list(self.judgement.undocumented)
        if failures:
            first = failures[0]
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            tolerance = ""
            if first.tolerance not in (None, "0"):
                unit = f" {first.unit}" if first.unit else ""
                tolerance = f" (tolerance {first.tolerance}{unit})"
            msg = (
                f"{first.label}: expected {first.expected}, observed {first.observed}"
                f"{tolerance}{more}"
            )
            raise CheckFailed(
                msg,
                expected=first.expected,
                observed=first.observed,
                tolerance=first.tolerance,
                unit=first.unit,
            )

    def _record(
        self,
        label: str,
        expected: str,
        observed: str,
        tolerance: Decimal | None,
        deviation: Decimal | None,
        unit: str,
        ok: bool,
    ) -> bool:
        self.measurements.append(
            Measurement(
                label=label,
                expected=expected,
                observed=observed,
                tolerance=None if tolerance is None else _fmt(tolerance),
                deviation=None if deviation is None else _fmt(deviation),
                unit=unit,
                passed=ok,
            )
        )
        return ok
