"""A fake transport for ccxt async clients: recorded exchanges replayed, requests recorded.

:class:`FakeTransport` replaces a client's ``fetch`` (the one method that touches the network)
and does what ccxt's ``fetch`` does after a response arrives — decode the body with the
client's own JSON hook, remember headers, call ``handle_errors`` and
``handle_http_status_code`` — so the adapter's hooks, parsing and error translation run exactly
as against the venue. Each request is normalised (method, URL without query, parameters from
query and body without timestamp/signature/recvWindow, whether it was signed) for comparison
with the fixture's recorded request.

Fixture files (``tests/fixtures/ccxt/<venue>.json``) hold ``cases``: a name mapped to the list
of ``{"request": {...}, "response": {"status", "headers", "body"}}`` the adapter's method makes,
in order. A response ``"drop": true`` is a connection closed without an answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ccxt.async_support as ccxt_async

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ccxt"
UNSIGNED = {"timestamp", "signature", "recvWindow"}
SIGNATURE_HEADERS = ("x-mbx-apikey", "x-bapi-sign", "ok-access-sign")


def load_fixture(venue: str) -> dict[str, Any]:
    """A venue's fixture file; JSON numbers become exact Decimals (never floats)."""
    text = (FIXTURES / f"{venue}.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text, parse_float=Decimal)
    return data


def dumps(obj: Any) -> str:
    """JSON with Decimals written as exact numbers, as venues write them."""
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, list | tuple):
        return "[" + ",".join(dumps(v) for v in obj) + "]"
    return json.dumps(obj)


@dataclass(frozen=True, slots=True)
class Seen:
    """One request as the venue would have received it, normalised."""

    method: str
    url: str
    params: Any
    signed: bool
    headers: Mapping[str, str]

    def as_fixture(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "params": self.params,
            "signed": self.signed,
        }


def normalise(method: str, url: str, headers: Mapping[str, str] | None, body: Any) -> Seen:
    parts = urlsplit(url)
    lowered = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    params: Any = dict(query)
    if body:
        text = body.decode() if isinstance(body, bytes) else str(body)
        if lowered.get("content-type", "").startswith("application/json"):
            decoded = json.loads(text)
            params = decoded if isinstance(decoded, list) else {**params, **decoded}
        else:
            params.update(dict(parse_qsl(text, keep_blank_values=True)))
    signed = any(h in lowered for h in SIGNATURE_HEADERS) or "signature" in params
    if isinstance(params, dict):
        params = {k: v for k, v in params.items() if k not in UNSIGNED}
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    return Seen(method=method.upper(), url=base, params=params, signed=signed, headers=lowered)


@dataclass
class FakeTransport:
    """Serves ``script`` (recorded exchanges) to one ccxt client, in order."""

    exchange: Any
    script: list[dict[str, Any]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.exchange.fetch = self.fetch
        self.exchange.enableRateLimit = False  # ccxt's client-side throttle only slows tests

    def serve(self, exchanges: list[dict[str, Any]]) -> None:
        self.script = list(exchanges)
        self.seen = []

    async def fetch(
        self, url: str, method: str = "GET", headers: Any = None, body: Any = None
    ) -> Any:
        ex = self.exchange
        request_headers = ex.prepare_request_headers(headers)
        self.seen.append(normalise(method, url, request_headers, body))
        if not self.script:
            msg = f"unexpected request {method} {url}"
            raise AssertionError(msg)
        response = self.script.pop(0)["response"]
        if response.get("drop"):
            msg = f"{ex.id} {method} {url}"
            raise ccxt_async.ExchangeNotAvailable(msg)
        status = int(response.get("status", 200))
        reply_headers = {"Content-Type": "application/json", **response.get("headers", {})}
        body_out = response.get("body", "")
        text = body_out if isinstance(body_out, str) else dumps(body_out)  # str: a raw page
        parsed = ex.parse_json(text)
        ex.last_http_response = text
        ex.last_response_headers = reply_headers
        ex.handle_errors(
            status, "", url, method, reply_headers, text, parsed, request_headers, body
        )
        ex.handle_http_status_code(status, "", url, method, text)
        return parsed

    def expected(self, exchanges: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e["request"] for e in exchanges]

    def actual(self) -> list[dict[str, Any]]:
        return [s.as_fixture() for s in self.seen]
