"""A high-precision decimal context for the oracle (perp-mechanics.md §0 "Decimal guidance").

Decimal multiplication and division both round to the context precision. The default context
(28 digits) is enough for most venue numbers but not for every product of a 12-digit notional
with a 10-digit rate, so every public oracle function runs inside :func:`exact`, which computes
with :data:`ORACLE_PRECISION` significant digits and traps invalid operations. Values are never
quantized here: rounding to a venue's tick or unit happens only where a rule says so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import ParamSpec, TypeVar

__all__ = ["ORACLE_PRECISION", "exact", "require_finite"]

ORACLE_PRECISION = 50

_CONTEXT = Context(
    prec=ORACLE_PRECISION,
    rounding=ROUND_HALF_EVEN,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)

_P = ParamSpec("_P")
_R = TypeVar("_R")


def exact(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` inside a copy of the oracle's 50-digit decimal context."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with localcontext(_CONTEXT):
            return fn(*args, **kwargs)

    return wrapper


def require_finite(name: str, value: Decimal) -> Decimal:
    """Return ``value`` as a finite Decimal (an ``int`` is accepted and converted).

    Raises:
        TypeError: ``value`` is a float, a bool or not a number (floats are not exact).
        ValueError: ``value`` is NaN or infinite.
    """
    received: object = value  # callers are typed, but a float must not slip through at runtime
    if isinstance(received, int) and not isinstance(received, bool):
        return Decimal(received)
    if not isinstance(received, Decimal):
        msg = (
            f"{name} must be a Decimal built from str or int, got {type(value).__name__} {value!r}"
        )
        raise TypeError(msg)
    if not value.is_finite():
        msg = f"{name}={value} must be a finite number"
        raise ValueError(msg)
    return value
