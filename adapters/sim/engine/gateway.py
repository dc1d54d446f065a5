"""The venue's front door: request weights, rate-limit windows and injected faults.

Every request to the simulated venue passes here first, whether it arrives over HTTP
(``adapters/sim/server``) or as an in-process :class:`~adapters.sim.venue.SimVenue` call, so
that both front ends throttle and fail the same way (binance-usdm-surface.md §4, the server's
PROTOCOL.md "Rate limits" and "Faults").

* **Weights** (:data:`ENDPOINTS`, engine/gateway_weights.py, re-exported here): Binance's
  documented request weight per endpoint; a new order costs no IP weight but one on each of the
  account's order counters.
* **Windows** run on the engine's **virtual** clock and are fixed, aligned windows as Binance's
  ``intervalNum`` limits are: the client's request weight per minute, the account's orders per
  10 s and per minute. A request that would take a window past its limit is refused and charges
  nothing: 429 ``-1003`` (weight) or ``-1015`` (orders), ``Retry-After`` = whole seconds until the
  window frees it.
* **Ban**: a client that sends while told to wait (a request inside its weight ``Retry-After``, or
  an order inside its order ``Retry-After``) is banned for ``ban_ms`` (418; every request refused
  until the ban ends).
* **Faults** (:class:`~harness.venue.Faults`): maintenance and error bursts answer 503 ``-1001``
  before anything is charged or executed; latency moves a signed request's execution that far
  into virtual time; a lost ack lets an order placement execute and then drops its answer;
  ``deplete`` removes a fraction of the market maker's quotes on one side of a book at once.

Outcomes are typed: :class:`~harness.errors.RateLimited` (``code`` -1003 / -1015),
:class:`~harness.errors.Banned` and :class:`~harness.errors.Unavailable`; the server maps them to
HTTP statuses and the in-process venue lets them propagate. After an order placement executed,
:meth:`Gateway.acknowledge` says whether its answer goes out (:class:`Ack`).

Named defects (adapters/sim/defects.py) that live here: ``weights-undercounted``,
``429-without-retry-after``, ``no-ban``, ``order-windows-ignored``, ``lost-ack-id-not-indexed``,
``maintenance-executes-orders``, ``transact-time-at-receipt``.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from adapters.sim.engine.gateway_weights import (
    _METHOD_COSTS,
    ENDPOINTS,
    METHOD_CALLS,
    Cost,
    Endpoint,
    depth_weight,
    method_weights,
)
from harness.errors import Banned, ConfigError, RateLimited, Unavailable
from harness.model import Side, quantize_down
from harness.venue import Faults, RateLimits, RateUsage

if TYPE_CHECKING:
    from adapters.sim.engine.accounts import OrderRecord
    from adapters.sim.engine.exchange import Engine

__all__ = [
    "ENDPOINTS",
    "IN_PROCESS",
    "METHOD_CALLS",
    "Ack",
    "Cost",
    "Endpoint",
    "Gateway",
    "LocalClient",
    "depth_weight",
    "method_weights",
]

WEIGHT_WINDOW_MS = 60_000
ORDER_WINDOWS_MS = (10_000, 60_000)
IN_PROCESS = "in-process"  # the client key of the in-process venue (the HTTP server uses the IP)
INTERNAL_ERROR = "Internal error; unable to process your request. Please try again."


class Ack(enum.Enum):
    """What becomes of an executed order placement's answer."""

    SENT = "sent"
    LOST = "lost"  # the lost_ack fault: no answer at all (the connection closes)
    UNAVAILABLE = "unavailable"  # a 503 although the order executed (maintenance-executes-orders)


def _ceil_seconds(ms: int) -> int:
    return max(1, -(-ms // 1000))


@dataclass(slots=True)
class _Window:
    """A fixed window of ``length_ms`` aligned to multiples of it, and its count."""

    length_ms: int
    start_ms: int = -1
    count: int = 0

    def roll(self, now_ms: int) -> _Window:
        start = now_ms - now_ms % self.length_ms
        if start != self.start_ms:
            self.start_ms, self.count = start, 0
        return self

    def ends_in(self, now_ms: int) -> int:
        return self.start_ms + self.length_ms - now_ms


class Gateway:
    """Rate limits and faults of one :class:`~adapters.sim.engine.exchange.Engine`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._limits = RateLimits()
        self._faults = Faults()
        self._weight: dict[str, _Window] = {}
        self._orders: dict[str, tuple[_Window, _Window]] = {}
        self._retry_until: dict[str, int] = {}  # client -> end of its weight Retry-After
        self._order_retry_until: dict[str, int] = {}  # account -> end of its order Retry-After
        self._banned_until: dict[str, int] = {}
        # The request being served (requests are served one at a time): when it arrived, and
        # whether its answer is a 503 whatever happens (maintenance-executes-orders).
        self._received_ms = engine.clock.now_ms()
        self._fail_after = False

    # ------------------------------------------------------------------ configuration
    @property
    def limits(self) -> RateLimits:
        return self._limits

    def set_limits(self, limits: RateLimits) -> None:
        """Replace the limits; windows keep their counts (a tightened limit applies at once)."""
        for name in ("weight_per_minute", "orders_per_10s", "orders_per_minute", "ban_ms"):
            value = getattr(limits, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                msg = f"rate limit {name}={value!r} must be a non-negative integer"
                raise ConfigError(msg)
        self._limits = limits

    @property
    def faults(self) -> Faults:
        """The standing faults, with what is left of the counted ones (``deplete`` is one-shot)."""
        return self._faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the faults; a ``deplete`` is applied now and does not stay."""
        for name in ("latency_ms", "lost_ack", "error_burst"):
            value = getattr(faults, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                msg = f"fault {name}={value!r} must be a non-negative integer"
                raise ConfigError(msg)
        if faults.deplete is not None:
            self._deplete(*faults.deplete)
        self._faults = dataclasses.replace(faults, deplete=None)

    def _deplete(self, symbol: str, side: Side, fraction: Decimal) -> None:
        """Remove ``fraction`` of each market-maker quote on ``side`` (rounded down to the step)."""
        engine = self._engine
        if symbol not in engine.instruments:
            msg = f"deplete: unknown symbol {symbol!r}; known: {', '.join(engine.instruments)}"
            raise ConfigError(msg)
        try:
            side = Side(side)
        except ValueError:
            msg = f"deplete: side {side!r} must be BUY (the bids) or SELL (the asks)"
            raise ConfigError(msg) from None
        if not fraction.is_finite() or not Decimal(0) < fraction <= 1:
            msg = f"deplete: fraction {fraction} must be in (0, 1]"
            raise ConfigError(msg)
        book = engine.books[symbol]
        step = engine.instruments[symbol].step_size
        maker = engine.market_maker.account
        for order in book.orders_of(maker.account_id):
            if order.side is not side:
                continue
            rec = maker.orders[order.order_id]
            cut = quantize_down(order.remaining * fraction, step)
            if cut >= order.remaining:
                book.remove(order.order_id)
                rec.status = "CANCELED"
            elif cut > 0:
                book.reduce(order, cut)
                rec.orig_qty -= cut
            rec.update_time_ms = engine.clock.now_ms()
        engine.flush_events()  # the depth diff of the depletion (engine/events.py)

    # ------------------------------------------------------------------ admission
    def enter(self, client: str, cost: Cost) -> RateUsage:
        """Admit a request of ``client`` before its account is known: ban, faults, IP weight.

        Raises:
            Banned: the client is banned, or sent inside its Retry-After (418).
            Unavailable: maintenance or an error burst (503 -1001); nothing is charged.
            RateLimited: the request weight would pass the minute's limit (429 -1003).
        """
        engine = self._engine
        now = engine.clock.now_ms()
        self._received_ms, self._fail_after = now, False
        self._check_ban(client, now)
        faults = self._faults
        if faults.maintenance and cost.orders and engine.has("maintenance-executes-orders"):
            self._fail_after = True
        elif faults.maintenance:
            raise Unavailable(INTERNAL_ERROR)
        if faults.error_burst:
            self._faults = dataclasses.replace(faults, error_burst=faults.error_burst - 1)
            raise Unavailable(INTERNAL_ERROR)
        window = self._weight.setdefault(client, _Window(WEIGHT_WINDOW_MS)).roll(now)
        limit = self._limits.weight_per_minute
        weight = min(cost.weight, 1) if engine.has("weights-undercounted") else cost.weight
        # weight-limit-reached-refused: the request that reaches the limit is refused (>=).
        over = (
            window.count + weight >= limit
            if engine.has("weight-limit-reached-refused")
            else (window.count + weight > limit)
        )
        if weight and over:
            msg = (
                f"Too many requests; current limit is {limit} requests per minute. Please use "
                "the websocket for live updates to avoid polling the API."
            )
            raise RateLimited(msg, self._told(self._retry_until, client, window, now), code=-1003)
        window.count += weight
        return RateUsage(used_weight_1m=window.count)

    def enter_order(self, client: str, account_id: str) -> RateUsage:
        """Count one new order on the account's 10 s and 1 min windows (after :meth:`enter`).

        Raises:
            Banned: an order inside the account's order Retry-After bans the client (418).
            RateLimited: an order window is full (429 -1015).
        """
        now = self._engine.clock.now_ms()
        self._check_ban(client, now, account_id)
        windows = self._orders.setdefault(
            account_id, (_Window(ORDER_WINDOWS_MS[0]), _Window(ORDER_WINDOWS_MS[1]))
        )
        limits = (self._limits.orders_per_10s, self._limits.orders_per_minute)
        enforced = not self._engine.has("order-windows-ignored")
        for window, limit, label in zip(windows, limits, ("TEN_SECONDS", "MINUTE"), strict=True):
            window.roll(now)
            if enforced and window.count + 1 > limit:
                msg = f"Too many new orders; current limit is {limit} orders per {label}."
                retry = self._told(self._order_retry_until, account_id, window, now)
                raise RateLimited(msg, retry, code=-1015)
        for window in windows:
            window.count += 1
        weight = self._weight.get(client)  # the usage() figures, from windows rolled just now
        return RateUsage(
            used_weight_1m=weight.roll(now).count if weight is not None else 0,
            order_count_10s=windows[0].count,
            order_count_1m=windows[1].count,
        )

    def delay(self, cost: Cost) -> None:
        """The latency fault: a signed request executes ``latency_ms`` later in virtual time."""
        if cost.signed and self._faults.latency_ms:
            self._engine.clock.advance(self._faults.latency_ms)

    def admit(self, client: str, cost: Cost, account_id: str | None = None) -> RateUsage:
        """:meth:`enter`, :meth:`enter_order` for an order placement, then :meth:`delay`."""
        usage = self.enter(client, cost)
        if cost.orders and account_id is not None:
            usage = self.enter_order(client, account_id)
        self.delay(cost)
        return usage

    def _told(self, told: dict[str, int], who: str, window: _Window, now: int) -> Decimal | None:
        """The Retry-After of a 429 (whole seconds to the window's end), remembered for the ban."""
        if self._engine.has("429-without-retry-after"):
            return None
        wait = _ceil_seconds(window.ends_in(now))
        if not self._engine.has("no-ban"):
            told[who] = now + wait * 1000
        return Decimal(wait)

    def acknowledge(self, account_id: str, rec: OrderRecord) -> Ack:
        """After an order placement executed: does its answer go out? (uses up a lost ack)"""
        engine = self._engine
        if engine.has("transact-time-at-receipt") and rec.time_ms >= self._received_ms:
            rec.time_ms = rec.update_time_ms = self._received_ms
        if self._fail_after:
            self._fail_after = False
            return Ack.UNAVAILABLE
        if not self._faults.lost_ack:
            return Ack.SENT
        self._faults = dataclasses.replace(self._faults, lost_ack=self._faults.lost_ack - 1)
        if engine.has("lost-ack-id-not-indexed"):
            engine.accounts[account_id].unindex_cid(rec.client_order_id)
        return Ack.LOST

    def usage(self, client: str, account_id: str | None = None) -> RateUsage:
        """The client's used weight now and, for an account, its order counts."""
        now = self._engine.clock.now_ms()
        weight = self._weight.get(client)
        used = weight.roll(now).count if weight is not None else 0
        if account_id is None:
            return RateUsage(used_weight_1m=used)
        windows = self._orders.get(account_id)
        counts = [w.roll(now).count for w in windows] if windows is not None else [0, 0]
        return RateUsage(used_weight_1m=used, order_count_10s=counts[0], order_count_1m=counts[1])

    def _check_ban(self, client: str, now: int, account_id: str | None = None) -> None:
        """Refuse a banned client; ban one that sends inside its Retry-After."""
        banned_until = self._banned_until.get(client)
        if banned_until is not None and now >= banned_until:
            del self._banned_until[client]
            banned_until = None
        told = self._retry_until if account_id is None else self._order_retry_until
        retry_until = told.pop(client if account_id is None else account_id, None)
        if banned_until is None and retry_until is not None and now < retry_until:
            banned_until = now + self._limits.ban_ms
            self._banned_until[client] = banned_until
        if banned_until is not None:
            msg = (
                f"Way too many requests; IP banned until {banned_until}. Please use the "
                "websocket for live updates to avoid bans."
            )
            raise Banned(msg, Decimal(_ceil_seconds(banned_until - now)), code=-1003)


class LocalClient:
    """A seat of the in-process venue at the gateway: its client key, the venue's last usage.

    The venue itself and its default account share one key (one machine, one IP); an account
    opened through the control API is another participant and gets its own :meth:`seat`, as it
    would connect from its own address (PROTOCOL.md "Rate limits").
    """

    __slots__ = ("_gateway", "_key", "_root", "_usage")

    def __init__(
        self, gateway: Gateway, key: str = IN_PROCESS, *, root: LocalClient | None = None
    ) -> None:
        self._gateway = gateway
        self._key = key
        self._root = root or self
        self._usage = RateUsage()

    @property
    def usage(self) -> RateUsage:
        """Usage published with the last call of any seat of this venue."""
        return self._root._usage

    def seat(self, key: str) -> LocalClient:
        """Another participant's seat, reporting its usage to the same venue."""
        return LocalClient(self._gateway, key, root=self._root)

    def enter(self, method: str, account_id: str | None = None, *, limit: int = 0) -> None:
        """Charge ``method`` (``order_book`` by ``limit``); raises what the gateway raises."""
        cost = _METHOD_COSTS.get(f"{method}:{limit}") if limit else _METHOD_COSTS.get(method)
        if cost is None:  # an order_book limit Binance does not list: weighed by the same rule
            cost = Cost(weight=depth_weight(limit))
        account = account_id if cost.orders else None
        try:
            self._root._usage = self._gateway.admit(self._key, cost, account)
        except (RateLimited, Unavailable):
            self._root._usage = self._gateway.usage(self._key, account)
            raise

    def acknowledge(self, account_id: str, rec: OrderRecord) -> None:
        """After an order placement executed: Unavailable if its answer does not go out."""
        ack = self._gateway.acknowledge(account_id, rec)
        if ack is Ack.LOST:
            msg = "the order was executed but its acknowledgement was lost (lost_ack fault)"
            raise Unavailable(msg)
        if ack is Ack.UNAVAILABLE:
            raise Unavailable(INTERNAL_ERROR)
