"""Client order ids: the generated ``sim-<orderId>`` is made on demand, not stored.

The venue used to store a generated id per order and index every id, given or generated, in one
dict (client id -> order id, the last order given it winning; ``lost-ack-id-not-indexed``
popping an entry). Now only given ids are stored; the generated ones are found from the orders.
These tests replay random placements, duplicates, lost acks and look-ups against a model of the
old dict: every answer (order found, its clientOrderId, duplicate rejection) must be the same.
"""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.gateway import Cost
from harness.errors import Rejected
from harness.model import Side
from harness.venue import Faults
from tests.sim.simkit import BTC, ETH, limit, make_engine

ORDER = Cost(weight=0, orders=True, signed=True)


def _replay(engine: Engine, seed: int, *, duplicates: bool, lost_acks: bool) -> int:
    """Random operations checked against the old index; returns how many look-ups hit."""
    rng = random.Random(seed)
    acct = engine.create_account(Decimal(1_000_000))
    other = engine.create_account(Decimal(1_000_000))
    index: dict[str, int] = {}  # the old venue's dict
    visible: dict[int, str] = {}  # order id -> its clientOrderId
    hits = 0
    for _ in range(150):
        seq = engine.order_seq
        pool = ["a", "b", f"sim-{seq + 1}", f"sim-{seq + 2}", f"sim-{seq + 3}", f"sim-0{seq}"]
        pool += [f"sim-{rng.randint(1, seq + 1)}", f"sim-{seq}x", "sim-", "sim-1"]
        op = rng.random()
        if op < 0.15:  # another account's order: the ids skip
            engine.place_order(other.account_id, limit(BTC, Side.BUY, "0.003", "50000"))
        elif op < 0.6:
            cid = rng.choice([None, None, f"sim-{seq + 1}", f"sim-{seq + 2}", *pool])
            symbol = rng.choice([BTC, ETH])
            price = (engine.mark(symbol) * Decimal("0.9")).quantize(Decimal(1))
            req = limit(symbol, Side.BUY, "0.003" if symbol == BTC else "0.1", price, cid=cid)
            if cid is not None and cid in index and not duplicates:
                with pytest.raises(Rejected) as caught:
                    engine.place_order(acct.account_id, req)
                assert caught.value.code == -4116
                continue
            lose = lost_acks and rng.random() < 0.5
            if lose:
                engine.gateway.set_faults(Faults(lost_ack=1))
                engine.gateway.admit("ip", ORDER, acct.account_id)
            rec = engine.place_order(acct.account_id, req)
            generated = f"sim-{rec.order_id}"
            index[cid if cid is not None and cid not in index else generated] = rec.order_id
            visible[rec.order_id] = generated if cid is None else cid
            assert rec.client_order_id == visible[rec.order_id]
            if lose:
                engine.gateway.acknowledge(acct.account_id, rec)
                engine.gateway.set_faults(Faults())
                index.pop(rec.client_order_id, None)
        else:
            known = [*visible.values(), *(f"sim-{order_id}" for order_id in visible)]
            cid = rng.choice(known + pool if known and rng.random() < 0.7 else pool)
            for symbol in (BTC, ETH):
                expected = index.get(cid)
                if expected is not None and acct.orders[expected].symbol != symbol:
                    expected = None
                if expected is None:
                    with pytest.raises(Rejected) as missing:
                        engine.get_order(acct.account_id, symbol, None, cid)
                    assert missing.value.code == -2013
                    continue
                found = engine.get_order(acct.account_id, symbol, None, cid)
                assert found.order_id == expected, (cid, symbol)
                assert found.client_order_id == visible[found.order_id]
                hits += 1
    for order_id, cid in visible.items():
        assert acct.orders[order_id].client_order_id == cid
    return hits


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "defects", [(), ("duplicate-client-id-accepted",), ("lost-ack-id-not-indexed",)]
)
def test_client_id_lookups_answer_as_the_full_index_did(seed: int, defects: tuple[str]) -> None:
    engine = make_engine(seed=seed, defects=defects)
    hits = _replay(
        engine,
        seed,
        duplicates="duplicate-client-id-accepted" in defects,
        lost_acks="lost-ack-id-not-indexed" in defects,
    )
    assert hits > 5


def test_generated_ids_are_not_stored() -> None:
    engine = make_engine(seed=1)
    acct = engine.create_account(Decimal(10_000))
    rec = engine.place_order(acct.account_id, limit(BTC, Side.BUY, "0.003", "50000"))
    given = engine.place_order(acct.account_id, limit(BTC, Side.BUY, "0.003", "50000", cid="x"))
    assert rec.client_order_id == f"sim-{rec.order_id}"
    assert acct.client_ids == {"x": given.order_id}
    assert engine.get_order(acct.account_id, BTC, None, f"sim-{rec.order_id}") is rec
    # Only the canonical spelling names the order.
    with pytest.raises(Rejected):
        engine.get_order(acct.account_id, BTC, None, f"sim-0{rec.order_id}")
    with pytest.raises(Rejected):  # beyond any order id (and int()'s digit limit)
        engine.get_order(acct.account_id, BTC, None, "sim-" + "9" * 5000)
