"""Funding payments rounded to the unit and their compounding (harness/oracle/funding.py).

Worked by hand (perp-mechanics.md §3(a) payment ``s·Q·P·F``, §4 tiers, §6 isolated LP
``(WB + cum − s·Q·EP) / (Q·mmr − s·Q)``). Brackets: tier 1 ``[0, 10 000)`` at 0.5 % (cum 0),
tier 2 ``[10 000, 100 000)`` at 1 % (cum = 10 000 × 0.5 % = 50).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

import pytest

from harness.model import Bracket
from harness.oracle import PositionInput, PositionSide, funding_projection, settled_payment

D = Decimal
UNIT = D("0.00000001")
BRACKETS = (
    Bracket(
        bracket=1,
        initial_leverage=100,
        notional_floor=D(0),
        notional_cap=D(10_000),
        maint_margin_ratio=D("0.005"),
        cum=D(0),
    ),
    Bracket(
        bracket=2,
        initial_leverage=75,
        notional_floor=D(10_000),
        notional_cap=D(100_000),
        maint_margin_ratio=D("0.01"),
        cum=D(50),
    ),
)


def position(side: str, qty: str, entry: str) -> PositionInput:
    return PositionInput(
        symbol="ETHUSDT",
        side=PositionSide(side),
        quantity=D(qty),
        entry_price=D(entry),
        brackets=BRACKETS,
    )


def test_payer_rounds_up_and_receiver_rounds_down_to_the_unit() -> None:
    # 0.003 × 3001.23456789 × 0.00012345 = 0.0011115072222180615
    assert settled_payment(D("0.003"), D("3001.23456789"), D("0.00012345"), UNIT) == D("0.00111151")
    assert settled_payment(D("-0.003"), D("3001.23456789"), D("0.00012345"), UNIT) == D(
        "-0.00111150"
    )
    half_even = settled_payment(
        D("0.003"), D("3001.23456789"), D("0.00012345"), UNIT, ROUND_HALF_EVEN
    )
    assert half_even == D("0.00111151")


def test_a_long_paying_001_per_cycle_reaches_maintenance_after_cycle_12() -> None:
    # Q = 2 at 3000, mark 3000, F = 0.1 %: 6 per cycle out of a wallet of 100; MM = 6000 × 0.5 %
    # = 30, so equity (= wallet, no PnL) first drops to <= 30 after 12 payments (28).
    result = funding_projection(
        position("long", "2", "3000"), D(100), rate=D("0.001"), mark=D(3000), cycles=14
    )
    first = result.cycles[0]
    assert (first.cycle, first.payment, first.wallet, first.equity) == (1, D(6), D(94), D(94))
    assert first.maint_margin == D(30)
    assert first.margin_ratio == D("0.31914893617021276595744680851063829787234042553191")  # 30/94
    # LP = (94 + 0 − 2 × 3000) / (2 × 0.005 − 2) = 5906 / 1.99
    assert first.liquidation_price == D("2967.8391959798994974874371859296482412060301507538")
    # distance = mark − LP = (5970 − 5906) / 1.99 = 32.1608…
    distance = first.liquidation_distance
    assert distance is not None
    assert abs(distance - D("32.16080402010050251256281407")) < D("1e-26")
    assert [c.wallet for c in result.cycles] == [D(100 - 6 * k) for k in range(1, 15)]
    assert result.cycles_to_liquidation == 12
    assert [c.liquidatable for c in result.cycles[10:13]] == [False, True, True]


def test_a_short_receiving_funding_grows_its_wallet_and_is_never_liquidated() -> None:
    result = funding_projection(
        position("short", "2", "3000"), D(100), rate=D("0.001"), mark=D(3000), cycles=3
    )
    assert [c.payment for c in result.cycles] == [D(-6)] * 3
    assert [c.wallet for c in result.cycles] == [D(106), D(112), D(118)]
    # LP = (106 + 0 + 6000) / (0.01 + 2) = 6106 / 2.01; the mark is below it by 37.81...
    first = result.cycles[0]
    assert first.liquidation_price == D("3037.8109452736318407960199004975124378109452736318")
    # s·(mark − LP) with s = −1: 37.81…, positive while the short is safe
    assert first.liquidation_distance == D("37.8109452736318407960199004975124378109452736318")
    assert result.cycles_to_liquidation is None


def test_each_cycle_pays_and_is_valued_at_its_own_mark_and_rate() -> None:
    # Long 1 at 3000, wallet 50: payments 3000 × 0.1 % = 3, 3100 × −0.05 % = −1.55,
    # 2900 × 0.2 % = 5.8; equity adds the PnL at each mark (0, +100, −100).
    result = funding_projection(
        position("long", "1", "3000"),
        D(50),
        rate=[D("0.001"), D("-0.0005"), D("0.002")],
        mark=[D(3000), D(3100), D(2900)],
    )
    assert [c.payment for c in result.cycles] == [D(3), D("-1.55"), D("5.8")]
    assert [c.wallet for c in result.cycles] == [D(47), D("48.55"), D("42.75")]
    assert [c.equity for c in result.cycles] == [D(47), D("148.55"), D("-57.25")]
    assert [c.maint_margin for c in result.cycles] == [D(15), D("15.5"), D("14.5")]
    assert result.cycles[2].margin_ratio is None  # equity <= 0
    assert result.cycles_to_liquidation == 3


def test_rounded_payments_compound_from_the_rounded_wallet() -> None:
    # 0.003 × 3001.23456789 × 0.00012345 paid three times, each rounded up to 0.00111151.
    result = funding_projection(
        position("long", "0.003", "3000"),
        D(10),
        rate=D("0.00012345"),
        mark=D("3001.23456789"),
        cycles=3,
    )
    assert [c.wallet for c in result.cycles] == [
        D("9.99888849"),
        D("9.99777698"),
        D("9.99666547"),
    ]
    exact = funding_projection(
        position("long", "0.003", "3000"),
        D(10),
        rate=D("0.00012345"),
        mark=D("3001.23456789"),
        cycles=3,
        unit=None,
    )
    assert exact.cycles[-1].wallet == D(10) - 3 * D("0.0011115072222180615")


def test_the_tier_moves_with_the_mark() -> None:
    # Q = 4 at 2400 → notional 9 600 (tier 1); at mark 2600 it is 10 400 (tier 2):
    # MM = 10 400 × 1 % − 50 = 54.
    result = funding_projection(
        position("long", "4", "2400"), D(1000), rate=D(0), mark=D(2600), cycles=1
    )
    assert result.cycles[0].maint_margin == D(54)
    assert result.cycles[0].payment == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": D("0.001"), "mark": D(3000)}, "give cycles="),
        ({"rate": [D("0.001")] * 2, "mark": [D(3000)] * 3}, "give one"),
        ({"rate": [D("0.001")] * 2, "mark": D(3000), "cycles": 3}, "give one per cycle"),
        ({"rate": D("0.001"), "mark": D(0), "cycles": 1}, "every mark must be > 0"),
        ({"rate": D("0.001"), "mark": D(3000), "cycles": -1}, "non-negative"),
    ],
)
def test_projection_refuses_inconsistent_inputs(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        funding_projection(position("long", "1", "3000"), D(10), **kwargs)  # type: ignore[arg-type]


def test_rounding_mode_is_a_parameter() -> None:
    result = funding_projection(
        position("short", "0.003", "3000"),
        D(10),
        rate=D("0.00012345"),
        mark=D("3001.23456789"),
        cycles=1,
        rounding=ROUND_CEILING,
    )
    assert result.cycles[0].payment == D("-0.00111150")
