"""The harness's back-off: waits Retry-After, stops at a ban, reconciles unknown outcomes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import pytest

from harness.backoff import Backoff
from harness.clock import VirtualClock
from harness.errors import Banned, ConfigError, RateLimited, Rejected, Unavailable
from harness.model import (
    ClientOrderId,
    Order,
    OrderId,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

D = Decimal


def _order(cid: str) -> Order:
    return Order(
        order_id=OrderId("7"),
        client_order_id=ClientOrderId(cid),
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        price=D(50000),
        orig_qty=D("0.01"),
        executed_qty=D(0),
        cum_quote=D(0),
        status=OrderStatus.NEW,
        reduce_only=False,
        time_ms=0,
        update_time_ms=0,
    )


REQUEST = OrderRequest(
    symbol="BTCUSDT",
    side=Side.BUY,
    type=OrderType.LIMIT,
    quantity=D("0.01"),
    price=D(50000),
    client_order_id=ClientOrderId("cid-1"),
)


class ScriptedAccount:
    """Raises the scripted outcomes of place_order in turn; remembers what was 'executed'."""

    def __init__(self, script: list[Callable[[], object]], exists_after_loss: bool) -> None:
        self.script = script
        self.placed: list[str] = []
        self.exists_after_loss = exists_after_loss
        self.lookups = 0

    async def place_order(self, request: OrderRequest) -> Order:
        step = self.script.pop(0)
        outcome = step()
        if isinstance(outcome, Exception):
            if isinstance(outcome, Unavailable) and self.exists_after_loss:
                self.placed.append(str(request.client_order_id))
            raise outcome
        self.placed.append(str(request.client_order_id))
        return _order(str(request.client_order_id))

    async def get_order(
        self, symbol: str, *, order_id: object = None, client_order_id: object = None
    ) -> Order:
        self.lookups += 1
        if str(client_order_id) in self.placed:
            return _order(str(client_order_id))
        raise Rejected(-2013, "Order does not exist.")


def _run(account: ScriptedAccount) -> tuple[Order, Backoff, VirtualClock]:
    clock = VirtualClock(0)
    backoff = Backoff(clock)
    order = asyncio.run(backoff.place(account, REQUEST))  # type: ignore[arg-type]
    return order, backoff, clock


def test_rate_limited_waits_exactly_retry_after_then_places_once() -> None:
    account = ScriptedAccount(
        [lambda: RateLimited("429", retry_after=D(7), code=-1003), lambda: None],
        exists_after_loss=False,
    )
    order, backoff, clock = _run(account)
    assert clock.now_ms() == 7000
    assert account.placed == ["cid-1"]
    assert [e.kind for e in backoff.events] == ["rate-limited", "ok"]
    assert order.client_order_id == "cid-1"


def test_lost_ack_is_reconciled_by_client_id_without_resending() -> None:
    account = ScriptedAccount([lambda: Unavailable("dropped")], exists_after_loss=True)
    order, backoff, _ = _run(account)
    assert account.placed == ["cid-1"]  # executed once, never sent again
    assert account.lookups == 1
    assert [e.kind for e in backoff.events] == ["unavailable", "ok", "reconciled"]
    assert order.order_id == "7"


def test_a_503_that_did_not_execute_is_looked_up_then_sent_again() -> None:
    account = ScriptedAccount([lambda: Unavailable("503"), lambda: None], exists_after_loss=False)
    _, backoff, clock = _run(account)
    assert account.placed == ["cid-1"]
    assert [e.kind for e in backoff.events] == ["unavailable", "not-found", "retry", "ok"]
    assert clock.now_ms() == 1000  # the first 5xx waits one second


def test_a_ban_stops_at_once() -> None:
    account = ScriptedAccount([lambda: Banned("418", retry_after=D(120))], exists_after_loss=False)
    with pytest.raises(Banned):
        _run(account)
    assert account.placed == []


def test_placing_needs_a_client_order_id() -> None:
    backoff = Backoff(VirtualClock(0))
    request = OrderRequest(symbol="BTCUSDT", side=Side.BUY, type=OrderType.MARKET, quantity=D(1))
    with pytest.raises(ConfigError, match="client order id"):
        asyncio.run(backoff.place(ScriptedAccount([], False), request))  # type: ignore[arg-type]


def test_call_without_retry_after_waits_a_whole_minute() -> None:
    clock = VirtualClock(0)
    backoff = Backoff(clock)
    answers: list[object] = [RateLimited("429"), "ok"]

    async def flaky() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    assert asyncio.run(backoff.call("read", flaky)) == "ok"
    assert clock.now_ms() == 60_000
