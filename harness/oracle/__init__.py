"""The independent risk oracle: expected values computed from the published rules.

Every function follows a section of ``reference/perp-mechanics.md`` and computes with
``Decimal`` in a 50-digit context, rounding only where a rule says. Nothing here imports the
simulator (``adapters/``): the oracle is the reference the simulator and the venues are judged
against.
"""

from __future__ import annotations

from harness.oracle.degraded import (
    DegradedCosts,
    degraded_fill_price,
    expected_liquidation_loss,
    liquidation_distance,
    safe_size,
)
from harness.oracle.fees import liquidation_fee, round_to_unit, trading_fee
from harness.oracle.funding import (
    FundingCycle,
    FundingProjection,
    average_premium,
    book_premium,
    funding_payment,
    funding_projection,
    funding_rate,
    impact_notional,
    impact_price,
    premium_index,
    settled_payment,
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
from harness.oracle.partial import (
    BandStepExpectation,
    adl_rank,
    expected_band,
    step_close_quantity,
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
    "BandStepExpectation",
    "BookWalk",
    "DegradedCosts",
    "FundingCycle",
    "FundingProjection",
    "LiquidationQuote",
    "MarkBreakdown",
    "PositionInput",
    "PositionSide",
    "adl_rank",
    "average_premium",
    "book_premium",
    "bracket_for",
    "brackets_from_binance",
    "check_cum",
    "conservative_fill_price",
    "cross_liquidation",
    "degraded_fill_price",
    "equity_at",
    "expected_band",
    "expected_liquidation_loss",
    "funding_basis_price",
    "funding_payment",
    "funding_projection",
    "funding_rate",
    "impact_notional",
    "impact_price",
    "index_price",
    "initial_margin",
    "isolated_liquidation",
    "liquidation_distance",
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
    "safe_size",
    "settled_payment",
    "slippage_bps",
    "step_close_quantity",
    "trading_fee",
    "walk_book",
]
