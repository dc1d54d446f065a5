"""The edge between ccxt and the harness: exact JSON, observed headers and error translation.

Every ccxt client the adapter builds goes through :func:`install`, which

* parses response bodies with ``parse_float=Decimal`` (so a number the venue sent is never seen
  as a binary float; strings stay strings and are turned into ``Decimal`` by :func:`dec`),
* hands every response's headers to the venue's :class:`Wire` (rate-limit usage, the simulator's
  virtual time), success or failure alike, and
* translates a failed response into the harness error taxonomy *before* ccxt maps it onto its
  own classes, so the venue's own code and message survive (``Rejected(code, msg)``).

Failures ccxt raises without a response (connection refused or dropped, timeouts) are turned
into :class:`~harness.errors.Unavailable` by :func:`call`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from adapters.ccxt_venue._ccxt import errors as ccxt_errors
from harness.errors import AuthError, Unavailable, VenueError
from harness.venue import RateUsage

__all__ = [
    "Dialect",
    "Wire",
    "call",
    "dec",
    "dec_or_none",
    "decimal_json",
    "header",
    "install",
    "retry_after",
]

T = TypeVar("T")

#: ``(HTTP status, lower-cased headers, raw body, parsed body) -> harness error or None``.
Dialect = Callable[[int, Mapping[str, str], str, Any], VenueError | None]


def dec(value: object, what: str = "value") -> Decimal:
    """A Decimal from a wire value: a JSON string, an int or a Decimal-parsed JSON number.

    Raises:
        VenueError: the venue sent something that is not a number (names the field).
    """
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        msg = f"the venue sent {what}={value!r}, not a number"
        raise VenueError(msg)
    try:
        return value if isinstance(value, Decimal) else Decimal(value)
    except InvalidOperation:
        msg = f"the venue sent {what}={value!r}, not a number"
        raise VenueError(msg) from None


def dec_or_none(value: object, what: str = "value") -> Decimal | None:
    """Like :func:`dec`, but ``None``/``""`` (not published) become ``None``."""
    if value is None or value == "":
        return None
    return dec(value, what)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A response header by case-insensitive name (``headers`` already lower-cased)."""
    return headers.get(name.lower())


def retry_after(headers: Mapping[str, str]) -> Decimal | None:
    """``Retry-After`` in seconds, when sent as a number."""
    raw = header(headers, "Retry-After")
    if raw is None:
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    raw = header(headers, name)
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None


@dataclass(slots=True)
class Wire:
    """What a venue's clients learnt from the responses they received.

    ``usage`` is the rate-limit usage the last response published (Binance ``X-MBX-*``);
    ``sim_time_ms`` is the simulator's virtual time (``X-SIM-TIME``), never moving backwards.
    """

    usage: RateUsage = field(default_factory=RateUsage)
    sim_time_ms: int | None = None

    def observe(self, headers: Mapping[str, str]) -> None:
        self.usage = RateUsage(
            used_weight_1m=_int_header(headers, "X-MBX-USED-WEIGHT-1M"),
            order_count_10s=_int_header(headers, "X-MBX-ORDER-COUNT-10S"),
            order_count_1m=_int_header(headers, "X-MBX-ORDER-COUNT-1M"),
        )
        now = _int_header(headers, "X-SIM-TIME")
        if now is not None:
            self.see_time(now)

    def see_time(self, now_ms: int) -> None:
        if self.sim_time_ms is None or now_ms > self.sim_time_ms:
            self.sim_time_ms = now_ms


#: JSON with exact decimals (one decoder for all: ``json.loads(..., parse_float=...)`` builds a
#: new one per call).
decimal_json = json.JSONDecoder(parse_float=Decimal).decode


def install(exchange: Any, wire: Wire, dialect: Dialect) -> Any:
    """Hook ``exchange`` (a ccxt async client) so its answers reach ``wire`` and ``dialect``.

    Instance attributes shadow ccxt's methods; nothing global is patched.
    """
    exchange.on_json_response = decimal_json
    original = exchange.handle_errors

    def handle_errors(
        code: int,
        reason: str,
        url: str,
        method: str,
        headers: Mapping[str, str] | None,
        body: str,
        response: Any,
        request_headers: Any,
        request_body: Any,
    ) -> Any:
        lowered = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
        wire.observe(lowered)
        error = dialect(int(code), lowered, body or "", response)
        if error is not None:
            raise error
        return original(
            code, reason, url, method, headers, body, response, request_headers, request_body
        )

    exchange.handle_errors = handle_errors
    return exchange


async def call(awaitable: Awaitable[T]) -> T:
    """Await a ccxt request; failures without a venue verdict become harness errors.

    A dropped connection (even after the venue executed an order), a timeout or an unreachable
    host is :class:`Unavailable` (execution status unknown); ccxt's own authentication refusals
    (missing credentials) are :class:`AuthError`; anything else ccxt raises is a
    :class:`VenueError` naming ccxt's class.
    """
    try:
        return await awaitable
    except VenueError:
        raise
    except ccxt_errors.AuthenticationError as exc:
        raise AuthError(str(exc)) from exc
    except ccxt_errors.NetworkError as exc:
        raise Unavailable(str(exc) or type(exc).__name__) from exc
    except ccxt_errors.BaseError as exc:
        msg = f"{type(exc).__name__}: {exc}"
        raise VenueError(msg) from exc
