"""Domain value types: validation at construction, exact arithmetic helpers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.sim.config import BTC_BRACKETS
from harness.model import (
    Bracket,
    Instrument,
    OrderRequest,
    OrderType,
    PricePath,
    Side,
    TimeInForce,
    dec,
    quantize_down,
    quantize_up,
)


def _instrument(**overrides: object) -> Instrument:
    fields: dict[str, object] = {
        "symbol": "BTCUSDT",
        "base_asset": "BTC",
        "quote_asset": "USDT",
        "margin_asset": "USDT",
        "tick_size": Decimal("0.10"),
        "step_size": Decimal("0.001"),
        "min_qty": Decimal("0.001"),
        "max_qty": Decimal(1000),
        "market_max_qty": Decimal(120),
        "min_price": Decimal("556.80"),
        "max_price": Decimal(4529764),
        "min_notional": Decimal(100),
        "brackets": BTC_BRACKETS,
    }
    fields.update(overrides)
    return Instrument(**fields)  # type: ignore[arg-type]


def test_money_is_never_built_from_float() -> None:
    assert dec("0.1") + dec("0.2") == Decimal("0.3")
    with pytest.raises(TypeError, match="float"):
        dec(0.1)  # type: ignore[arg-type]


def test_quantize_rounds_to_the_named_side() -> None:
    assert quantize_down(Decimal("60000.17"), Decimal("0.10")) == Decimal("60000.1")
    assert quantize_up(Decimal("60000.11"), Decimal("0.10")) == Decimal("60000.2")
    assert quantize_up(Decimal("60000.10"), Decimal("0.10")) == Decimal("60000.1")


def test_instrument_filters_follow_binance_arithmetic() -> None:
    inst = _instrument()
    assert inst.on_tick(Decimal("60000.1"))
    assert not inst.on_tick(Decimal("60000.05"))
    assert inst.on_step(Decimal("0.002"))
    assert not inst.on_step(Decimal("0.0025"))
    assert inst.max_leverage == 125


def test_instrument_rejects_brackets_with_gaps() -> None:
    first, second, *rest = BTC_BRACKETS
    gap = Bracket(
        bracket=2,
        initial_leverage=second.initial_leverage,
        notional_floor=second.notional_floor + 1,
        notional_cap=second.notional_cap,
        maint_margin_ratio=second.maint_margin_ratio,
        cum=second.cum,
    )
    with pytest.raises(ValueError, match="bracket 1 ends at 50000 but bracket 2 starts at 50001"):
        _instrument(brackets=(first, gap, *rest))


def test_instrument_rejects_non_positive_tick() -> None:
    with pytest.raises(ValueError, match="tick_size=0 must be > 0"):
        _instrument(tick_size=Decimal(0))


def test_bracket_validates_its_range_and_rate() -> None:
    with pytest.raises(ValueError, match="notional_cap"):
        Bracket(
            bracket=1,
            initial_leverage=10,
            notional_floor=Decimal(10),
            notional_cap=Decimal(5),
            maint_margin_ratio=Decimal("0.01"),
            cum=Decimal(0),
        )
    with pytest.raises(ValueError, match="maint_margin_ratio"):
        Bracket(
            bracket=1,
            initial_leverage=10,
            notional_floor=Decimal(0),
            notional_cap=Decimal(5),
            maint_margin_ratio=Decimal(1),
            cum=Decimal(0),
        )


def test_order_request_checks_structure_only() -> None:
    req = OrderRequest(
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("-1"),
        price=Decimal("1.234567"),
    )
    assert req.time_in_force is TimeInForce.GTC  # default for LIMIT
    with pytest.raises(ValueError, match="LIMIT order needs a price"):
        OrderRequest(symbol="X", side=Side.BUY, type=OrderType.LIMIT, quantity=Decimal(1))
    with pytest.raises(ValueError, match="MARKET order takes neither"):
        OrderRequest(
            symbol="X",
            side=Side.BUY,
            type=OrderType.MARKET,
            quantity=Decimal(1),
            price=Decimal(1),
        )


def test_price_path_steps_and_interpolates() -> None:
    step = PricePath(points=((0, Decimal(100)), (1000, Decimal(90))))
    assert step.price_at(999) == Decimal(100)
    assert step.price_at(1000) == Decimal(90)
    assert step.price_at(10**9) == Decimal(90)
    linear = PricePath(points=((0, Decimal(100)), (1000, Decimal(90))), linear=True)
    assert linear.price_at(250) == Decimal("97.5")
    assert linear.duration_ms == 1000


def test_price_path_refuses_unordered_or_non_positive_points() -> None:
    with pytest.raises(ValueError, match="ascending"):
        PricePath(points=((1000, Decimal(1)), (0, Decimal(1))))
    with pytest.raises(ValueError, match="> 0"):
        PricePath(points=((0, Decimal(0)),))


def test_side_sign_and_opposite() -> None:
    assert Side.BUY.sign == 1
    assert Side.SELL.sign == -1
    assert Side.BUY.opposite is Side.SELL
