"""Decoding the simulator's concentration and population replies (PROTOCOL.md "Concentration
and cascades") into the venue-neutral types of :mod:`harness.concentration` and
:mod:`harness.cascade`. Positions arrive as ``positionRisk`` v2 rows and are decoded like every
other Binance position (:func:`adapters.ccxt_venue.binance_wire.position`)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from adapters.ccxt_venue import binance_wire as bw
from adapters.ccxt_venue._wire import dec
from harness.cascade import AccountExposure, AccountLiquidation
from harness.concentration import (
    Concentration,
    ConcentrationLevel,
    ConcentrationThresholds,
    SizeAdvice,
)
from harness.model import Side

__all__ = ["account_liquidation", "concentration", "exposure"]


def _opt(raw: Mapping[str, Any], name: str) -> Decimal | None:
    value = raw.get(name)
    return None if value is None else dec(value, name)


def _thresholds(raw: Mapping[str, Any]) -> ConcentrationThresholds:
    return ConcentrationThresholds(
        **{name: dec(raw[name], name) for name in ConcentrationThresholds.__dataclass_fields__}
    )


def concentration(raw: Mapping[str, Any]) -> Concentration:
    """A ``GET /control/concentration`` reply's ``concentration`` object."""
    advice = raw["advice"]
    return Concentration(
        account_id=str(raw["account_id"]),
        symbol=str(raw["symbol"]),
        quantity=dec(raw["quantity"], "quantity"),
        mark_price=dec(raw["mark_price"], "mark_price"),
        liquidation_price=_opt(raw, "liquidation_price"),
        open_interest=dec(raw["open_interest"], "open_interest"),
        oi_share=dec(raw["oi_share"], "oi_share"),
        band_depth=dec(raw["band_depth"], "band_depth"),
        depth_share=_opt(raw, "depth_share"),
        oi_level=ConcentrationLevel(str(raw["oi_level"])),
        depth_level=ConcentrationLevel(str(raw["depth_level"])),
        level=ConcentrationLevel(str(raw["level"])),
        advice=SizeAdvice(
            symbol=str(raw["symbol"]),
            side=Side(str(advice["side"])),
            budget_bps=dec(advice["budget_bps"], "budget_bps"),
            max_qty=dec(advice["max_qty"], "max_qty"),
            reference_price=_opt(advice, "reference_price"),
            slippage_bps=dec(advice["slippage_bps"], "slippage_bps"),
            depth_qty=dec(advice["depth_qty"], "depth_qty"),
        ),
        time_ms=int(raw["time_ms"]),
        thresholds=_thresholds(raw["thresholds"]),
    )


def exposure(raw: Mapping[str, Any]) -> AccountExposure:
    """One account of a ``GET /control/population`` reply."""
    return AccountExposure(
        account_id=str(raw["account_id"]),
        label=str(raw.get("label", "")),
        wallet_balance=dec(raw["wallet_balance"], "wallet_balance"),
        cross_wallet_balance=dec(raw["cross_wallet_balance"], "cross_wallet_balance"),
        positions=tuple(bw.position(row, None) for row in raw.get("positions", ())),
        exempt=bool(raw.get("exempt", False)),
    )


def account_liquidation(raw: Mapping[str, Any]) -> AccountLiquidation:
    """One row of ``GET /control/liquidations`` (a ``forceOrders`` row with ``account_id``)."""
    account_id = str(raw["account_id"])
    return AccountLiquidation(account_id=account_id, event=bw.liquidation(raw, own=True))
