"""harness.probes helpers that judge what a venue publishes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from harness.probes import published_unit

D = Decimal
UNIT = D("0.00000001")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (D("-0.01220000"), UNIT),  # Binance: 8 places, the atomic unit
        (D("0E-8"), UNIT),
        (D("0.000000001"), UNIT),  # finer than the atomic unit: still the atomic unit
        (D("0.1269"), D("0.0001")),  # Bybit-style 4 places: judged at its own precision
        (D("10.003"), D("0.001")),
        (D("12"), D(1)),
        (D("1.2E+3"), D(100)),
        (D("NaN"), UNIT),
        (D("Infinity"), UNIT),
    ],
)
def test_published_unit_is_the_coarser_of_the_atomic_unit_and_the_last_place(
    value: Decimal, expected: Decimal
) -> None:
    assert published_unit(value, UNIT) == expected
