"""How the harness behaves when a venue throttles or fails (testing guide point 7).

* Rate limited (429): wait exactly what ``Retry-After`` says, on the venue's clock, then retry.
* Banned (418): stop sending at once; the caller decides whether to wait the ban out.
* Unavailable (5xx, dropped connection): the execution status is unknown — an order is looked up
  by its client order id *before* anything is sent again, so a lost acknowledgement never
  becomes a duplicate order.

Every decision is logged as an :class:`Event`, so a check can show what happened and when.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from harness.clock import Clock
from harness.errors import Banned, ConfigError, RateLimited, Rejected, Unavailable
from harness.model import Order, OrderRequest
from harness.venue import Account

__all__ = ["Backoff", "Event"]

T = TypeVar("T")

#: Binance "Order does not exist." — a lookup by client id that found nothing.
ORDER_NOT_FOUND = -2013


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    time_ms: int
    kind: str  # rate-limited, banned, unavailable, reconciled, not-found, retry, ok
    detail: str
    retry_after: Decimal | None = None


@dataclass(slots=True)
class Backoff:
    """Retry policy bound to a venue clock, with an event log."""

    clock: Clock
    max_attempts: int = 8
    unavailable_wait_s: Decimal = Decimal(1)  # doubled after each 5xx in a row
    events: list[Event] = field(default_factory=list)

    def _log(self, kind: str, detail: str, retry_after: Decimal | None = None) -> None:
        self.events.append(
            Event(time_ms=self.clock.now_ms(), kind=kind, detail=detail, retry_after=retry_after)
        )

    def count(self, kind: str) -> int:
        return sum(1 for e in self.events if e.kind == kind)

    async def call(self, label: str, fn: Callable[[], Awaitable[T]]) -> T:
        """``fn()`` with back-off on 429 and 5xx; a ban ends it (re-raised)."""
        wait = self.unavailable_wait_s
        for attempt in range(1, self.max_attempts + 1):
            try:
                result = await fn()
            except Banned as exc:
                self._log("banned", f"{label}: {exc}", exc.retry_after)
                raise
            except RateLimited as exc:
                self._log("rate-limited", f"{label}: {exc}", exc.retry_after)
                await self._sleep_retry_after(exc)
                continue
            except Unavailable as exc:
                self._log("unavailable", f"{label}: {exc}")
                if attempt == self.max_attempts:
                    raise
                await self.clock.sleep(float(wait))
                wait *= 2
                continue
            self._log("ok", label)
            return result
        msg = f"{label}: still throttled after {self.max_attempts} attempts"
        raise RateLimited(msg)

    async def _sleep_retry_after(self, exc: RateLimited) -> None:
        if exc.retry_after is None:
            # Without Retry-After the venue gives no safe pace: a minute, Binance's window.
            await self.clock.sleep(60)
        else:
            await self.clock.sleep(float(exc.retry_after))

    async def place(self, account: Account, request: OrderRequest) -> Order:
        """Place an order exactly once, whatever the venue throws at it.

        The request must carry a client order id: after an unknown outcome the order is looked
        up by it before any retry.
        """
        cid = request.client_order_id
        if cid is None:
            msg = "Backoff.place needs a client order id to reconcile an unknown outcome"
            raise ConfigError(msg)
        wait = self.unavailable_wait_s
        for _ in range(self.max_attempts):
            try:
                order = await account.place_order(request)
            except Banned as exc:
                self._log("banned", f"place {cid}: {exc}", exc.retry_after)
                raise
            except RateLimited as exc:
                self._log("rate-limited", f"place {cid}: {exc}", exc.retry_after)
                await self._sleep_retry_after(exc)
                continue
            except Unavailable as exc:
                self._log("unavailable", f"place {cid}: {exc}")
                found = await self._lookup(account, request)
                if found is not None:
                    self._log("reconciled", f"{cid} exists as order {found.order_id}")
                    return found
                await self.clock.sleep(float(wait))
                wait *= 2
                self._log("retry", f"place {cid}: not found, sending again")
                continue
            self._log("ok", f"place {cid}")
            return order
        msg = f"place {cid}: no answer after {self.max_attempts} attempts"
        raise Unavailable(msg)

    async def _lookup(self, account: Account, request: OrderRequest) -> Order | None:
        cid = request.client_order_id
        try:
            return await self.call(
                f"lookup {cid}", lambda: account.get_order(request.symbol, client_order_id=cid)
            )
        except Rejected as exc:
            if exc.code == ORDER_NOT_FOUND:
                self._log("not-found", f"lookup {cid}: no such order")
                return None
            raise
