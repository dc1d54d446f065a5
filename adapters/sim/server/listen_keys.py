"""Listen keys: the user-data stream's credential (PROTOCOL.md "Streams", "User data").

Binance USDⓈ-M keeps one listen key per account: ``POST /fapi/v1/listenKey`` opens it (or, while
it is alive, returns the same key and extends it), ``PUT`` keeps it alive, ``DELETE`` closes it.
A key lives 60 minutes of **virtual** time after its last ``POST``/``PUT``. Those three endpoints
are USER_STREAM security: the ``X-MBX-APIKEY`` header names the account, nothing is signed.

:class:`ListenKeys` is the registry (pure, virtual time passed in); the handlers below serve the
REST endpoints and tell the :class:`~adapters.sim.server.streams.StreamHub` when a key dies, so
that its connections get ``listenKeyExpired``.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from aiohttp import web

from adapters.sim.server.auth import API_KEY_HEADER, API_KEY_PATTERN
from adapters.sim.server.state import ENGINE, HUB, KEYS
from adapters.sim.server.wire import json_response
from harness.errors import Rejected

__all__ = [
    "LISTEN_KEY_TTL_MS",
    "ListenKey",
    "ListenKeys",
    "close_listen_key",
    "keepalive_listen_key",
    "new_listen_key",
]

LISTEN_KEY_TTL_MS = 60 * 60 * 1000  # Binance: a key expires 60 minutes after its last keepalive
_ALPHABET = string.ascii_letters + string.digits
_UNKNOWN = "This listenKey does not exist."


@dataclass(slots=True)
class ListenKey:
    """One account's key; ``expires_ms`` is virtual time, ``alive`` False once expired or closed."""

    key: str
    account_id: str
    expires_ms: int
    alive: bool = True


class ListenKeys:
    """Every listen key the server issued; at most one alive per account."""

    def __init__(self) -> None:
        self._by_key: dict[str, ListenKey] = {}
        self._alive: dict[str, ListenKey] = {}  # account id -> its live key

    def get(self, key: str) -> ListenKey | None:
        """The key, alive or dead, or None if the server never issued it."""
        return self._by_key.get(key)

    def alive_for(self, account_id: str) -> ListenKey | None:
        return self._alive.get(account_id)

    @property
    def next_expiry_ms(self) -> int | None:
        """The earliest expiry among live keys (None: none alive)."""
        return min((k.expires_ms for k in self._alive.values()), default=None)

    def open(self, account_id: str, now_ms: int) -> ListenKey:
        """``POST``: the account's live key extended, or a new one. Call :meth:`expire` first."""
        current = self._alive.get(account_id)
        if current is None:
            key = "".join(secrets.choice(_ALPHABET) for _ in range(64))
            current = ListenKey(key=key, account_id=account_id, expires_ms=now_ms)
            self._by_key[key] = current
            self._alive[account_id] = current
        current.expires_ms = now_ms + LISTEN_KEY_TTL_MS
        return current

    def keepalive(self, account_id: str, now_ms: int) -> ListenKey | None:
        """``PUT``: the live key extended, or None (no live key: -1125)."""
        current = self._alive.get(account_id)
        if current is not None:
            current.expires_ms = now_ms + LISTEN_KEY_TTL_MS
        return current

    def close(self, account_id: str) -> ListenKey | None:
        """``DELETE``: the key that was alive (now dead), or None."""
        current = self._alive.pop(account_id, None)
        if current is not None:
            current.alive = False
        return current

    def expire(self, now_ms: int) -> list[ListenKey]:
        """Kill every live key whose expiry is at or before ``now_ms``; returns them."""
        dead = [k for k in self._alive.values() if k.expires_ms <= now_ms]
        for k in dead:
            k.alive = False
            del self._alive[k.account_id]
        return dead


def _account(request: web.Request) -> str:
    """The account of the request's ``X-MBX-APIKEY`` (USER_STREAM security: key, no signature)."""
    api_key = request.headers.get(API_KEY_HEADER)
    if not api_key:
        raise Rejected(-2015, "Invalid API-key, IP, or permissions for action.")
    if not API_KEY_PATTERN.match(api_key):
        raise Rejected(-2014, "API-key format invalid.")
    credential = request.app[KEYS].get(api_key)
    if credential is None:
        raise Rejected(-2015, "Invalid API-key, IP, or permissions for action.")
    return credential.account_id


async def new_listen_key(request: web.Request) -> web.Response:
    """``POST /fapi/v1/listenKey`` → ``{"listenKey"}`` (the live key, extended, or a new one)."""
    account_id = _account(request)
    hub = request.app[HUB]
    now = request.app[ENGINE].clock.now_ms()
    hub.expire_keys(now)
    return json_response({"listenKey": hub.keys.open(account_id, now).key})


async def keepalive_listen_key(request: web.Request) -> web.Response:
    """``PUT /fapi/v1/listenKey`` → ``{"listenKey"}``; no live key → 400 ``-1125``."""
    account_id = _account(request)
    hub = request.app[HUB]
    now = request.app[ENGINE].clock.now_ms()
    hub.expire_keys(now)
    current = hub.keys.keepalive(account_id, now)
    if current is None:
        raise Rejected(-1125, _UNKNOWN)
    return json_response({"listenKey": current.key})


async def close_listen_key(request: web.Request) -> web.Response:
    """``DELETE /fapi/v1/listenKey`` → ``{}``; the key's connections get ``listenKeyExpired``."""
    account_id = _account(request)
    hub = request.app[HUB]
    now = request.app[ENGINE].clock.now_ms()
    hub.expire_keys(now)
    closed = hub.keys.close(account_id)
    if closed is not None:
        hub.key_gone(closed, now)
    return json_response({})
