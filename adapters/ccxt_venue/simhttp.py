"""Venue ``sim-http``: the simulator's HTTP server, driven through ccxt ``binanceusdm``.

The factory starts the server in the running event loop on ``127.0.0.1:0`` with the
configuration's seed, defects, scenario and options, points a ccxt client at it (every
``urls['api']`` string redirected, ccxt's throttle off, the linear error table merged) and
builds the :class:`~harness.venue.VenueControl` over the loopback control API. Market time is
the server's virtual clock, read from ``X-SIM-TIME``, control replies and ``SIM_SYNC`` replies.
``stream()`` connects to the server's WebSocket streams on the same loopback port, and its
``drain()`` is exact: the ``SIM_SYNC`` barrier (:mod:`adapters.ccxt_venue.streams`).
``close()`` closes open streams, every ccxt client, the control session, and stops the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from adapters.ccxt_venue import binance_wire as bw
from adapters.ccxt_venue import cascade_wire
from adapters.ccxt_venue._wire import Wire, dec
from adapters.ccxt_venue.binance import WEIGHTS, BinanceAccount, BinanceVenue
from adapters.ccxt_venue.clients import binance_client
from adapters.ccxt_venue.control import ControlClient, SimHttpClock, SimHttpControl
from adapters.ccxt_venue.streams import StreamSettings
from adapters.sim.config import SimConfig
from adapters.sim.server import ServerHandle, start_server
from adapters.sim.server.alerts import alert_from_json
from harness.alerts import Alert
from harness.concentration import Concentration
from harness.model import AdlEvent, InsuranceFund, LiquidationEvent, Side
from harness.params import AuditEntry, ParamState
from harness.venue import Capability, VenueConfig, VenueRules

__all__ = ["SimHttpVenue", "open_sim_http_venue", "sim_rules"]

NAME = "sim-http"


def sim_rules(config: SimConfig) -> VenueRules:
    """The rules the in-process simulator publishes for ``config`` (adapters/sim/venue.py),
    with the request weights of the calls this adapter makes."""
    return VenueRules(
        mark_basis_samples=config.basis_samples,
        mark_basis_interval_ms=config.update_interval_ms,
        mark_update_interval_ms=config.update_interval_ms,
        liquidation_fee_capped=config.liquidation_fee_capped,
        balance_decimals=config.balance_decimals,
        premium_sample_interval_ms=config.premium_sample_ms,
        funding_rate_decimals=config.funding_rate_decimals,
        funding_announcement_ms=config.funding_announcement_ms,
        method_weights=WEIGHTS,
    )


def _since(since_ms: int | None) -> dict[str, str]:
    return {} if since_ms is None else {"since_ms": str(since_ms)}


class SimHttpVenue(BinanceVenue):
    """The Binance venue plus what only the simulator shows, through its control API:
    venue-wide liquidations, ADL events and the insurance fund."""

    def __init__(self, *, control_client: ControlClient, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._control_client = control_client

    def attach_control(self, control: SimHttpControl) -> None:
        self._control = control

    async def liquidations(
        self, symbol: str | None = None, since_ms: int | None = None
    ) -> list[LiquidationEvent]:
        query = {**({"symbol": symbol} if symbol else {}), **_since(since_ms)}
        reply = await self._control_client.request("GET", "liquidations", query=query)
        own = self.account().account_id
        return [
            bw.liquidation(r, own=str(r.get("account_id")) == own)
            for r in reply.get("liquidations", ())
        ]

    async def insurance_fund(self) -> InsuranceFund:
        reply = await self._control_client.request("GET", "insurance-fund")
        return InsuranceFund(
            asset=str(reply["asset"]),
            balance=dec(reply["balance"], "balance"),
            time_ms=int(reply["time_ms"]),
        )

    async def adl_events(
        self, symbol: str | None = None, since_ms: int | None = None
    ) -> list[AdlEvent]:
        query = {**({"symbol": symbol} if symbol else {}), **_since(since_ms)}
        reply = await self._control_client.request("GET", "adl", query=query)
        own = self.account().account_id
        return [
            AdlEvent(
                symbol=str(r["symbol"]),
                side=Side(str(r["side"])),
                quantity=dec(r["quantity"], "quantity"),
                price=dec(r["price"], "price"),
                time_ms=int(r["time_ms"]),
                own=str(r["account_id"]) == own,
                rank=None if r.get("rank") is None else dec(r["rank"], "rank"),
            )
            for r in reply.get("adl", ())
        ]

    async def param_state(self, symbol: str) -> ParamState:
        """The symbol's dynamic parameters (``GET /control/params``)."""
        reply = await self._control_client.request("GET", "params", query={"symbol": symbol})
        return ParamState.from_json(reply["state"])

    async def param_audit(self, since_ms: int | None = None) -> list[AuditEntry]:
        """The parameter controller's audit log (``GET /control/param-audit``), oldest first."""
        reply = await self._control_client.request("GET", "param-audit", query=_since(since_ms))
        return [AuditEntry.from_json(e) for e in reply.get("entries", ())]

    async def concentration(
        self,
        account_id: str,
        symbol: str,
        *,
        side: Side | None = None,
        budget_bps: Decimal = Decimal(10),
    ) -> Concentration:
        """Concentration and size advice (``GET /control/concentration``)."""
        query = {"account_id": account_id, "symbol": symbol, "budget_bps": format(budget_bps, "f")}
        if side is not None:
            query["side"] = side.value
        reply = await self._control_client.request("GET", "concentration", query=query)
        return cascade_wire.concentration(reply["concentration"])

    async def alerts(self, since_ms: int | None = None) -> list[Alert]:
        """The simulator's anomaly alerts (``GET /control/alerts``), oldest first."""
        reply = await self._control_client.request("GET", "alerts", query=_since(since_ms))
        return [alert_from_json(r) for r in reply.get("alerts", ())]


async def open_sim_http_venue(config: VenueConfig) -> SimHttpVenue:
    """Factory registered as venue ``sim-http`` (entry point ``perpcheck.venues``)."""
    server = await start_server(config, host="127.0.0.1", port=0)
    try:
        return await _build(server)
    except BaseException:
        await server.stop()
        raise


# What `perpcheck venues` lists without starting the server: the simulator's (GET /control/info).
open_sim_http_venue.capabilities = frozenset(Capability)  # type: ignore[attr-defined]


async def _build(server: ServerHandle) -> SimHttpVenue:
    wire = Wire()
    base_url = str(server.base_url)
    band_url = base_url.rstrip("/") + "/sim/v1"
    control_client = ControlClient(base_url, server.control_token, wire)
    clients: list[Any] = []

    def account(account_id: str, key: str, secret: str) -> BinanceAccount:
        ex = binance_client(api_key=key, secret=secret, wire=wire, base_url=base_url)
        clients.append(ex)
        return BinanceAccount(ex, account_id=account_id, venue_name=NAME, band_url=band_url)

    async def open_account(account_id: str, key: str, secret: str) -> BinanceAccount:
        return account(account_id, key, secret)

    info: Mapping[str, Any] = await control_client.request("GET", "info")
    scenarios = await control_client.request("GET", "scenarios")
    capabilities = frozenset(Capability(c) for c in info.get("capabilities", ())) or frozenset(
        Capability
    )
    venue = SimHttpVenue(
        name=NAME,
        account=account(server.account_id, server.api_key, server.api_secret),
        control_client=control_client,
        wire=wire,
        clock=SimHttpClock(wire, control_client),
        capabilities=capabilities,
        # Static configuration only: everything the venue shows comes over HTTP.
        rules=sim_rules(server.engine.config),
        streams=StreamSettings(
            url="ws" + base_url.removeprefix("http"), sim_sync=True, on_time=wire.see_time
        ),
        versions={"perpcheck-sim": str(info.get("version", "")), "transport": "http"},
    )
    venue.clients = clients  # every account's client is closed with the venue
    control_client.before_step = venue.keep_streams_alive  # listen keys live on virtual time
    venue.closers += [server.stop, control_client.close]
    venue.attach_control(
        SimHttpControl(
            control_client,
            open_account=open_account,
            scenario_names=[str(s["name"]) for s in scenarios.get("scenarios", ())],
        )
    )
    return venue
