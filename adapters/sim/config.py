"""The simulator's instruments, depth profiles and defaults (fixtures, not truth).

Brackets for BTCUSDT are the Binance table of perp-mechanics.md §4(c); the ``cum`` column is
recomputed from the recurrence so it can never drift from the floors and rates. BTCUSDT is
liquidated by tier step-down (Binance/Bybit style), ETHUSDT by fixed-fraction slices with a
cooldown and a backstop (Hyperliquid style); ``--venue-option liquidation=full`` (or
``liquidation.ETHUSDT=tier-step-down``) changes that. Liquidation fee
rates are fixtures chosen below the first tier's maintenance rate, so that a position liquidated
near its liquidation price normally covers the fee (the capped case is reached by gaps).
Funding (§3, §10): caps and floors are per settlement (BTCUSDT ±0.3 % as on Binance, ETHUSDT
±0.75 %); BTCUSDT settles every 8 hours, ETHUSDT every hour (as a Binance symbol does after a
capped settlement, and as Hyperliquid does), so funding can be observed within simulated hours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from harness.model import (
    Bracket,
    FeeRates,
    Instrument,
    LiquidationPolicy,
    LiquidationVariant,
)

__all__ = [
    "DEPTH_PROFILES",
    "DepthProfile",
    "SimConfig",
    "SimInstrument",
    "build_brackets",
    "default_instruments",
]

D = Decimal


def build_brackets(rows: list[tuple[int, str, str, str]]) -> tuple[Bracket, ...]:
    """``(max leverage, floor, cap, mmr)`` rows to brackets with ``cum`` from the recurrence.

    ``cum_k = cum_{k-1} + floor_k * (mmr_k - mmr_{k-1})`` (perp-mechanics.md §4(a)).
    """
    out: list[Bracket] = []
    cum = D(0)
    prev_mmr = D(0)
    for i, (lev, floor, cap, mmr) in enumerate(rows, start=1):
        if i > 1:
            cum += D(floor) * (D(mmr) - prev_mmr)
        out.append(
            Bracket(
                bracket=i,
                initial_leverage=lev,
                notional_floor=D(floor),
                notional_cap=D(cap),
                maint_margin_ratio=D(mmr),
                cum=cum,
            )
        )
        prev_mmr = D(mmr)
    return tuple(out)


BTC_BRACKETS = build_brackets(
    [
        (125, "0", "50000", "0.004"),
        (100, "50000", "600000", "0.005"),
        (75, "600000", "3000000", "0.0065"),
        (50, "3000000", "12000000", "0.01"),
        (25, "12000000", "70000000", "0.02"),
        (20, "70000000", "100000000", "0.025"),
        (10, "100000000", "230000000", "0.05"),
        (5, "230000000", "480000000", "0.1"),
        (4, "480000000", "600000000", "0.125"),
        (3, "600000000", "800000000", "0.15"),
        (2, "800000000", "1200000000", "0.25"),
        (1, "1200000000", "1800000000", "0.5"),
    ]
)

ETH_BRACKETS = build_brackets(
    [
        (100, "0", "10000", "0.005"),
        (75, "10000", "100000", "0.0065"),
        (50, "100000", "500000", "0.01"),
        (25, "500000", "1000000", "0.02"),
        (10, "1000000", "2000000", "0.05"),
        (5, "2000000", "5000000", "0.1"),
        (4, "5000000", "6000000", "0.125"),
        (3, "6000000", "10000000", "0.15"),
        (2, "10000000", "20000000", "0.25"),
        (1, "20000000", "50000000", "0.5"),
    ]
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DepthProfile:
    """How the seeded market maker quotes around the index.

    Level ``i`` (0-based) sits ``half_spread_bps + i * level_spacing_bps`` from the index and
    carries ``base_notional * growth**i`` of quote currency, jittered by ``±jitter``. Quotes are
    refreshed when the index has moved ``requote_bps`` from where they were centred (or they
    traded), as a real maker does not requote on sub-basis-point noise.
    """

    name: str
    levels: int
    half_spread_bps: Decimal
    level_spacing_bps: Decimal
    base_notional: Decimal
    growth: Decimal
    jitter: Decimal
    requote_bps: Decimal = Decimal(1)  # requote when the index moved this far from the quotes


DEPTH_PROFILES: dict[str, DepthProfile] = {
    p.name: p
    for p in (
        DepthProfile(
            name="normal",
            levels=20,
            half_spread_bps=D("0.5"),
            level_spacing_bps=D(1),
            base_notional=D(30000),
            growth=D("1.15"),
            jitter=D("0.25"),
        ),
        DepthProfile(
            name="thin",
            levels=3,
            half_spread_bps=D(5),
            level_spacing_bps=D(25),
            base_notional=D(3000),
            growth=D(1),
            jitter=D("0.10"),
        ),
    )
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SimInstrument:
    """An instrument plus what only the simulator needs to run it."""

    instrument: Instrument
    initial_price: Decimal
    fees: FeeRates
    depth: str = "normal"
    feed_weights: tuple[Decimal, ...] = (Decimal(1), Decimal(1), Decimal(1))
    feed_noise_bps: Decimal = Decimal(1)
    # Per-settlement funding rate cap and floor (§3(a), §10: Binance BTCUSDT ±0.3 %).
    funding_cap: Decimal = Decimal("0.003")
    funding_floor: Decimal = Decimal("-0.003")


def default_instruments() -> dict[str, SimInstrument]:
    btc = Instrument(
        symbol="BTCUSDT",
        base_asset="BTC",
        quote_asset="USDT",
        margin_asset="USDT",
        tick_size=D("0.10"),
        step_size=D("0.001"),
        min_qty=D("0.001"),
        max_qty=D(1000),
        market_max_qty=D(120),
        min_price=D("556.80"),
        max_price=D(4529764),
        min_notional=D(100),
        brackets=BTC_BRACKETS,
        liquidation_fee_rate=D("0.0015"),
        liquidation=LiquidationPolicy(variant=LiquidationVariant.TIER_STEP_DOWN),
    )
    eth = Instrument(
        symbol="ETHUSDT",
        base_asset="ETH",
        quote_asset="USDT",
        margin_asset="USDT",
        tick_size=D("0.01"),
        step_size=D("0.001"),
        min_qty=D("0.001"),
        max_qty=D(10000),
        market_max_qty=D(2000),
        min_price=D("39.86"),
        max_price=D(306177),
        min_notional=D(20),
        brackets=ETH_BRACKETS,
        liquidation_fee_rate=D("0.0030"),
        liquidation=LiquidationPolicy(variant=LiquidationVariant.FRACTION),
        funding_interval_hours=1,  # hourly, like a Binance symbol after a capped settlement
    )
    fees = FeeRates(maker=D("0.0002"), taker=D("0.0005"))
    return {
        "BTCUSDT": SimInstrument(instrument=btc, initial_price=D(60000), fees=fees),
        "ETHUSDT": SimInstrument(
            instrument=eth,
            initial_price=D(3000),
            fees=fees,
            funding_cap=D("0.0075"),
            funding_floor=D("-0.0075"),
        ),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    """Everything that defines a simulated market; with a seed, it replays exactly."""

    seed: int = 0
    instruments: dict[str, SimInstrument] = field(default_factory=default_instruments)
    defects: frozenset[str] = frozenset()
    default_balance: Decimal = Decimal(10000)
    default_leverage: int = 20
    update_interval_ms: int = 1_000
    stale_feed_ms: int = 5_000
    outlier_threshold: Decimal = Decimal("0.05")
    basis_samples: int = 30
    initial_funding_rate: Decimal = Decimal("0.0001")
    # Funding (§3(a), §10); each symbol's interval is its Instrument.funding_interval_hours.
    interest_rate: Decimal = Decimal("0.0001")  # r per 8 hours
    funding_clamp: Decimal = Decimal("0.0005")  # the interest clamp c
    impact_margin: Decimal = Decimal(200)  # impact notional = this x max leverage
    premium_sample_ms: int = 5_000
    funding_rate_decimals: int = 8
    funding_announcement_ms: int = 3_600_000  # least notice for an interval change
    price_decimals: int = 8
    balance_decimals: int = 8
    insurance_fund: Decimal = Decimal(1_000_000)
    liquidation_fee_capped: bool = True
    market_maker_balance: Decimal = Decimal(10**12)
