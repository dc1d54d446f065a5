"""``perpcheck calc``: risk calculators over the oracle (perp-mechanics.md §4, §6).

``perpcheck calc liquidation-price --brackets FILE --wallet AMOUNT --mode isolated|cross
--position SYMBOL:long|short:QTY@ENTRY [--position ...] [--mark SYMBOL=PRICE ...] [--json]``
(``calc funding-drift`` lives in :mod:`harness.calc_funding` and shares these parsers.)

``FILE`` is the JSON body of Binance ``GET /fapi/v1/leverageBracket``. In isolated mode each
position gets the whole ``--wallet`` as its isolated margin; in cross mode they share it and the
other positions count at their ``--mark`` (default: their entry price). Every user mistake
raises :class:`~harness.errors.ConfigError`, which ``perpcheck`` prints as one line (exit 2).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.model import Bracket
from harness.oracle import (
    LiquidationQuote,
    PositionInput,
    PositionSide,
    cross_liquidation,
    isolated_liquidation,
    parse_binance_brackets,
)

__all__ = ["register"]

_POSITION = re.compile(r"^(?P<symbol>[^:@=\s]+):(?P<side>[A-Za-z]+):(?P<qty>[^@]+)@(?P<entry>.+)$")
_JSON_PLACES = Decimal("0.00000001")
_TABLE_PLACES = Decimal("0.01")
_POSITION_HELP = "SYMBOL:long|short:QTY@ENTRY, e.g. BTCUSDT:long:0.5@60000"


def register(sub: Any) -> None:
    """Add ``calc`` with ``liquidation-price`` (§6) and ``funding-drift`` (§3) subcommands.

    Args:
        sub: the ``perpcheck`` parser's subparsers action.
    """
    calc: argparse.ArgumentParser = sub.add_parser("calc", help="risk calculators")
    tools = calc.add_subparsers(dest="calculator", metavar="CALCULATOR", required=True)
    lp = tools.add_parser(
        "liquidation-price",
        help="liquidation and bankruptcy prices from Binance leverage brackets",
        description=(
            "Liquidation price (Binance USDⓈ-M one-way formula, tier taken at the liquidation "
            "notional) and bankruptcy price for linear positions. perp-mechanics.md §6."
        ),
    )
    lp.add_argument(
        "--brackets",
        dest="brackets",
        required=True,
        metavar="FILE",
        help="JSON body of GET /fapi/v1/leverageBracket",
    )
    lp.add_argument(
        "--wallet",
        dest="wallet",
        required=True,
        metavar="AMOUNT",
        help="cross wallet balance, or each isolated position's margin",
    )
    lp.add_argument("--mode", dest="mode", required=True, choices=("isolated", "cross"))
    lp.add_argument(
        "--position",
        dest="positions",
        action="append",
        required=True,
        metavar="SPEC",
        help=_POSITION_HELP + " (repeatable)",
    )
    lp.add_argument(
        "--mark",
        dest="marks",
        action="append",
        default=[],
        metavar="SYMBOL=PRICE",
        help=(
            "mark price of a held symbol, for the other positions' PnL and maintenance in cross "
            "mode (default: its entry price); isolated prices do not depend on marks"
        ),
    )
    lp.add_argument("--json", dest="json", action="store_true", help="print JSON")
    lp.set_defaults(handler=_liquidation_price)
    from harness import calc_funding  # imports this module's parsers: load it after them

    calc_funding.register(tools)


def _decimal(text: str, what: str, fix: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        msg = f"{what} {text!r} is not a number; {fix}"
        raise ConfigError(msg) from None
    if not value.is_finite():
        msg = f"{what} {text!r} is not a finite number; {fix}"
        raise ConfigError(msg)
    return value


def _load_brackets(path: str) -> dict[str, tuple[Bracket, ...]]:
    fix = "pass the saved JSON body of GET /fapi/v1/leverageBracket"
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        msg = f"cannot read --brackets {path!r} ({exc.strerror or exc}); {fix}"
        raise ConfigError(msg) from None
    try:
        return parse_binance_brackets(text)
    except ConfigError as exc:
        msg = f"--brackets {path!r}: {exc}; {fix}"
        raise ConfigError(msg) from None


def _parse_position(spec: str, brackets: dict[str, tuple[Bracket, ...]]) -> PositionInput:
    match = _POSITION.match(spec.strip())
    if match is None:
        msg = f"--position {spec!r} is malformed; write {_POSITION_HELP}"
        raise ConfigError(msg)
    symbol = match["symbol"].upper()
    side = match["side"].lower()
    if side not in ("long", "short"):
        msg = f"--position {spec!r}: side {match['side']!r} must be 'long' or 'short'"
        raise ConfigError(msg)
    if symbol not in brackets:
        known = ", ".join(sorted(brackets)[:5]) + (", ..." if len(brackets) > 5 else "")
        msg = (
            f"--position {spec!r}: symbol {symbol} is not in the brackets file (it has {known}); "
            "fetch leverageBracket for that symbol or fix the symbol"
        )
        raise ConfigError(msg)
    qty = _decimal(match["qty"], f"--position {spec!r}: quantity", "write e.g. 0.5")
    entry = _decimal(match["entry"], f"--position {spec!r}: entry price", "write e.g. 60000")
    if qty <= 0:
        msg = f"--position {spec!r}: quantity {qty} must be > 0 (the side gives the direction)"
        raise ConfigError(msg)
    if entry <= 0:
        msg = f"--position {spec!r}: entry price {entry} must be > 0"
        raise ConfigError(msg)
    return PositionInput(
        symbol=symbol,
        side=PositionSide(side),
        quantity=qty,
        entry_price=entry,
        brackets=brackets[symbol],
    )


def _parse_marks(specs: Sequence[str], symbols: Sequence[str]) -> dict[str, Decimal]:
    marks: dict[str, Decimal] = {}
    for spec in specs:
        symbol, sep, price_text = spec.partition("=")
        symbol = symbol.strip().upper()
        if not sep or not symbol:
            msg = f"--mark {spec!r} is malformed; write SYMBOL=PRICE, e.g. BTCUSDT=59000"
            raise ConfigError(msg)
        if symbol not in symbols:
            msg = (
                f"--mark {spec!r}: there is no --position for {symbol}; "
                "give marks only for symbols you hold"
            )
            raise ConfigError(msg)
        if symbol in marks:
            msg = f"--mark for {symbol} is given twice; keep one"
            raise ConfigError(msg)
        price = _decimal(price_text, f"--mark {spec!r}: price", "write e.g. BTCUSDT=59000")
        if price <= 0:
            msg = f"--mark {spec!r}: price {price} must be > 0"
            raise ConfigError(msg)
        marks[symbol] = price
    return marks


def _liquidation_price(args: argparse.Namespace) -> int:
    wallet = _decimal(args.wallet, "--wallet", "give the balance in the margin asset, e.g. 1000")
    if wallet < 0:
        msg = f"--wallet {args.wallet!r} must be >= 0"
        raise ConfigError(msg)
    brackets = _load_brackets(args.brackets)
    positions = [_parse_position(spec, brackets) for spec in args.positions]
    symbols = [p.symbol for p in positions]
    for symbol in symbols:
        if symbols.count(symbol) > 1:
            msg = (
                f"--position {symbol} is given twice; one-way mode holds one position per "
                "symbol — net them into one --position"
            )
            raise ConfigError(msg)
    marks = _parse_marks(args.marks, symbols)
    if args.mode == "cross":
        positions = [replace(p, mark_price=marks.get(p.symbol)) for p in positions]
        quotes = cross_liquidation(positions, wallet)
    else:
        quotes = [isolated_liquidation(p, wallet) for p in positions]
    sys.stdout.write(_as_json(quotes) if args.json else _as_table(quotes, args.mode))
    return 0


def _plain(value: Decimal) -> str:
    return format(value, "f")


def _rounded(value: Decimal | None, places: Decimal) -> str | None:
    return None if value is None else _plain(value.quantize(places, rounding=ROUND_HALF_EVEN))


def _as_json(quotes: Sequence[LiquidationQuote]) -> str:
    rows = [
        {
            "symbol": q.symbol,
            "side": q.side.value,
            "quantity": _plain(q.quantity),
            "entry_price": _plain(q.entry_price),
            "liquidation_price": _rounded(q.liquidation_price, _JSON_PLACES),
            "bankruptcy_price": _rounded(q.bankruptcy_price, _JSON_PLACES),
            "maint_margin_ratio": None
            if q.maint_margin_ratio is None
            else _plain(q.maint_margin_ratio),
            "bracket": None if q.bracket is None else q.bracket.bracket,
        }
        for q in quotes
    ]
    return json.dumps({"positions": rows}, indent=2) + "\n"


def _as_table(quotes: Sequence[LiquidationQuote], mode: str) -> str:
    header = ("symbol", "side", "quantity", "entry", "liq. price", "bankr. price", "mmr", "bracket")
    rows = [header] + [
        (
            q.symbol,
            q.side.value,
            _plain(q.quantity),
            _rounded(q.entry_price, _TABLE_PLACES) or "",
            _rounded(q.liquidation_price, _TABLE_PLACES) or "--",
            _rounded(q.bankruptcy_price, _TABLE_PLACES) or "--",
            "--" if q.maint_margin_ratio is None else _plain(q.maint_margin_ratio),
            "--" if q.bracket is None else str(q.bracket.bracket),
        )
        for q in quotes
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(width) if column < 2 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    return f"{mode} margin, linear contracts, one-way mode\n" + "\n".join(lines) + "\n"
