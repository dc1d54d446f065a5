"""The client-order-id pattern is applied to the whole id (engine/orders.py).

``^...$`` with ``re.match`` accepted an id with a trailing newline (``$`` matches before it).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from harness.errors import Rejected
from harness.model import Side
from tests.sim.simkit import BTC, limit, make_engine


@pytest.mark.parametrize("cid", ["abc\n", "abc\r\n", "\nabc", "a\nb"])
def test_an_id_with_a_newline_is_rejected_with_1100(cid: str) -> None:
    engine = make_engine(seed=1)
    acct = engine.create_account(Decimal(100_000))
    with pytest.raises(Rejected) as err:
        engine.place_order(acct.account_id, limit(BTC, Side.BUY, "0.010", "59000", cid=cid))
    assert err.value.code == -1100
    assert not acct.orders


def test_the_same_id_without_the_newline_is_accepted() -> None:
    engine = make_engine(seed=1)
    acct = engine.create_account(Decimal(100_000))
    rec = engine.place_order(acct.account_id, limit(BTC, Side.BUY, "0.010", "59000", cid="abc"))
    assert rec.client_order_id == "abc"
