"""Each rate-limit and fault defect changes exactly what it names (engine/gateway.py).

Every test runs the same requests through the gateway of a clean engine and of one with the
defect switched on.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

import pytest

from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.gateway import Ack, Cost
from harness.errors import Banned, RateLimited, Unavailable
from harness.model import Side
from harness.venue import Faults, RateLimits
from tests.sim.simkit import BTC, limit, make_engine, market

T = TypeVar("T")
ORDER = Cost(weight=0, orders=True, signed=True)


def _both(defect: str, run: Callable[[Engine], T]) -> tuple[T, T]:
    return run(make_engine(seed=1)), run(make_engine(seed=1, defects=[defect]))


def _limited(engine: Engine) -> RateLimited:
    engine.gateway.set_limits(RateLimits(weight_per_minute=5))
    engine.gateway.enter("ip", Cost(weight=5))
    with pytest.raises(RateLimited) as info:
        engine.gateway.enter("ip", Cost(weight=1))
    return info.value


def test_weights_undercounted_counts_every_request_as_one() -> None:
    def run(engine: Engine) -> int | None:
        return engine.gateway.enter("ip", Cost(weight=20)).used_weight_1m

    assert _both("weights-undercounted", run) == (20, 1)


def test_429_without_retry_after_sends_no_retry_after() -> None:
    clean, broken = _both("429-without-retry-after", lambda e: _limited(e).retry_after)
    assert (clean, broken) == (Decimal(60), None)


def test_no_ban_answers_429_again_inside_retry_after() -> None:
    def run(engine: Engine) -> str:
        _limited(engine)
        try:
            engine.gateway.enter("ip", Cost(weight=1))
        except Banned:
            return "banned"
        except RateLimited:
            return "429 again"
        return "answered"

    assert _both("no-ban", run) == ("banned", "429 again")


def test_order_windows_ignored_accepts_past_the_limit() -> None:
    def run(engine: Engine) -> int | str:
        engine.gateway.set_limits(RateLimits(orders_per_10s=2))
        try:
            for _ in range(3):
                usage = engine.gateway.admit("ip", ORDER, "acct-1")
        except RateLimited as exc:
            return str(exc.code)
        return usage.order_count_10s or 0

    assert _both("order-windows-ignored", run) == ("-1015", 3)


def test_lost_ack_id_not_indexed_hides_the_order_from_its_client_id() -> None:
    def run(engine: Engine) -> tuple[Ack, bool]:
        acct = engine.create_account(Decimal(10_000))
        engine.gateway.set_faults(Faults(lost_ack=1))
        engine.gateway.admit("ip", ORDER, acct.account_id)
        rec = engine.place_order(acct.account_id, limit(BTC, Side.BUY, "0.002", "59000", cid="x"))
        return engine.gateway.acknowledge(acct.account_id, rec), "x" in acct.client_ids

    assert _both("lost-ack-id-not-indexed", run) == ((Ack.LOST, True), (Ack.LOST, False))


def test_maintenance_executes_orders_lets_a_placement_through_and_answers_503() -> None:
    def run(engine: Engine) -> tuple[str, Ack | None]:
        acct = engine.create_account(Decimal(10_000))
        engine.gateway.set_faults(Faults(maintenance=True))
        try:
            engine.gateway.admit("ip", ORDER, acct.account_id)
        except Unavailable:
            return "refused", None
        rec = engine.place_order(acct.account_id, market(BTC, Side.BUY, "0.002"))
        return rec.status, engine.gateway.acknowledge(acct.account_id, rec)

    assert _both("maintenance-executes-orders", run) == (
        ("refused", None),
        ("FILLED", Ack.UNAVAILABLE),
    )


def test_transact_time_at_receipt_hides_the_latency() -> None:
    def run(engine: Engine) -> int:
        acct = engine.create_account(Decimal(10_000))
        sent = engine.clock.now_ms()
        engine.gateway.set_faults(Faults(latency_ms=1_500))
        engine.gateway.admit("ip", ORDER, acct.account_id)
        rec = engine.place_order(acct.account_id, market(BTC, Side.BUY, "0.002"))
        engine.gateway.acknowledge(acct.account_id, rec)
        return rec.update_time_ms - sent

    assert _both("transact-time-at-receipt", run) == (1_500, 0)
