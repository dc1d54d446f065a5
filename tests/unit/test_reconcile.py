"""harness/reconcile.py: intents found, absent ones placed once, duplicates and orphans named."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import cast

import pytest

from harness.backoff import Backoff
from harness.clock import VirtualClock
from harness.errors import Rejected, Unavailable
from harness.model import (
    ClientOrderId,
    Fill,
    Order,
    OrderId,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)
from harness.reconcile import find_order, reconcile
from harness.venue import Account

D = Decimal
CID = ClientOrderId
pytestmark = pytest.mark.asyncio
DOWN = "503 Service Unavailable"
LOST = "connection closed after the order executed"


@dataclass
class FakeAccount:
    """An in-memory account; ``script`` says what each next call does: "ok", "down" (no answer,
    nothing done), "lost" (done, answer lost)."""

    orders: list[Order] = field(default_factory=list)
    fills_: list[Fill] = field(default_factory=list)
    script: list[str] = field(default_factory=list)
    calls: int = 0

    @property
    def account_id(self) -> str:
        return "fake"

    def _fate(self) -> str:
        self.calls += 1
        return self.script.pop(0) if self.script else "ok"

    def add(self, cid: str, status: OrderStatus = OrderStatus.NEW, symbol: str = "BTC") -> Order:
        order = Order(
            order_id=OrderId(str(len(self.orders) + 1)),
            client_order_id=CID(cid),
            symbol=symbol,
            side=Side.BUY,
            type=OrderType.LIMIT,
            time_in_force=None,
            price=D(1),
            orig_qty=D(1),
            executed_qty=D(1) if status is OrderStatus.FILLED else D(0),
            cum_quote=D(0),
            status=status,
            reduce_only=False,
            time_ms=0,
            update_time_ms=0,
        )
        self.orders.append(order)
        if status is OrderStatus.FILLED:
            self.fills_.append(
                Fill(
                    trade_id=len(self.fills_) + 1,
                    order_id=order.order_id,
                    symbol=symbol,
                    side=Side.BUY,
                    price=D(1),
                    qty=D(1),
                    quote_qty=D(1),
                    commission=D(0),
                    commission_asset="USDT",
                    maker=False,
                    realized_pnl=D(0),
                    time_ms=0,
                )
            )
        return order

    async def place_order(self, request: OrderRequest) -> Order:
        fate = self._fate()
        if fate == "down":
            raise Unavailable(DOWN)
        assert request.client_order_id is not None
        order = self.add(request.client_order_id)
        if fate == "lost":
            raise Unavailable(LOST)
        return order

    async def get_order(
        self,
        symbol: str,
        *,
        order_id: OrderId | None = None,
        client_order_id: ClientOrderId | None = None,
    ) -> Order:
        if self._fate() == "down":
            raise Unavailable(DOWN)
        for order in reversed(self.orders):
            if order.order_id == order_id or order.client_order_id == client_order_id:
                return order
        raise Rejected(-2013, "Order does not exist.")

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        if self._fate() == "down":
            raise Unavailable(DOWN)
        return [o for o in self.orders if o.status is OrderStatus.NEW]

    async def fills(self, symbol: str, since_ms: int | None = None) -> list[Fill]:
        if self._fate() == "down":
            raise Unavailable(DOWN)
        return [f for f in self.fills_ if f.symbol == symbol]


def as_account(fake: FakeAccount) -> Account:
    """The fake implements the part of the Account protocol reconciliation uses."""
    return cast(Account, fake)


def _intent(cid: str) -> OrderRequest:
    return OrderRequest(
        symbol="BTC",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=D(1),
        price=D(1),
        client_order_id=CID(cid),
    )


def _backoff(attempts: int = 4) -> Backoff:
    return Backoff(clock=VirtualClock(), max_attempts=attempts)


async def test_present_intents_are_found_and_absent_ones_placed_exactly_once() -> None:
    account = FakeAccount()
    account.add("pc-1")
    account.add("pc-2", OrderStatus.FILLED)
    intents = {CID(c): _intent(c) for c in ("pc-1", "pc-2", "pc-3")}
    result = await reconcile(as_account(account), intents, _backoff(), prefix="pc-")
    assert set(result.found) == {"pc-1", "pc-2"}
    assert result.absent == ["pc-3"]
    assert set(result.placed) == {"pc-3"}
    assert result.clean
    assert [o.client_order_id for o in account.orders] == ["pc-1", "pc-2", "pc-3"]
    # A second pass finds everything and places nothing.
    again = await reconcile(as_account(account), intents, _backoff(), prefix="pc-")
    assert set(again.found) == set(intents)
    assert not again.placed
    assert len(account.orders) == 3


async def test_a_lost_answer_on_the_retry_is_looked_up_not_sent_twice() -> None:
    account = FakeAccount()
    # lookup: absent; placement: executed, answer lost; lookup after it: found.
    account.script = ["ok", "lost"]
    result = await reconcile(
        as_account(account), {CID("pc-1"): _intent("pc-1")}, _backoff(), prefix="pc-"
    )
    assert [o.client_order_id for o in account.orders] == ["pc-1"]
    assert set(result.placed) == {"pc-1"}
    assert result.clean


async def test_an_unanswered_lookup_is_unknown_and_nothing_is_sent() -> None:
    account = FakeAccount(script=["down"] * 3)
    result = await reconcile(
        as_account(account), {CID("pc-1"): _intent("pc-1")}, _backoff(attempts=3), prefix="pc-"
    )
    assert result.unknown == ["pc-1"]
    assert not account.orders
    assert not result.clean


async def test_duplicates_and_orphans_are_named_and_foreign_orders_ignored() -> None:
    account = FakeAccount()
    first = account.add("pc-1", OrderStatus.FILLED)
    second = account.add("pc-1")  # the same intent accepted twice
    stray = account.add("pc-9")  # an order of this run that no intent names
    account.add("other-run-1")  # someone else's order on a shared account
    result = await reconcile(
        as_account(account), {CID("pc-1"): _intent("pc-1")}, _backoff(), prefix="pc-"
    )
    assert result.found[CID("pc-1")] == second  # the venue's answer for the client id
    assert result.duplicates == {CID("pc-1"): [second.order_id, first.order_id]}
    assert result.orphans == [stray]
    assert not result.clean
    assert "1 duplicated, 1 orphans" in result.summary()


async def test_without_place_missing_an_absent_intent_is_only_listed() -> None:
    account = FakeAccount()
    result = await reconcile(
        as_account(account), {CID("pc-1"): _intent("pc-1")}, _backoff(), place_missing=False
    )
    assert result.absent == ["pc-1"]
    assert not result.placed
    assert not account.orders


async def test_find_order_tells_absent_from_other_refusals() -> None:
    account = FakeAccount()
    assert await find_order(as_account(account), "BTC", CID("x"), _backoff()) is None

    async def refused(*_: object, **__: object) -> Order:
        raise Rejected(-1121, "Invalid symbol.")

    account.get_order = refused  # type: ignore[method-assign]
    with pytest.raises(Rejected):
        await find_order(as_account(account), "BTC", CID("x"), _backoff())


async def test_an_intent_must_carry_its_own_client_id() -> None:
    bad = replace(_intent("pc-2"), client_order_id=CID("pc-3"))
    with pytest.raises(ValueError, match="carries client order id"):
        await reconcile(as_account(FakeAccount()), {CID("pc-2"): bad}, _backoff())


async def test_an_absent_intent_refused_when_placed_again_is_listed_as_refused() -> None:
    account = FakeAccount()

    async def refuse(request: OrderRequest) -> Order:
        raise Rejected(-2019, "Margin is insufficient.")

    account.place_order = refuse  # type: ignore[method-assign]
    result = await reconcile(as_account(account), {CID("pc-1"): _intent("pc-1")}, _backoff())
    assert result.absent == ["pc-1"]
    assert result.refused[CID("pc-1")].code == -2019
    assert not result.placed
    assert result.clean  # a refusal leaves no order: nothing duplicated or orphaned
