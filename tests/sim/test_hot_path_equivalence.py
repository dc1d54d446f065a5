"""Hot-path shortcuts that the reference-mode comparison (test_fast_paths.py) does not reach.

* engine/orders.py remembers the quantities and prices that passed their filters: a repeated
  value (in any representation: ``0.0100`` after ``0.01``) gets the verdict of a full check.
* engine/decimals.py shares decimals between records only when the result would be the same
  object in every respect (its remembered operations, and ``same_as``).
"""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal, localcontext

from adapters.sim.config import default_instruments
from adapters.sim.engine.decimals import commission, negated, product, same_as, signed, total
from adapters.sim.engine.orders import validate_order
from harness.errors import Rejected
from harness.model import OrderRequest, OrderType, Side, TimeInForce

D = Decimal


def _values(rng: random.Random, unit: Decimal, around: Decimal) -> list[Decimal]:
    """Values on and off ``unit``, with extra zeros, out of range, in other exponents."""
    out: list[Decimal] = []
    for _ in range(150):
        base = around + rng.randint(-400, 400) * unit
        out += [
            base,
            D(f"{base}000"),  # the same value with trailing zeros
            base + unit / 3,  # off the grid
            base + unit / 10,  # one decimal too many
            base * 10 ** rng.randint(3, 9),  # beyond the maximum
            base.scaleb(-rng.randint(2, 6)),  # below the minimum
            D(f"{base.normalize():E}"),  # exponent form
        ]
    return out


def _verdict(
    inst: object, req: OrderRequest, mark: Decimal, remember: bool
) -> tuple[str, str] | int:
    try:
        price, qty = validate_order(
            inst,  # type: ignore[arg-type]
            req,
            reference_price=mark,
            remember=remember,
        )
    except Rejected as err:
        return err.code
    return repr(price), repr(qty)


def test_remembered_values_get_the_verdict_of_a_full_check() -> None:
    rng = random.Random(20)
    inst = default_instruments()["BTCUSDT"].instrument
    mark = D(60_000)
    qtys = _values(rng, inst.step_size, D("0.2"))
    prices = _values(rng, inst.tick_size, mark)
    requests = []
    for _ in range(3_000):
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        qty = rng.choice(qtys)
        if rng.random() < 0.3:
            requests.append(
                OrderRequest(symbol="BTCUSDT", side=side, type=OrderType.MARKET, quantity=qty)
            )
        else:
            price = rng.choice(prices)
            requests.append(
                OrderRequest(
                    symbol="BTCUSDT",
                    side=side,
                    type=OrderType.LIMIT,
                    quantity=qty,
                    price=price,
                    time_in_force=TimeInForce.GTC,
                )
            )
    verdicts = [_verdict(inst, r, mark, remember=True) for r in requests]
    assert verdicts == [_verdict(inst, r, mark, remember=False) for r in requests]
    assert verdicts == [_verdict(inst, r, mark, remember=True) for r in requests]
    accepted = sum(1 for v in verdicts if isinstance(v, tuple))
    assert 300 < accepted < len(verdicts) - 300  # both kinds of verdict are exercised


def test_remembered_operations_give_exactly_what_the_computation_gives() -> None:
    rng = random.Random(21)
    pool = [D(f"{rng.randint(-999, 999)}E{rng.randint(-6, 2)}") for _ in range(40)]
    pool += [D("0"), D("-0"), D("0E-8"), D("1.0"), D("1"), D("1.00"), D("1E+1"), D("0.0005")]
    quantum = D("1E-8")
    for _ in range(4_000):
        a, b, c = rng.choice(pool), rng.choice(pool), rng.choice(pool)
        sign = rng.choice((1, -1))
        cases = [
            (product(a, b), a * b),
            (total(a, b), a + b),
            (negated(a), -a),
            (signed(sign, a), sign * a),
            (commission(a, b, c, quantum), (a * b * c).quantize(quantum, ROUND_HALF_UP)),
        ]
        for got, expected in cases:
            assert str(got) == str(expected)
            assert got.compare_total(expected) == 0
    a, b = pool[0], pool[1]
    assert product(a, b) is product(a, b)  # the same operands: the same object
    assert product(a, b) is not product(D(str(a)), b)  # other objects: computed afresh
    with localcontext() as ctx:
        ctx.prec = 2  # another context: computed in it
        assert str(product(D("1.23"), D("4.56"))) == "5.6"
    assert str(product(D("1.23"), D("4.56"))) == "5.6088"


def test_same_as_keeps_the_held_object_only_for_the_same_representation() -> None:
    kept = D("0.002")
    assert same_as(D("0.002"), kept) is kept
    assert str(same_as(D("0.0020"), kept)) == "0.0020"
    assert str(same_as(D("-0"), D("0"))) == "-0"
    assert str(same_as(D("2E-3"), kept)) == "0.002"  # the same triple, written otherwise
