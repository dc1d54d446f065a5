"""API keys, request signing and the control API's gate.

Signed endpoints (binance-usdm-surface.md §3): the ``X-MBX-APIKEY`` header names the account;
``signature`` = hex HMAC-SHA256(secret, totalParams) where totalParams is the raw query string
concatenated with the raw body, byte for byte, minus the trailing ``&signature=<hex>`` (the
signature must be the last parameter; its hex is not case sensitive). ``timestamp`` must satisfy
``timestamp < serverTime + 1000`` and ``serverTime - timestamp <= recvWindow`` (default 5000,
at most 60000) against the server's **wall** clock (PROTOCOL.md "Time").

Refusals, in the order they are checked: missing or unknown key 401 -2015, malformed key 401
-2014, missing signature or timestamp 400 -1102, recvWindow over 60000 400 -1131, wrong
signature 400 -1022, timestamp outside the window 400 -1021.

The control API (PROTOCOL.md "Control API") answers loopback peers only (403) that carry the
server's token in ``X-PERPCHECK-TOKEN`` (401).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from adapters.sim.server.params import RawRequest, mandatory
from adapters.sim.server.wire import Refused
from harness.errors import Rejected

__all__ = [
    "API_KEY_HEADER",
    "API_KEY_PATTERN",
    "TOKEN_HEADER",
    "Credential",
    "KeyRing",
    "authenticate",
    "check_control",
    "is_loopback",
    "sign",
    "sign_fast",
]

API_KEY_HEADER = "X-MBX-APIKEY"
TOKEN_HEADER = "X-PERPCHECK-TOKEN"  # noqa: S105 - a header name, not a secret
API_KEY_PATTERN = re.compile(r"^[A-Za-z0-9]{1,128}$")
DEFAULT_RECV_WINDOW = 5_000
MAX_RECV_WINDOW = 60_000
SIGNATURE = "signature"
_TAIL_NAME = b"signature="


def sign(secret: str, payload: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``payload`` with ``secret`` (Binance's signature)."""
    return hmac.digest(secret.encode("utf-8"), payload, hashlib.sha256).hex()


_BLOCK = 64  # SHA-256's block size
_PADS: dict[str, tuple[Any, Any]] = {}
_MAX_PADS = 100_000  # one entry per secret in use; past this, signing just does not memoise


def _pads(secret: str) -> tuple[Any, Any]:
    """SHA-256 states after the inner and outer padded keys of ``secret`` (RFC 2104)."""
    found = _PADS.get(secret)
    if found is None:
        key = secret.encode("utf-8")
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        found = (
            hashlib.sha256(bytes(b ^ 0x36 for b in key)),
            hashlib.sha256(bytes(b ^ 0x5C for b in key)),
        )
        if len(_PADS) < _MAX_PADS:
            _PADS[secret] = found
    return found


def sign_fast(secret: str, payload: bytes) -> str:
    """:func:`sign`, from the secret's memoised padded-key states: the per-request hot path.

    HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)); both padded keys fill one block, so the
    hash states after them are computed once per secret and copied for each request, which
    halves the cost of a signature check.
    """
    inner_start, outer_start = _pads(secret)
    inner = inner_start.copy()
    inner.update(payload)
    outer = outer_start.copy()
    outer.update(inner.digest())
    return str(outer.hexdigest())


def _tail(total: bytes) -> tuple[int, bytes] | None:
    """Where the trailing ``signature=<hex>`` parameter starts, and its value; or ``None``.

    The signature must be the last parameter: the piece after the last ``&`` (or the whole
    text when there is none) starting with ``signature=``; what precedes its ``&`` is signed.
    """
    cut = total.rfind(b"&")
    if not total.startswith(_TAIL_NAME, cut + 1):
        return None
    return max(cut, 0), total[cut + 1 + len(_TAIL_NAME) :]


@dataclass(frozen=True, slots=True)
class Credential:
    """An API key, its secret and account; ``seat`` is its rate-limit identity.

    ``seat`` ``None``: the key counts on its peer address (the first account, as a real client on
    its own machine); an account opened through the control API is another participant and
    counts on its own seat (PROTOCOL.md "Rate limits").
    """

    api_key: str
    secret: str
    account_id: str
    seat: str | None = None


class KeyRing:
    """The server's API keys."""

    def __init__(self) -> None:
        self._by_key: dict[str, Credential] = {}

    def add(self, credential: Credential) -> Credential:
        if not API_KEY_PATTERN.match(credential.api_key):
            msg = f"API key {credential.api_key!r} must match {API_KEY_PATTERN.pattern}"
            raise ValueError(msg)
        if not credential.secret:
            msg = "an API secret must not be empty"
            raise ValueError(msg)
        self._by_key[credential.api_key] = credential
        return credential

    def issue(self, account_id: str, *, seat: str | None = None) -> Credential:
        """A fresh random key and secret (64 characters each, like Binance's) for an account."""
        key = secrets.token_hex(32)
        return self.add(Credential(key, secrets.token_hex(32), account_id, seat))

    def get(self, api_key: str | None) -> Credential | None:
        return self._by_key.get(api_key) if api_key else None

    def credentials(self) -> list[Credential]:
        """Every key, in the order added (a server snapshot carries them)."""
        return list(self._by_key.values())


def authenticate(raw: RawRequest, api_key: str | None, keys: KeyRing, wall_ms: int) -> Credential:
    """The credential of a signed request, or the Binance refusal (surface doc §3)."""
    if not api_key:
        raise Rejected(-2015, "Invalid API-key, IP, or permissions for action.")
    if not API_KEY_PATTERN.match(api_key):
        raise Rejected(-2014, "API-key format invalid.")
    credential = keys.get(api_key)
    if credential is None:
        raise Rejected(-2015, "Invalid API-key, IP, or permissions for action.")
    total = raw.query + raw.body
    tail = _tail(total)
    if raw.signature is None or tail is None:
        raise mandatory(SIGNATURE)
    timestamp = raw.params.integer("timestamp", required=True)
    window = raw.params.integer("recvWindow", default=DEFAULT_RECV_WINDOW, minimum=0)
    assert timestamp is not None  # noqa: S101 - required
    assert window is not None  # noqa: S101 - defaulted
    if window > MAX_RECV_WINDOW:
        raise Rejected(-1131, f"recvWindow must be less than {MAX_RECV_WINDOW}.")
    start, given = tail
    expected = sign_fast(credential.secret, total[:start]).encode("ascii")
    if not hmac.compare_digest(expected, given.lower()):
        raise Rejected(-1022, "Signature for this request is not valid.")
    if timestamp >= wall_ms + 1000:
        raise Rejected(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if wall_ms - timestamp > window:
        raise Rejected(-1021, "Timestamp for this request is outside of the recvWindow.")
    return credential


@functools.lru_cache(maxsize=64)
def is_loopback(peer: str | None) -> bool:
    """Is ``peer`` (``request.remote``) a loopback address? (Memoised: a server sees few peers.)"""
    if not peer:
        return False
    try:
        return ipaddress.ip_address(peer.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def check_control(request: web.Request, token: str) -> None:
    """The control API's gate: loopback peers only (403), with the server's token (401)."""
    if not is_loopback(request.remote):
        raise Refused(403, -1002, "The control API answers loopback peers only.")
    given = request.headers.get(TOKEN_HEADER, "")
    if not hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8")):
        raise Refused(401, -2015, f"Missing or wrong {TOKEN_HEADER}.")
