"""Safety for runs against real venues (DESIGN.md "Testnet safety").

* A production URL is refused unless the user passes ``--allow-mainnet``.
* Every order is checked against a per-order and a per-run notional cap *before* it is sent.
* Every order carries a client order id with the run's prefix, so the run can find its own.
* When a venue is closed (a check ends: pass, failure or Ctrl-C), the run cancels its open orders
  and flattens the positions it opened, and records what it cleaned.
* API keys, secrets and request signatures never reach logs, results or reports.

:class:`SafeAccount` wraps the venue's trading account with all of that; the plugin hands
checks that wrapper. Simulated venues get no caps and no cleanup (they are thrown away after each
check) unless asked, but the same client ids.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from urllib.parse import urlparse

from harness.errors import ConfigError, PerpcheckError, Rejected
from harness.model import (
    Balance,
    ClientOrderId,
    FeeRates,
    Fill,
    IncomeRecord,
    IncomeType,
    LiquidationBand,
    LiquidationEvent,
    MarginMode,
    Order,
    OrderId,
    OrderRequest,
    OrderType,
    Position,
    Side,
)
from harness.venue import Account

__all__ = [
    "PRODUCTION_HOSTS",
    "REDACTOR",
    "CleanupReport",
    "MainnetRefused",
    "NotionalGuard",
    "Redactor",
    "SafeAccount",
    "SafetyRefused",
    "check_url",
    "run_prefix",
]

#: Hosts that move real money. A URL on one of them is refused without ``--allow-mainnet``.
PRODUCTION_HOSTS = frozenset(
    {
        "fapi.binance.com",
        "fstream.binance.com",
        "dstream.binance.com",
        "dapi.binance.com",
        "api.binance.com",
        "api.bybit.com",
        "api.bytick.com",
        "www.okx.com",
        "aws.okx.com",
        "www.bitmex.com",
        "api.hyperliquid.xyz",
    }
)

MAX_CLIENT_ID = 36  # Binance newClientOrderId: ^[.A-Z:/a-z0-9_-]{1,36}$


class MainnetRefused(ConfigError):  # noqa: N818 - a verdict, named like Rejected
    """A production endpoint was configured without ``--allow-mainnet``."""


class SafetyRefused(PerpcheckError):  # noqa: N818 - a verdict, named like Rejected
    """An order was stopped before it was sent (notional caps); nothing reached the venue."""


def check_url(url: str, *, allow_mainnet: bool = False, demo: bool = False) -> None:
    """Refuse a production URL unless mainnet is explicitly allowed.

    ``demo`` is for venues whose demo environment shares the production host and is selected
    by a header (OKX demo trading): the caller vouches that the header is set.
    """
    # A trailing dot (the fully qualified name) reaches the same host.
    host = (urlparse(url).hostname or "").lower().rstrip(".")
    if host in PRODUCTION_HOSTS and not demo and not allow_mainnet:
        msg = (
            f"{url} is a production endpoint: perpcheck refuses to trade real money; "
            "use the venue's test environment, or pass --allow-mainnet if you really mean it"
        )
        raise MainnetRefused(msg)


def run_prefix(run_id: str) -> str:
    """A short client-id prefix for a run: ``pc`` + up to 8 safe characters of the run id."""
    tail = re.sub(r"[^A-Za-z0-9]", "", run_id)[-8:]
    return f"pc{tail}-"


@dataclass(slots=True)
class NotionalGuard:
    """Per-order and per-run notional caps (None: no cap), checked before an order is sent.

    Reduce-only orders are never refused: they can only lower exposure.
    """

    per_order: Decimal | None = None
    per_run: Decimal | None = None
    used: Decimal = Decimal(0)

    @property
    def capped(self) -> bool:
        return self.per_order is not None or self.per_run is not None

    def admit(self, request: OrderRequest, reference_price: Decimal) -> None:
        if request.reduce_only:
            return
        price = request.price if request.price is not None else reference_price
        notional = abs(request.quantity) * price
        if self.per_order is not None and notional > self.per_order:
            msg = (
                f"order {request.quantity} {request.symbol} (notional {notional:.2f}) exceeds the "
                f"per-order cap {self.per_order}; raise --max-order-notional to allow it"
            )
            raise SafetyRefused(msg)
        if self.per_run is not None and self.used + notional > self.per_run:
            msg = (
                f"order {request.quantity} {request.symbol} would bring this run's notional to "
                f"{self.used + notional:.2f}, over the per-run cap {self.per_run}; raise "
                "--max-run-notional to allow it"
            )
            raise SafetyRefused(msg)
        self.used += notional


@dataclass(slots=True)
class CleanupReport:
    """What a closing venue cleaned up for the run."""

    cancelled: list[str] = field(default_factory=list)  # client order ids
    flattened: list[tuple[str, str]] = field(default_factory=list)  # (symbol, quantity closed)
    errors: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.cancelled or self.flattened or self.errors)


class Redactor:
    """Scrubs secrets from text: registered values and anything that looks like a signature."""

    _PATTERNS = (
        re.compile(r"(signature=)[0-9A-Fa-f]{16,}"),
        re.compile(r"(X-MBX-APIKEY['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+", re.IGNORECASE),
    )

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def register(self, *secrets: str | None) -> None:
        for secret in secrets:
            if secret and len(secret) >= 6:
                self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        for pattern in self._PATTERNS:
            text = pattern.sub(r"\1[redacted]", text)
        return text

    def logging_filter(self) -> logging.Filter:
        redactor = self

        class _Filter(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                record.msg = redactor(record.getMessage())
                record.args = ()
                return True

        return _Filter()


#: The process-wide redactor; adapters register their keys with it, writers pass text through it.
REDACTOR = Redactor()


class SafeAccount:
    """An :class:`~harness.venue.Account` with caps, run-prefixed client ids and cleanup.

    Client order ids are translated both ways: the venue sees ``prefix + id``, the check sees
    its own id, so ``get_order(client_order_id=...)`` keeps working.
    """

    def __init__(
        self,
        inner: Account,
        *,
        prefix: str,
        guard: NotionalGuard,
        mark_of: Callable[[str], Awaitable[Decimal]],
    ) -> None:
        self._inner = inner
        self._prefix = prefix
        self._guard = guard
        self._mark_of = mark_of
        self._seq = 0
        self._touched: dict[str, Decimal] = {}  # symbol -> position before the run touched it

    @property
    def account_id(self) -> str:
        return self._inner.account_id

    @property
    def inner(self) -> Account:
        return self._inner

    def _outgoing(self, client_order_id: str | None) -> ClientOrderId:
        if client_order_id is None:
            self._seq += 1
            client_order_id = f"{self._seq}"
        return ClientOrderId((self._prefix + client_order_id)[:MAX_CLIENT_ID])

    def client_id_seen(self, venue_id: str) -> str:
        """A client id as the venue has it, as the check named it (the run's prefix off).

        Venue event streams opened for this account translate with it too
        (harness.streams.as_account_sees)."""
        return venue_id[len(self._prefix) :] if venue_id.startswith(self._prefix) else venue_id

    def _incoming(self, order: Order) -> Order:
        cid = order.client_order_id
        if cid.startswith(self._prefix):
            return replace(order, client_order_id=ClientOrderId(self.client_id_seen(cid)))
        return order

    async def place_order(self, request: OrderRequest) -> Order:
        if self._guard.capped and not request.reduce_only:
            # Only a capped market order needs a reference price (one more request).
            reference = request.price or await self._mark_of(request.symbol)
            self._guard.admit(request, reference)
        if request.symbol not in self._touched:
            self._touched[request.symbol] = await self._position_qty(request.symbol)
        outgoing = replace(request, client_order_id=self._outgoing(request.client_order_id))
        return self._incoming(await self._inner.place_order(outgoing))

    async def cancel_order(
        self,
        symbol: str,
        *,
        order_id: OrderId | None = None,
        client_order_id: ClientOrderId | None = None,
    ) -> Order:
        cid = self._outgoing(client_order_id) if client_order_id is not None else None
        return self._incoming(
            await self._inner.cancel_order(symbol, order_id=order_id, client_order_id=cid)
        )

    async def get_order(
        self,
        symbol: str,
        *,
        order_id: OrderId | None = None,
        client_order_id: ClientOrderId | None = None,
    ) -> Order:
        cid = self._outgoing(client_order_id) if client_order_id is not None else None
        return self._incoming(
            await self._inner.get_order(symbol, order_id=order_id, client_order_id=cid)
        )

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [self._incoming(o) for o in await self._inner.open_orders(symbol)]

    # -- the rest of the Account protocol, passed through ---------------------------------------
    async def cancel_all(self, symbol: str) -> None:
        await self._inner.cancel_all(symbol)

    async def fills(self, symbol: str, since_ms: int | None = None) -> list[Fill]:
        return await self._inner.fills(symbol, since_ms)

    async def positions(self) -> list[Position]:
        return await self._inner.positions()

    async def balance(self) -> Balance:
        return await self._inner.balance()

    async def income(
        self,
        income_type: IncomeType | None = None,
        symbol: str | None = None,
        since_ms: int | None = None,
    ) -> list[IncomeRecord]:
        return await self._inner.income(income_type, symbol, since_ms)

    async def commission_rates(self, symbol: str) -> FeeRates:
        return await self._inner.commission_rates(symbol)

    async def set_leverage(self, symbol: str, leverage: int) -> int:
        return await self._inner.set_leverage(symbol, leverage)

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> None:
        await self._inner.set_margin_mode(symbol, mode)

    async def add_isolated_margin(self, symbol: str, amount: Decimal) -> None:
        await self._inner.add_isolated_margin(symbol, amount)

    async def liquidation_band(self, symbol: str) -> LiquidationBand | None:
        return await self._inner.liquidation_band(symbol)

    async def liquidations(
        self, symbol: str | None = None, since_ms: int | None = None
    ) -> list[LiquidationEvent]:
        return await self._inner.liquidations(symbol, since_ms)

    async def _position_qty(self, symbol: str) -> Decimal:
        for pos in await self._inner.positions():
            if pos.symbol == symbol:
                return pos.quantity
        return Decimal(0)

    async def cleanup(self) -> CleanupReport:
        """Cancel the run's open orders and bring touched positions back to where they were."""
        report = CleanupReport()
        for symbol, before in self._touched.items():
            try:
                for order in await self._inner.open_orders(symbol):
                    if order.client_order_id.startswith(self._prefix):
                        await self._inner.cancel_order(symbol, order_id=order.order_id)
                        report.cancelled.append(order.client_order_id)
                excess = await self._position_qty(symbol) - before
                if excess:
                    side = Side.SELL if excess > 0 else Side.BUY
                    closing = OrderRequest(
                        symbol=symbol,
                        side=side,
                        type=OrderType.MARKET,
                        quantity=abs(excess),
                        reduce_only=True,
                        client_order_id=self._outgoing(f"flat-{symbol}"),
                    )
                    await self._inner.place_order(closing)
                    report.flattened.append((symbol, str(abs(excess))))
            except (PerpcheckError, Rejected) as exc:
                report.errors.append(f"{symbol}: {exc}")
        return report
