"""Did my orders land? Reconciliation by client order id after faults (testing guide point 7).

After lost acknowledgements, dropped connections, 5xx bursts, maintenance or a venue restart, a
client no longer knows which of its orders exist. The rule: an order is identified by its
client order id; it is placed again only when the venue says *definitely* that no order has that
id (Binance ``-2013`` "Order does not exist."). An unanswered lookup leaves the outcome unknown
— sending again then could make a duplicate — so it is retried (:class:`~harness.backoff.Backoff`)
and, if it never answers, reported as unknown rather than guessed.

:func:`reconcile` takes the client's *intents* (client order id -> request) and returns what the
venue holds for them: the orders found, the ones it placed because they were absent, the
intents still unknown (and those the venue refused when placed again), and two defects of the
combination client + venue:

* **duplicates**: an intent seen as more than one venue order (a retry after an unknown outcome
  that was not looked up first, or a venue that accepted a client id twice);
* **orphans**: a venue order, open or filled, carrying the run's prefix (``prefix``, see
  :func:`harness.safety.run_prefix`) that no intent names: an order the client does not know.

The venue's orders are seen through the :class:`~harness.venue.Account` protocol only: the open
orders, and the orders behind the account's fills on the intents' symbols (looked up by order
id). An order that ended without a fill and is no longer open is invisible there and cannot be
an orphan that matters (it holds nothing and never traded).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

from harness.backoff import ORDER_NOT_FOUND, Backoff
from harness.errors import Rejected, Unavailable
from harness.model import ClientOrderId, Order, OrderId, OrderRequest
from harness.venue import Account

__all__ = ["Reconciliation", "find_order", "reconcile"]


@dataclass(slots=True)
class Reconciliation:
    """What the venue holds for a client's intents (module docstring)."""

    found: dict[ClientOrderId, Order] = field(default_factory=dict)
    absent: list[ClientOrderId] = field(default_factory=list)  # the venue said: no such order
    placed: dict[ClientOrderId, Order] = field(default_factory=dict)
    refused: dict[ClientOrderId, Rejected] = field(default_factory=dict)  # absent, placed: no
    unknown: list[ClientOrderId] = field(default_factory=list)
    duplicates: dict[ClientOrderId, list[OrderId]] = field(default_factory=dict)
    orphans: list[Order] = field(default_factory=list)

    @property
    def orders(self) -> dict[ClientOrderId, Order]:
        """Every intent's order: found, or placed by the reconciliation."""
        return {**self.found, **self.placed}

    @property
    def clean(self) -> bool:
        """Every intent has exactly one order and the venue holds no order nobody intended."""
        return not (self.unknown or self.duplicates or self.orphans)

    def summary(self) -> str:
        return (
            f"{len(self.found)} found, {len(self.absent)} absent, {len(self.placed)} placed, "
            f"{len(self.refused)} refused, {len(self.unknown)} unknown, "
            f"{len(self.duplicates)} duplicated, {len(self.orphans)} orphans"
        )


async def find_order(
    account: Account, symbol: str, client_order_id: ClientOrderId, backoff: Backoff
) -> Order | None:
    """The order with ``client_order_id``, or None when the venue says it has none (-2013).

    Raises:
        Unavailable: the venue did not answer, even after ``backoff``'s retries: unknown.
    """
    try:
        return await backoff.call(
            f"find {client_order_id}",
            lambda: account.get_order(symbol, client_order_id=client_order_id),
        )
    except Rejected as exc:
        if exc.code == ORDER_NOT_FOUND:
            return None
        raise


async def reconcile(
    account: Account,
    intents: Mapping[ClientOrderId, OrderRequest],
    backoff: Backoff,
    *,
    place_missing: bool = True,
    prefix: str = "",
) -> Reconciliation:
    """Look every intent up by client order id; place the definitely absent ones again.

    Args:
        account: the account the intents were sent to.
        intents: client order id -> the request sent under it (its ``client_order_id`` must be
            that id).
        backoff: the retry policy (and its event log) for lookups and placements.
        place_missing: place a definitely absent intent again (False: only list it in
            ``absent``).
        prefix: the run's client-id prefix: venue orders without it belong to someone else.
    """
    result = Reconciliation()
    for cid, request in intents.items():
        if request.client_order_id != cid:
            msg = f"intent {cid!r} carries client order id {request.client_order_id!r}"
            raise ValueError(msg)
        try:
            order = await find_order(account, request.symbol, cid, backoff)
            if order is not None:
                result.found[cid] = order
                continue
            result.absent.append(cid)
            if place_missing:
                result.placed[cid] = await backoff.place(account, request)
        except Unavailable:
            result.unknown.append(cid)
        except Rejected as exc:  # placed again and refused: definitely no order
            result.refused[cid] = exc
    await _audit(account, intents, backoff, result, prefix)
    return result


async def _audit(
    account: Account,
    intents: Mapping[ClientOrderId, OrderRequest],
    backoff: Backoff,
    result: Reconciliation,
    prefix: str,
) -> None:
    """Duplicates and orphans among the open orders and the orders behind the fills."""
    mine = {order.order_id: cid for cid, order in result.orders.items()}
    seen: dict[OrderId, Order] = {}
    for order in await backoff.call("open orders", partial(account.open_orders, None)):
        seen[order.order_id] = order
    for symbol in sorted({r.symbol for r in intents.values()}):
        fills = await backoff.call(f"fills {symbol}", partial(account.fills, symbol))
        for order_id in sorted({f.order_id for f in fills} - set(seen)):
            lookup = partial(account.get_order, symbol, order_id=order_id)
            seen[order_id] = await backoff.call(f"order {order_id}", lookup)
    for order_id, order in sorted(seen.items()):
        cid = order.client_order_id
        if order_id in mine or not cid.startswith(prefix):
            continue
        if cid in intents:
            known = result.orders.get(cid)
            ids = [known.order_id] if known is not None else []
            result.duplicates.setdefault(cid, ids).append(order_id)
        else:
            result.orphans.append(order)
