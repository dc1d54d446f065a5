"""Degraded-mode risk math against hand-computed figures (testing guide point 7)."""

from __future__ import annotations

from decimal import Decimal

from adapters.sim.config import BTC_BRACKETS
from harness.model import Side
from harness.oracle import (
    DegradedCosts,
    PositionInput,
    PositionSide,
    degraded_fill_price,
    expected_liquidation_loss,
    liquidation_distance,
    safe_size,
)

D = Decimal
TINY = D("1e-20")  # the oracle works at 50 digits, the expectations here at 28


def _close(a: Decimal | None, b: Decimal) -> bool:
    return a is not None and abs(a - b) < TINY


CALM = DegradedCosts(latency_ms=0, drift_per_ms=D(0), floor_bps=D(0))
LONG = PositionInput(
    symbol="BTCUSDT",
    side=PositionSide.LONG,
    quantity=D(1),
    entry_price=D(60000),
    brackets=BTC_BRACKETS,
)


def test_degraded_fill_shifts_the_book_by_the_drift_over_the_latency() -> None:
    # Asks 100 x1, 101 x1; 1.5 bought after 1 000 ms of +0.001/ms drift: the book is 101, 102;
    # walk = (101 + 0.5 x 102) / 1.5 = 101.3333...; floor 101 x 1.0001 = 101.0101 is lower.
    costs = DegradedCosts(latency_ms=1000, drift_per_ms=D("0.001"), floor_bps=D(1))
    price = degraded_fill_price([(D(100), D(1)), (D(101), D(1))], D("1.5"), Side.BUY, D(100), costs)
    assert _close(price, D(152) / D("1.5"))


def test_liquidation_distance_and_expected_loss_of_an_isolated_long() -> None:
    # LP = 56950 / 0.995 = 57236.1809... (tier 2); distance = (60000 - LP) / 60000.
    lp = D(56950) / D("0.995")
    assert _close(liquidation_distance(LONG, D(3000), D(60000)), (D(60000) - lp) / D(60000))
    # Closed exactly at LP with a 0.15 % fee: 1 x (60000 - LP) + 0.0015 x LP = 2849.67...
    loss = expected_liquidation_loss(LONG, D(3000), close_slippage=D(0), fee_rate=D("0.0015"))
    assert loss is not None
    assert _close(loss, D(60000) - lp + D("0.0015") * lp)
    assert str(loss)[:8] == "2849.673"
    # 10 bps worse: the close is LP x 0.999, the loss grows by LP x 0.001 x (1 - fee rate).
    worse = expected_liquidation_loss(
        LONG, D(3000), close_slippage=D("0.001"), fee_rate=D("0.0015")
    )
    assert worse is not None
    assert _close(worse - loss, lp * D("0.001") * (1 - D("0.0015")))


def test_safe_size_is_the_largest_step_within_the_slippage_budget() -> None:
    # Budget 5 bps over 100 = 100.05. 2 units average 100.025, 3 average exactly 100.05, 3.5
    # average 100.0571 > budget: 3.
    asks = [(D(100), D(1)), (D("100.05"), D(1)), (D("100.1"), D(2))]
    assert safe_size(asks, Side.BUY, D(100), D(5), D("0.5"), CALM) == D(3)
    # With 1 000 ms of +0.0002/ms drift (0.2), even the first unit costs 100.2: nothing is safe.
    drifting = DegradedCosts(latency_ms=1000, drift_per_ms=D("0.0002"), floor_bps=D(0))
    assert safe_size(asks, Side.BUY, D(100), D(5), D("0.5"), drifting) == D(0)
