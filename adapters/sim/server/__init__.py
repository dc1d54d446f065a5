"""The simulator as a Binance USDⓈ-M venue over HTTP (PROTOCOL.md in this folder).

``create_app(engine, ...)`` is the aiohttp application; ``start_server(...)`` runs it inside a
running event loop and returns a :class:`ServerHandle`; ``perpcheck serve`` runs it from the
command line (:mod:`adapters.sim.server.cli`).
"""

from __future__ import annotations

from adapters.sim.server.app import ROUTES, create_app
from adapters.sim.server.auth import Credential, KeyRing, sign
from adapters.sim.server.runner import ServerHandle, start_server
from adapters.sim.server.state import ServerInfo

__all__ = [
    "ROUTES",
    "Credential",
    "KeyRing",
    "ServerHandle",
    "ServerInfo",
    "create_app",
    "sign",
    "start_server",
]
