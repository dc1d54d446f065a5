"""Typed application and request state of the server, and the handlers' accessors.

The app holds one engine (whose gateway is the front door it shares with the in-process venue),
the API keys, the control token, the wall clock used for request signing, what
``GET /control/info`` reports, and the WebSocket stream hub (listen keys, open connections). A
request carries its merged parameters and, once authenticated, its credential (set by the
gateway middleware in :mod:`adapters.sim.server.app`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from adapters.sim.engine.accounts import AccountState
from adapters.sim.engine.exchange import Engine
from adapters.sim.server.auth import Credential, KeyRing
from adapters.sim.server.params import Params
from harness.clock import Clock
from harness.errors import Rejected
from harness.venue import RateUsage

if TYPE_CHECKING:
    from adapters.sim.server.streams import StreamHub

__all__ = [
    "CLIENT",
    "CREDENTIAL",
    "ENGINE",
    "HUB",
    "INFO",
    "KEYS",
    "PARAMS",
    "TOKEN",
    "USAGE",
    "WALL",
    "ServerInfo",
    "account_of",
    "engine_of",
    "optional_symbol",
    "params_of",
    "symbol_param",
]


@dataclass(slots=True)
class ServerInfo:
    """What ``GET /control/info`` reports besides the engine's seed and defects."""

    version: str
    scenario: str | None = None


ENGINE = web.AppKey("engine", Engine)
KEYS = web.AppKey("keys", KeyRing)
TOKEN = web.AppKey("control_token", str)
WALL = web.AppKey("wall_clock", Clock)
INFO = web.AppKey("info", ServerInfo)
# The WebSocket streams (streams.py imports this module, hence the name-only key).
HUB: web.AppKey[StreamHub] = web.AppKey("streams")

PARAMS = web.RequestKey("params", Params)
CREDENTIAL = web.RequestKey("credential", Credential)
CLIENT = web.RequestKey("client", str)
USAGE = web.RequestKey("usage", RateUsage)


def engine_of(request: web.Request) -> Engine:
    return request.app[ENGINE]


def params_of(request: web.Request) -> Params:
    params: Params = request[PARAMS]
    return params


def account_of(request: web.Request) -> AccountState:
    """The account of the request's API key (signed endpoints only)."""
    credential: Credential = request[CREDENTIAL]
    return engine_of(request).accounts[credential.account_id]


def symbol_param(request: web.Request) -> str:
    """The mandatory ``symbol`` (-1102 missing, -1121 not listed)."""
    symbol = optional_symbol(request)
    if symbol is None:
        params_of(request).require("symbol")  # raises -1102
    assert symbol is not None  # noqa: S101 - require() raised otherwise
    return symbol


def optional_symbol(request: web.Request) -> str | None:
    """The optional ``symbol``, checked against the listed instruments (-1121)."""
    text = params_of(request).text("symbol")
    if text is not None and text not in engine_of(request).instruments:
        raise Rejected(-1121, "Invalid symbol.")
    return text
