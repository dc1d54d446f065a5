"""Sharing equal decimals between the records the engine keeps (a memory measure).

A ``Decimal`` takes 104 bytes, and a venue's history repeats the same few values over and over
(order sizes, fill prices, commissions at the same size and price...): every fill used to store
fresh objects equal to ones already held. Two ways to hand out an object already held:

* :func:`same_as` keeps ``held`` instead of a result with exactly its representation (sign,
  coefficient and exponent: ``compare_total`` is 0), so ``Decimal("0.0020")`` never stands in
  for ``Decimal("0.002")``;
* the operations (:func:`product`, :func:`total`, :func:`negated`, :func:`signed`,
  :func:`commission`) remember their last results by the *identity* of their operands and of the
  decimal context: the same operand objects in the same context give the same result, so the
  remembered object is exactly what the computation would give. (Hashing a new decimal by value
  costs more than the computation.)

``str()``, ``repr()`` and every later computation are unchanged. Decimals are immutable, so a
shared object cannot be changed through one of its holders. Remembered entries hold their
operands, so an identity is never reused while its entry lives; the table starts over when full.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, getcontext

__all__ = ["commission", "negated", "product", "same_as", "signed", "total"]

_MEMO: dict[tuple[int, ...], tuple[object, ...]] = {}
_MEMO_SIZE = 4096  # small enough to stay in the CPU's caches
_PRODUCT, _TOTAL, _NEGATED, _SIGNED, _COMMISSION = range(5)


def same_as(value: Decimal, held: Decimal) -> Decimal:
    """``held`` if it has exactly ``value``'s representation, else ``value``."""
    return value if value.compare_total(held) else held


def _remember(key: tuple[int, ...], entry: tuple[object, ...]) -> None:
    if len(_MEMO) >= _MEMO_SIZE:
        _MEMO.clear()
    _MEMO[key] = entry


def product(a: Decimal, b: Decimal) -> Decimal:
    """``a * b``."""
    ctx = getcontext()
    key = (_PRODUCT, id(a), id(b))
    found = _MEMO.get(key)
    if found is not None and found[0] is a and found[1] is b and found[2] is ctx:
        return found[3]  # type: ignore[return-value]
    result = a * b
    _remember(key, (a, b, ctx, result))
    return result


def total(a: Decimal, b: Decimal) -> Decimal:
    """``a + b``."""
    ctx = getcontext()
    key = (_TOTAL, id(a), id(b))
    found = _MEMO.get(key)
    if found is not None and found[0] is a and found[1] is b and found[2] is ctx:
        return found[3]  # type: ignore[return-value]
    result = a + b
    _remember(key, (a, b, ctx, result))
    return result


def negated(a: Decimal) -> Decimal:
    """``-a``."""
    ctx = getcontext()
    key = (_NEGATED, id(a))
    found = _MEMO.get(key)
    if found is not None and found[0] is a and found[1] is ctx:
        return found[2]  # type: ignore[return-value]
    result = -a
    _remember(key, (a, ctx, result))
    return result


def signed(sign: int, qty: Decimal) -> Decimal:
    """``sign * qty`` (``sign`` 1 or -1)."""
    ctx = getcontext()
    key = (_SIGNED, sign, id(qty))
    found = _MEMO.get(key)
    if found is not None and found[0] is qty and found[1] is ctx:
        return found[2]  # type: ignore[return-value]
    result = sign * qty
    _remember(key, (qty, ctx, result))
    return result


def commission(qty: Decimal, price: Decimal, rate: Decimal, quantum: Decimal) -> Decimal:
    """``(qty * price * rate)`` rounded half up to ``quantum`` (the engine's fee)."""
    ctx = getcontext()
    key = (_COMMISSION, id(qty), id(price), id(rate), id(quantum))
    found = _MEMO.get(key)
    if (
        found is not None
        and found[0] is qty
        and found[1] is price
        and found[2] is rate
        and found[3] is quantum
        and found[4] is ctx
    ):
        return found[5]  # type: ignore[return-value]
    result = (qty * price * rate).quantize(quantum, rounding=ROUND_HALF_UP)
    _remember(key, (qty, price, rate, quantum, ctx, result))
    return result
