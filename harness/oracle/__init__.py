"""The independent risk oracle: expected values computed from the published rules.

Every function follows a section of ``reference/perp-mechanics.md`` and computes with
``Decimal`` in a 50-digit context, rounding only where a rule says. Nothing here imports the
simulator (``adapters/``): the oracle is the reference the simulator and the venues are judged
against.
"""

from __future__ import annotations

from harness.oracle.fees import liquidation_fee, round_to_unit, trading_fee
from harness.oracle.funding import (
    average_premium,
    funding_payment,
    funding_rate,
    impact_notional,
    premium_index,
)
from harness.oracle.liquidation import (
    LiquidationQuote,
    PositionInput,
    PositionSide,
    cross_liquidation,
    equity_at,
    isolated_liquidation,
    liquidation_price_at_tier,
    maintenance_at,
)
from harness.oracle.mark import (
    MarkBreakdown,
    funding_basis_price,
    index_price,
    mark_band,
    mark_price,
    median3,
    moving_average_basis,
)
from harness.oracle.slippage import BookWalk, conservative_fill_price, slippage_bps, walk_book
from harness.oracle.tiers import (
    bracket_for,
    brackets_from_binance,
    check_cum,
    initial_margin,
    maintenance_margin,
    parse_binance_brackets,
    require_contiguous,
)

__all__ = [
    "BookWalk",
    "LiquidationQuote",
    "MarkBreakdown",
    "PositionInput",
    "PositionSide",
    "average_premium",
    "bracket_for",
    "brackets_from_binance",
    "check_cum",
    "conservative_fill_price",
    "cross_liquidation",
    "equity_at",
    "funding_basis_price",
    "funding_payment",
    "funding_rate",
    "impact_notional",
    "index_price",
    "initial_margin",
    "isolated_liquidation",
    "liquidation_fee",
    "liquidation_price_at_tier",
    "maintenance_at",
    "maintenance_margin",
    "mark_band",
    "mark_price",
    "median3",
    "moving_average_basis",
    "parse_binance_brackets",
    "premium_index",
    "require_contiguous",
    "round_to_unit",
    "slippage_bps",
    "trading_fee",
    "walk_book",
]
