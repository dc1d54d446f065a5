"""Run the HTTP venue inside an already-running asyncio loop (``AppRunner`` + ``TCPSite``).

:func:`start_server` builds a simulator exactly as the in-process venue ``sim`` does
(:func:`adapters.sim.venue.open_sim_venue`: seed, defects, scenario, balance and venue options),
binds ``127.0.0.1:0`` (or the given host and port) and returns a :class:`ServerHandle` with the
base URL (and WebSocket URL), the control token, the first account's key and secret, the stream
hub, and :meth:`ServerHandle.stop`.
The ccxt adapter runs venue ``sim-http`` this way inside the test process; ``perpcheck serve``
does the same from the command line.

With ``restore`` (the bytes of ``POST /control/snapshot``) the server restarts from a snapshot
instead: the engine, its virtual time, the API keys and the scenario name come from it (a
configuration or key given as well is refused); a new control token is issued unless given.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from types import TracebackType

from aiohttp import web

from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.snapshot import SnapshotError, load
from adapters.sim.server.app import create_app
from adapters.sim.server.auth import Credential, KeyRing, is_loopback
from adapters.sim.server.control import snapshot_keys
from adapters.sim.server.state import HUB, ServerInfo
from adapters.sim.server.streams import StreamHub
from adapters.sim.venue import SIM_VERSION, open_sim_venue
from harness.clock import Clock
from harness.errors import ConfigError
from harness.venue import VenueConfig

__all__ = ["ServerHandle", "is_loopback_host", "start_server"]


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (``127.0.0.0/8``, ``::1``)."""
    return host == "localhost" or is_loopback(host)


@dataclass(slots=True)
class ServerHandle:
    """A running server: where it is, how to use it, and how to stop it."""

    base_url: str
    control_token: str
    api_key: str
    api_secret: str
    account_id: str
    seed: int
    engine: Engine
    keys: KeyRing
    _runner: web.AppRunner = field(repr=False)

    @property
    def streams(self) -> StreamHub:
        """The app's stream hub: listen keys and open WebSocket connections."""
        return self._runner.app[HUB]

    @property
    def ws_url(self) -> str:
        """``ws://host:port``: streams at ``/ws``, ``/stream`` (PROTOCOL.md "Streams")."""
        return "ws" + self.base_url.removeprefix("http")

    async def stop(self) -> None:
        """Close the listening socket and every connection (WebSockets with 1001)."""
        await self._runner.cleanup()

    async def __aenter__(self) -> ServerHandle:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def start_server(
    config: VenueConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
    api_secret: str | None = None,
    control_token: str | None = None,
    allow_remote: bool = False,
    wall_clock: Clock | None = None,
    restore: bytes | None = None,
) -> ServerHandle:
    """Start the simulator's HTTP venue; see the module docstring.

    Raises:
        ConfigError: a bad configuration, a non-loopback ``host`` without ``allow_remote``, a
            malformed key, or an address that cannot be bound;
            :class:`~adapters.sim.engine.snapshot.SnapshotError` a snapshot that cannot be
            restored, or given with a configuration or key.
    """
    if not allow_remote and not is_loopback_host(host):
        msg = (
            f"host {host!r} is not a loopback address; the simulator serves funded accounts "
            "and a market anyone could move, so it listens on loopback only unless remote "
            "access is allowed explicitly (--allow-remote)"
        )
        raise ConfigError(msg)
    if (api_key is None) != (api_secret is None):
        msg = "give both an API key and an API secret, or neither (both are then generated)"
        raise ConfigError(msg)
    if restore is not None:
        if config is not None or api_key is not None:
            msg = "a restored server takes its configuration and keys from the snapshot"
            raise ConfigError(msg)
        engine, keys, credential, scenario = _restored(restore)
    else:
        config = config or VenueConfig()
        venue = await open_sim_venue(config)
        engine = venue.engine
        keys = KeyRing()
        try:
            if api_key is not None and api_secret is not None:
                credential = keys.add(Credential(api_key, api_secret, venue.account().account_id))
            else:
                credential = keys.issue(venue.account().account_id)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        scenario = config.scenario
    account_id = credential.account_id
    token = control_token or secrets.token_urlsafe(24)
    info = ServerInfo(version=SIM_VERSION, scenario=scenario)
    app = create_app(engine, keys=keys, control_token=token, wall_clock=wall_clock, info=info)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        msg = f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port"
        raise ConfigError(msg) from None
    bound = runner.addresses[0][1]
    shown = f"[{host}]" if _is_ipv6(host) else host
    return ServerHandle(
        base_url=f"http://{shown}:{bound}",
        control_token=token,
        api_key=credential.api_key,
        api_secret=credential.secret,
        account_id=account_id,
        seed=engine.config.seed,
        engine=engine,
        keys=keys,
        _runner=runner,
    )


def _restored(data: bytes) -> tuple[Engine, KeyRing, Credential, str | None]:
    """The engine, keys, first credential and scenario of a server snapshot."""
    loaded = load(data)
    keys, first, scenario = snapshot_keys(loaded.extra)
    unknown = sorted({c.account_id for c in keys.credentials()} - set(loaded.engine.accounts))
    if unknown:
        msg = f"corrupt server snapshot: keys for accounts it does not hold ({unknown[0]!r})"
        raise SnapshotError(msg)
    return loaded.engine, keys, first, scenario


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False
