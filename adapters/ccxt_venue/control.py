"""The simulator's loopback control API as a :class:`~harness.venue.VenueControl`, and the
virtual clock the HTTP venue reads from the server.

The control API (``/control/...``, PROTOCOL.md) is plain JSON with the token header; every reply
carries ``now_ms``, which keeps the venue's clock current together with the ``X-SIM-TIME``
header of every Binance response.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import aiohttp

from adapters.ccxt_venue import cascade_wire
from adapters.ccxt_venue._wire import Wire, decimal_json
from harness.cascade import AccountExposure, AccountLiquidation
from harness.errors import AuthError, ConfigError, Rejected, Unavailable
from harness.model import PricePath
from harness.venue import Account, Faults, RateLimits, StreamFaults

__all__ = ["ControlClient", "SimHttpClock", "SimHttpControl"]

TOKEN_HEADER = "X-PERPCHECK-TOKEN"  # noqa: S105 - a header name, not a secret


class ControlClient:
    """JSON requests to ``/control/...`` with the token; replies decoded with exact decimals.

    ``before_step``, when set, is awaited before each step of :meth:`advance` and returns the
    longest the clock may then move in one step (``None``: no limit); the venue uses it to keep
    its streams' listen keys alive, which expire on the virtual clock.
    """

    def __init__(self, base_url: str, token: str, wire: Wire) -> None:
        self._base = base_url.rstrip("/")
        self._wire = wire
        self._session = aiohttp.ClientSession(headers={TOKEN_HEADER: token})
        self.before_step: Callable[[], Awaitable[int | None]] | None = None

    async def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> Any:
        """One control call; refusals become harness errors (``-1121`` bad symbol stays a
        ``Rejected`` as on the in-process venue, other 400s are the caller's ``ConfigError``)."""
        url = f"{self._base}/control/{path}"
        try:
            async with self._session.request(method, url, json=body, params=query) as resp:
                text = await resp.text()
                status = resp.status
                sim_time = resp.headers.get("X-SIM-TIME")
        except aiohttp.ClientError as exc:
            msg = f"control API {method} {path}: {exc or type(exc).__name__}"
            raise Unavailable(msg) from exc
        data = decimal_json(text) if text else {}
        if sim_time is not None:
            self._wire.see_time(int(sim_time))
        if isinstance(data, dict) and isinstance(data.get("now_ms"), int):
            self._wire.see_time(data["now_ms"])
        if status < 400:
            return data
        code = int(data.get("code", 0)) if isinstance(data, dict) else 0
        msg = str(data.get("msg", text)) if isinstance(data, dict) else text
        text = f"control API {path}: {code}: {msg}"
        if status in (401, 403):
            raise AuthError(text)
        if status >= 500:
            raise Unavailable(text)
        if code == -1121:
            raise Rejected(code, msg)
        raise ConfigError(text)

    async def advance(self, ms: int) -> int:
        """Move the virtual clock ``ms`` forward (in steps, see ``before_step``); returns now."""
        remaining = ms
        while True:
            limit = None if self.before_step is None else await self.before_step()
            step = remaining if limit is None else min(remaining, limit)
            reply = await self.request("POST", "advance", {"ms": step})
            remaining -= step
            if remaining <= 0:
                return int(reply["now_ms"])

    async def close(self) -> None:
        await self._session.close()


class SimHttpClock:
    """The simulator's virtual time as the venue last reported it; sleeping advances it."""

    def __init__(self, wire: Wire, control: ControlClient) -> None:
        self._wire = wire
        self._control = control

    def now_ms(self) -> int:
        if self._wire.sim_time_ms is None:
            msg = "the simulator has not reported its time yet"
            raise RuntimeError(msg)
        return self._wire.sim_time_ms

    async def sleep(self, seconds: float) -> None:
        await self._control.advance(round(seconds * 1000))


def _num(value: Decimal) -> str:
    return format(value, "f")


class SimHttpControl:
    """Every :class:`~harness.venue.VenueControl` method over the control API.

    ``open_account`` turns a new account's key and secret into an :class:`Account` (its own
    ccxt client); ``scenario_names`` is read once when the venue opens (``scenarios()`` is
    synchronous in the protocol).
    """

    def __init__(
        self,
        client: ControlClient,
        *,
        open_account: Callable[[str, str, str], Awaitable[Account]],
        scenario_names: list[str],
    ) -> None:
        self._client = client
        self._open_account = open_account
        self._scenarios = scenario_names

    async def advance(self, ms: int) -> int:
        return await self._client.advance(ms)

    async def set_price_path(self, symbol: str, path: PricePath) -> None:
        points = [[offset, _num(price)] for offset, price in path.points]
        body = {"symbol": symbol, "points": points, "linear": path.linear}
        await self._client.request("POST", "price-path", body)

    async def set_depth_profile(self, symbol: str, profile: str) -> None:
        await self._client.request("POST", "depth-profile", {"symbol": symbol, "profile": profile})

    async def create_account(self, wallet: Decimal, *, label: str = "") -> Account:
        body = {"wallet": _num(wallet), "label": label}
        reply = await self._client.request("POST", "accounts", body)
        return await self._open_account(
            str(reply["account_id"]), str(reply["api_key"]), str(reply["api_secret"])
        )

    async def load_scenario(self, name: str) -> None:
        await self._client.request("POST", "scenario", {"name": name})

    def scenarios(self) -> list[str]:
        return list(self._scenarios)

    async def set_insurance_fund(self, balance: Decimal) -> None:
        await self._client.request("POST", "insurance-fund", {"balance": _num(balance)})

    async def schedule_funding_interval(self, symbol: str, hours: int, effective_ms: int) -> None:
        body = {"symbol": symbol, "hours": hours, "effective_ms": effective_ms}
        await self._client.request("POST", "funding-interval", body)

    async def set_quote_skew(self, symbol: str, bps: Decimal) -> None:
        await self._client.request("POST", "quote-skew", {"symbol": symbol, "bps": _num(bps)})

    async def set_rate_limits(self, limits: RateLimits) -> None:
        body = {
            "weight_per_minute": limits.weight_per_minute,
            "orders_per_10s": limits.orders_per_10s,
            "orders_per_minute": limits.orders_per_minute,
            "ban_ms": limits.ban_ms,
        }
        await self._client.request("POST", "rate-limits", body)

    async def set_faults(self, faults: Faults) -> None:
        body: dict[str, Any] = {
            "latency_ms": faults.latency_ms,
            "lost_ack": faults.lost_ack,
            "error_burst": faults.error_burst,
            "maintenance": faults.maintenance,
        }
        if faults.deplete is not None:
            symbol, side, fraction = faults.deplete
            body["deplete"] = {"symbol": symbol, "side": side.value, "fraction": _num(fraction)}
        await self._client.request("POST", "faults", body)

    async def set_stream_faults(self, faults: StreamFaults) -> None:
        body = {
            "drop_connections": faults.drop_connections,
            "delay_ms": faults.delay_ms,
            "reorder": faults.reorder,
            "gap_symbol": faults.gap_symbol,
        }
        await self._client.request("POST", "stream-faults", body)

    async def configure_params(
        self,
        symbol: str,
        *,
        enabled: bool = True,
        advisor: str = "default",
        script: Sequence[Mapping[str, Decimal]] = (),
    ) -> None:
        steps = [{name: str(value) for name, value in step.items()} for step in script]
        body = {"symbol": symbol, "enabled": enabled, "advisor": advisor, "script": steps}
        await self._client.request("POST", "params", body)

    async def set_param_signal(self, symbol: str, signal: str, value: Decimal | None) -> None:
        body = {"symbol": symbol, "signal": signal, "value": None if value is None else str(value)}
        await self._client.request("POST", "param-signal", body)

    async def population(self, name: str | None = None) -> list[AccountExposure]:
        query = {"name": name} if name else None
        reply = await self._client.request("GET", "population", query=query)
        return [cascade_wire.exposure(r) for r in reply.get("accounts", ())]

    async def account_liquidations(self, since_ms: int | None = None) -> list[AccountLiquidation]:
        query = None if since_ms is None else {"since_ms": str(since_ms)}
        reply = await self._client.request("GET", "liquidations", query=query)
        return [cascade_wire.account_liquidation(r) for r in reply.get("liquidations", ())]

    async def set_liquidation_latency(self, ms: int) -> None:
        await self._client.request("POST", "liquidation-latency", {"ms": ms})
