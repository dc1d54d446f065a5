"""Tiered maintenance margin and Binance leverage brackets (perp-mechanics.md §4).

``MM(N) = N·mmr_k − cum_k`` for ``N`` in ``[floor_k, cap_k)``; ``cum`` makes ``MM`` continuous:
``cum_k = cum_{k−1} + floor_k·(mmr_k − mmr_{k−1})`` with ``cum_0 = mmr_0 = 0``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal

from harness.errors import ConfigError, NoSolution
from harness.model import Bracket, tile_brackets
from harness.oracle._exact import exact, require_finite

__all__ = [
    "bracket_for",
    "brackets_from_binance",
    "check_cum",
    "initial_margin",
    "maintenance_margin",
    "parse_binance_brackets",
    "require_contiguous",
]

_BRACKET_FIELDS = (
    "bracket",
    "initialLeverage",
    "notionalCap",
    "notionalFloor",
    "maintMarginRatio",
    "cum",
)


def _ordered(brackets: Sequence[Bracket]) -> list[Bracket]:
    if not brackets:
        msg = "brackets must not be empty"
        raise ValueError(msg)
    return sorted(brackets, key=lambda b: b.notional_floor)


def bracket_for(brackets: Sequence[Bracket], notional: Decimal) -> Bracket:
    """The bracket whose ``[notional_floor, notional_cap)`` holds ``notional`` (§4(a)).

    Args:
        brackets: the symbol's brackets, in any order.
        notional: position notional ``Q·P`` (absolute value), ``>= 0``.

    Returns:
        The bracket containing ``notional``.

    Raises:
        ValueError: ``notional`` is negative or ``brackets`` is empty.
        NoSolution: no bracket holds ``notional`` (beyond the last cap, or a gap in the table).
    """
    require_finite("notional", notional)
    if notional < 0:
        msg = f"notional={notional} must be >= 0 (use the absolute position value)"
        raise ValueError(msg)
    ordered = _ordered(brackets)
    for bracket in ordered:
        if bracket.contains(notional):
            return bracket
    last = ordered[-1]
    if notional >= last.notional_cap:
        msg = (
            f"notional {notional} is at or beyond the last bracket's cap {last.notional_cap} "
            f"(bracket {last.bracket}); the venue would refuse such a position"
        )
    else:
        msg = f"no bracket covers notional {notional}; the bracket table has a gap"
    raise NoSolution(msg)


def require_contiguous(brackets: Sequence[Bracket]) -> tuple[Bracket, ...]:
    """Sort ``brackets`` by floor and require them to tile ``[0, last cap)`` (§4(a)).

    Args:
        brackets: one symbol's brackets, in any order.

    Returns:
        The brackets sorted by ``notional_floor``.

    Raises:
        ValueError: empty, not starting at 0, or with a gap or overlap between brackets.
    """
    return tile_brackets(brackets)


@exact
def maintenance_margin(brackets: Sequence[Bracket], notional: Decimal) -> Decimal:
    """Maintenance margin ``N·mmr_k − cum_k`` with the tier of ``N`` itself (§4(a)).

    Args:
        brackets: the symbol's brackets.
        notional: position notional at the price being evaluated (mark, or a candidate LP).

    Returns:
        The maintenance margin amount, exact (no rounding).
    """
    bracket = bracket_for(brackets, notional)
    return notional * bracket.maint_margin_ratio - bracket.cum


@exact
def initial_margin(notional: Decimal, leverage: int | Decimal) -> Decimal:
    """Initial margin ``N / leverage`` (§4(a), Hyperliquid/Binance ``size × price / leverage``).

    Args:
        notional: position notional, ``>= 0``.
        leverage: the leverage setting, ``> 0``.

    Returns:
        The initial margin amount, exact to 50 significant digits.
    """
    require_finite("notional", notional)
    if isinstance(leverage, bool):
        msg = f"leverage={leverage!r} must be an int or a Decimal"
        raise TypeError(msg)
    lev = Decimal(leverage) if isinstance(leverage, int) else require_finite("leverage", leverage)
    if lev <= 0:
        msg = f"leverage={leverage} must be > 0"
        raise ValueError(msg)
    if notional < 0:
        msg = f"notional={notional} must be >= 0"
        raise ValueError(msg)
    return notional / lev


@exact
def check_cum(brackets: Sequence[Bracket]) -> list[str]:
    """Inconsistencies of a bracket table: gaps, overlaps and ``cum`` vs its recurrence (§4(a)).

    The recurrence is ``cum_k = cum_{k−1} + floor_k·(mmr_k − mmr_{k−1})`` with ``cum_0 = 0`` and
    ``mmr_0 = 0``; when it holds and the brackets are contiguous, ``MM`` is continuous (§4(d)).
    Each row is compared with the published row before it, so each message is one jump of
    ``MM`` at a floor.

    Args:
        brackets: the symbol's brackets, in any order.

    Returns:
        One readable line per problem; an empty list means the table is consistent.
    """
    problems: list[str] = []
    prev_cum = Decimal(0)
    prev_mmr = Decimal(0)
    prev: Bracket | None = None
    for b in _ordered(brackets):
        if prev is None and b.notional_floor != 0:
            problems.append(
                f"bracket {b.bracket}: the first bracket starts at {b.notional_floor}, not 0"
            )
        if prev is not None and prev.notional_cap != b.notional_floor:
            kind = "gap" if prev.notional_cap < b.notional_floor else "overlap"
            problems.append(
                f"bracket {b.bracket}: {kind} — bracket {prev.bracket} ends at {prev.notional_cap} "
                f"but bracket {b.bracket} starts at {b.notional_floor}"
            )
        expected = prev_cum + b.notional_floor * (b.maint_margin_ratio - prev_mmr)
        if b.cum != expected:
            problems.append(
                f"bracket {b.bracket}: cum={_show(b.cum)} but the recurrence gives "
                f"{_show(expected)} (= {_show(prev_cum)} + {_show(b.notional_floor)}×"
                f"({_show(b.maint_margin_ratio)} − {_show(prev_mmr)})); MM jumps by "
                f"{_show(expected - b.cum)} at notional {_show(b.notional_floor)}"
            )
        if b.maint_margin_ratio < prev_mmr:
            problems.append(
                f"bracket {b.bracket}: maintMarginRatio {_show(b.maint_margin_ratio)} is below "
                f"the previous bracket's {_show(prev_mmr)}; MM would not be convex"
            )
        # Each row is checked against the published row before it, so every message is one
        # discontinuity of MM at that row's floor (a single wrong cum breaks two floors).
        prev_cum, prev_mmr, prev = b.cum, b.maint_margin_ratio, b
    return problems


def _show(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _decimal_field(symbol: str, index: int, name: str, raw: object) -> Decimal:
    where = f"symbol {symbol!r} bracket #{index + 1} field {name!r}"
    if isinstance(raw, bool) or raw is None:
        msg = f"{where}: expected a number, got {raw!r}"
        raise ConfigError(msg)
    if isinstance(raw, float):
        msg = (
            f"{where}: got the float {raw!r}; parse the JSON with "
            "json.loads(text, parse_float=Decimal) (or use parse_binance_brackets) so that no "
            "binary float touches money"
        )
        raise ConfigError(msg)
    if isinstance(raw, Decimal | int):
        value = Decimal(raw)
    elif isinstance(raw, str):
        try:
            value = Decimal(raw.strip())
        except ArithmeticError:
            msg = f"{where}: {raw!r} is not a number"
            raise ConfigError(msg) from None
    else:
        msg = f"{where}: expected a number or a numeric string, got {type(raw).__name__}"
        raise ConfigError(msg)
    if not value.is_finite():
        msg = f"{where}: {raw!r} is not a finite number"
        raise ConfigError(msg)
    return value


def _int_field(symbol: str, index: int, name: str, raw: object) -> int:
    value = _decimal_field(symbol, index, name, raw)
    if value != value.to_integral_value():
        msg = f"symbol {symbol!r} bracket #{index + 1} field {name!r}: {raw!r} must be an integer"
        raise ConfigError(msg)
    return int(value)


def _decode_bracket(symbol: str, index: int, raw: object) -> Bracket:
    if not isinstance(raw, Mapping):
        msg = (
            f"symbol {symbol!r} bracket #{index + 1}: expected an object, got {type(raw).__name__}"
        )
        raise ConfigError(msg)
    missing = [name for name in _BRACKET_FIELDS if name not in raw]
    if missing:
        msg = f"symbol {symbol!r} bracket #{index + 1}: missing field(s) {', '.join(missing)}"
        raise ConfigError(msg)
    try:
        return Bracket(
            bracket=_int_field(symbol, index, "bracket", raw["bracket"]),
            initial_leverage=_int_field(symbol, index, "initialLeverage", raw["initialLeverage"]),
            notional_floor=_decimal_field(symbol, index, "notionalFloor", raw["notionalFloor"]),
            notional_cap=_decimal_field(symbol, index, "notionalCap", raw["notionalCap"]),
            maint_margin_ratio=_decimal_field(
                symbol, index, "maintMarginRatio", raw["maintMarginRatio"]
            ),
            cum=_decimal_field(symbol, index, "cum", raw["cum"]),
        )
    except ConfigError:
        raise
    except ValueError as exc:
        msg = f"symbol {symbol!r} bracket #{index + 1}: {exc}"
        raise ConfigError(msg) from None


def _decode_symbol(index: int, raw: object) -> tuple[str, tuple[Bracket, ...]]:
    if not isinstance(raw, Mapping):
        msg = (
            f"entry #{index + 1}: expected an object {{symbol, brackets}}, got {type(raw).__name__}"
        )
        raise ConfigError(msg)
    symbol = raw.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        msg = f"entry #{index + 1}: field 'symbol' must be a non-empty string, got {symbol!r}"
        raise ConfigError(msg)
    rows = raw.get("brackets")
    if not isinstance(rows, list) or not rows:
        msg = f"symbol {symbol!r}: field 'brackets' must be a non-empty list"
        raise ConfigError(msg)
    decoded = [_decode_bracket(symbol, i, row) for i, row in enumerate(rows)]
    try:
        return symbol, require_contiguous(decoded)
    except ValueError as exc:
        msg = f"symbol {symbol!r}: {exc}"
        raise ConfigError(msg) from None


def brackets_from_binance(obj: object) -> dict[str, tuple[Bracket, ...]]:
    """Decode the body of Binance ``GET /fapi/v1/leverageBracket`` (§4(c)).

    Accepts the list form (no ``symbol`` parameter) and the single object form
    (``{symbol, brackets}``). Numbers may be JSON numbers (already decoded as ``Decimal`` or
    ``int``) or numeric strings; floats are refused. Extra keys (``notionalCoef``) are ignored.

    Args:
        obj: the decoded JSON body.

    Returns:
        Brackets per symbol, each tuple sorted by ``notional_floor``.

    Raises:
        ConfigError: anything malformed; the message names the symbol and the field.
    """
    entries: list[object]
    if isinstance(obj, Mapping):
        entries = [obj]
    elif isinstance(obj, list):
        entries = obj
    else:
        msg = (
            "expected the JSON body of GET /fapi/v1/leverageBracket: a list of "
            f"{{symbol, brackets}} objects or one such object, got {type(obj).__name__}"
        )
        raise ConfigError(msg)
    if not entries:
        msg = "the leverageBracket body holds no symbol"
        raise ConfigError(msg)
    result: dict[str, tuple[Bracket, ...]] = {}
    for index, raw in enumerate(entries):
        symbol, brackets = _decode_symbol(index, raw)
        if symbol in result:
            msg = f"symbol {symbol!r} appears twice in the leverageBracket body"
            raise ConfigError(msg)
        result[symbol] = brackets
    return result


def _refuse_constant(name: str) -> object:
    msg = f"{name} is not a number a venue can send"
    raise ValueError(msg)


def parse_binance_brackets(text: str | bytes) -> dict[str, tuple[Bracket, ...]]:
    """Parse leverageBracket JSON text with every number as ``Decimal`` (§4(c), §11).

    Args:
        text: the raw JSON text of the response body.

    Returns:
        Brackets per symbol, as :func:`brackets_from_binance`.

    Raises:
        ConfigError: the text is not JSON or its content is malformed.
    """
    try:
        obj = json.loads(
            text, parse_float=Decimal, parse_int=Decimal, parse_constant=_refuse_constant
        )
    except (ValueError, RecursionError) as exc:
        msg = f"not valid JSON ({exc})"
        raise ConfigError(msg) from None
    return brackets_from_binance(obj)
