"""``perpcheck calc funding-drift``: an isolated position under repeated funding (§3, §4, §6).

``perpcheck calc funding-drift --brackets FILE --wallet AMOUNT
--position SYMBOL:long|short:QTY@ENTRY --mark PRICE --rate RATE [--cycles N] [--json]``

``--wallet`` is the position's isolated margin and the mark is held at ``--mark``. ``--rate`` is
the rate of one funding interval, positive when longs pay (perp-mechanics.md §0). Every cycle
pays ``s·Q·mark·RATE`` out of the isolated wallet, rounded to 1e-8 USDT with payers rounding up
and receivers down (§11, the reference simulator's rule); then equity ``wallet + s·Q·(mark − EP)``,
maintenance from the brackets at ``Q·mark`` (§4) and the isolated liquidation price of the new
wallet (§6) are reported. ``cycles_to_liquidation`` is the first cycle after whose payment equity
is at or below maintenance (``null`` when none within ``--cycles``, default 10). Mistakes raise
:class:`~harness.errors.ConfigError`, which ``perpcheck`` prints as one line (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from harness.calculator import (
    _POSITION_HELP,
    _decimal,
    _load_brackets,
    _parse_position,
)
from harness.errors import ConfigError
from harness.oracle import FundingProjection, PositionInput, funding_projection

__all__ = ["register"]

DEFAULT_CYCLES = 10
MAX_CYCLES = 100_000
_UNIT = Decimal("0.00000001")
_PRICE_PLACES = Decimal("0.01")


def register(tools: Any) -> None:
    """Add ``funding-drift`` to the ``calc`` subcommands (perp-mechanics.md §3).

    Args:
        tools: the ``calc`` parser's subparsers action.
    """
    drift: argparse.ArgumentParser = tools.add_parser(
        "funding-drift",
        help="an isolated position's wallet, equity and liquidation price under repeated funding",
        description=(
            "Compound funding payments on an isolated position at a constant mark: wallet, "
            "equity, maintenance margin and liquidation price after each settlement, and the "
            "first cycle at which the position is liquidatable. perp-mechanics.md §3, §6."
        ),
    )
    drift.add_argument(
        "--brackets",
        dest="brackets",
        required=True,
        metavar="FILE",
        help="JSON body of GET /fapi/v1/leverageBracket",
    )
    drift.add_argument(
        "--wallet", dest="wallet", required=True, metavar="AMOUNT", help="the isolated margin"
    )
    drift.add_argument(
        "--position",
        dest="positions",
        action="append",
        required=True,
        metavar="SPEC",
        help=_POSITION_HELP,
    )
    drift.add_argument(
        "--mark", dest="mark", required=True, metavar="PRICE", help="mark price, held constant"
    )
    drift.add_argument(
        "--rate",
        dest="rate",
        required=True,
        metavar="RATE",
        help="funding rate per interval as a fraction (0.0001 = 0.01 %%); positive: longs pay",
    )
    drift.add_argument(
        "--cycles",
        dest="cycles",
        default=str(DEFAULT_CYCLES),
        metavar="N",
        help=f"funding settlements to project (default {DEFAULT_CYCLES})",
    )
    drift.add_argument("--json", dest="json", action="store_true", help="print JSON")
    drift.set_defaults(handler=_funding_drift)


def _cycles(text: str) -> int:
    try:
        cycles = int(text.strip())
    except ValueError:
        msg = f"--cycles {text!r} is not a whole number; write e.g. --cycles 24"
        raise ConfigError(msg) from None
    if not 1 <= cycles <= MAX_CYCLES:
        msg = f"--cycles {cycles} must be between 1 and {MAX_CYCLES}"
        raise ConfigError(msg)
    return cycles


def _funding_drift(args: argparse.Namespace) -> int:
    wallet = _decimal(args.wallet, "--wallet", "give the isolated margin, e.g. 1000")
    if wallet < 0:
        msg = f"--wallet {args.wallet!r} must be >= 0"
        raise ConfigError(msg)
    mark = _decimal(args.mark, "--mark", "give the mark price, e.g. 60000")
    if mark <= 0:
        msg = f"--mark {args.mark!r} must be > 0"
        raise ConfigError(msg)
    rate = _decimal(args.rate, "--rate", "give a fraction per interval, e.g. 0.0001")
    if abs(rate) >= 1:
        msg = (
            f"--rate {args.rate!r} is 100 % or more per interval; give a fraction, "
            "e.g. 0.0001 for 0.01 %"
        )
        raise ConfigError(msg)
    cycles = _cycles(args.cycles)
    if len(args.positions) > 1:
        msg = "funding-drift projects one isolated position; give a single --position"
        raise ConfigError(msg)
    position = _parse_position(args.positions[0], _load_brackets(args.brackets))
    projection = funding_projection(position, wallet, rate=rate, mark=mark, cycles=cycles)
    if args.json:
        sys.stdout.write(_as_json(projection))
    else:
        sys.stdout.write(_as_table(projection, position, mark, rate))
    return 0


def _fixed(value: Decimal | None, places: Decimal = _UNIT) -> str | None:
    if value is None:
        return None
    return format(value.quantize(places, rounding=ROUND_HALF_EVEN), "f")


def _as_json(projection: FundingProjection) -> str:
    rows = [
        {
            "cycle": c.cycle,
            "payment": _fixed(c.payment),
            "wallet": _fixed(c.wallet),
            "equity": _fixed(c.equity),
            "maint_margin": _fixed(c.maint_margin),
            "liquidation_price": _fixed(c.liquidation_price),
        }
        for c in projection.cycles
    ]
    body = {"cycles": rows, "cycles_to_liquidation": projection.cycles_to_liquidation}
    return json.dumps(body, indent=2) + "\n"


def _as_table(
    projection: FundingProjection, position: PositionInput, mark: Decimal, rate: Decimal
) -> str:
    header = ("cycle", "payment", "wallet", "equity", "maint. margin", "liq. price")
    rows = [header] + [
        (
            str(c.cycle),
            _fixed(c.payment) or "",
            _fixed(c.wallet) or "",
            _fixed(c.equity) or "",
            _fixed(c.maint_margin) or "",
            _fixed(c.liquidation_price, _PRICE_PLACES) or "--",
        )
        for c in projection.cycles
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    first = projection.cycles_to_liquidation
    verdict = (
        f"liquidatable after cycle {first}"
        if first is not None
        else f"not liquidatable within {len(projection.cycles)} cycles"
    )
    title = (
        f"isolated {position.symbol} {position.side.value} {position.quantity} @ "
        f"{position.entry_price}, mark {mark}, rate {rate} per interval (positive: longs pay)"
    )
    return "\n".join([title, *lines, verdict]) + "\n"
