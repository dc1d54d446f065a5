"""``GET /openapi.json``: an OpenAPI 3.0 description of the Binance surface the server serves.

Generated, never written by hand: the paths and methods are the server's own route table (every
``/fapi`` and ``/sim`` route, nothing else: the control API and the WebSocket paths are not part
of the Binance surface), the parameters and endpoint-specific refusals come from
:data:`~adapters.sim.server.surface.OPERATIONS`, the weights and which endpoints are signed from
the gateway's :data:`~adapters.sim.engine.gateway.ENDPOINTS`, the symbols from the engine. A
route without a table entry is an error here, so the description cannot drift from what is served.

Security is Binance's (binance-usdm-surface.md §3): the ``X-MBX-APIKEY`` header (``ApiKeyAuth``)
on USER_STREAM and signed endpoints, and on signed ones the ``signature`` query parameter
(``Signature``: hex HMAC-SHA256 of the query string and body with the API secret) with the
``timestamp``/``recvWindow`` parameters. Every refusal is ``{"code", "msg"}``; each response
lists the codes that endpoint can answer with that status (PROTOCOL.md "Errors").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web

from adapters.sim.engine.gateway import ENDPOINTS
from adapters.sim.server.auth import API_KEY_HEADER, MAX_RECV_WINDOW
from adapters.sim.server.params import DECIMAL_PATTERN, INTEGER_PATTERN, MAX_FIELDS
from adapters.sim.server.state import ENGINE
from adapters.sim.server.surface import OPERATIONS, Kind, Operation, Param, Shape
from adapters.sim.server.wire import json_response
from adapters.sim.venue import SIM_VERSION

__all__ = [
    "AUTH_STATUS",
    "MAX_BODY_BYTES",
    "PREFIXES",
    "describe",
    "error_codes",
    "openapi_json",
    "served",
]

PREFIXES = ("/fapi/", "/sim/")
AUTH_STATUS = 401
MAX_BODY_BYTES = 1024**2  # aiohttp's client_max_size: a larger body is 413 -1101
PARSE_CODES = (-1100, -1101)  # every endpoint: unreadable or too many parameters
SIGNING_CODES = (-1102, -1131, -1022, -1021, -1130)  # timestamp/recvWindow/signature
KEY_CODES = (-2014, -2015)
OPEN_RANGE = "Parameters may be sent in the query string or a form body (the query wins)."


def served(routes: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The ``(method, path)`` pairs of ``routes`` that belong to the Binance surface."""
    return sorted({(m, p) for m, p in routes if p.startswith(PREFIXES)})


def _security(key: tuple[str, str], op: Operation) -> str:
    if ENDPOINTS[key].signed:
        return "signed"
    return "api-key" if op.api_key else "none"


def error_codes(method: str, path: str) -> dict[int, tuple[int, ...]]:
    """HTTP status -> the codes ``method path`` may answer with it (faults included)."""
    key = (method, path)
    op = OPERATIONS[key]
    security = _security(key, op)
    bad: list[int] = list(PARSE_CODES)
    required = any(p.required for p in op.params) or bool(op.one_of)
    if required or security == "signed" or any(p.kind is Kind.INTEGER for p in op.params):
        bad.append(-1102)
    if any(_takes_range(p) for p in op.params):
        bad.append(-1130)
    if any(p.kind is Kind.SYMBOL for p in op.params):
        bad.append(-1121)
    for p in op.params:
        if p.kind in (Kind.ENUM, Kind.BOOLEAN):
            bad.append(p.invalid_code)
        bad.extend(code for _, code in p.refused)
    if security == "signed":
        bad.extend(SIGNING_CODES)
    bad.extend(op.errors)
    codes: dict[int, tuple[int, ...]] = {400: _unique(bad)}
    if security != "none":
        codes[AUTH_STATUS] = KEY_CODES
    codes[413] = (-1101,)
    orders = ENDPOINTS[key].orders
    codes[418] = (-1003,)
    codes[429] = (-1003, -1015) if orders else (-1003,)
    codes[503] = (-1001,)
    return codes


def _takes_range(p: Param) -> bool:
    return p.minimum is not None or p.maximum is not None or p.kind is Kind.BOOLEAN


def _unique(codes: Iterable[int]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(codes))


def _schema(p: Param, symbols: Sequence[str]) -> dict[str, Any]:
    if p.kind is Kind.SYMBOL:
        return {"type": "string", "enum": list(symbols)}
    if p.kind is Kind.INTEGER:
        schema: dict[str, Any] = {"type": "integer", "format": "int64"}
        if p.minimum is not None:
            schema["minimum"] = p.minimum
        if p.maximum is not None:
            schema["maximum"] = p.maximum
        return schema
    if p.kind is Kind.DECIMAL:
        return {"type": "string", "pattern": DECIMAL_PATTERN.pattern}
    if p.kind is Kind.BOOLEAN:
        return {"type": "boolean"}
    if p.kind is Kind.ENUM:
        return {"type": "string", "enum": list(p.values)}
    schema = {"type": "string", "minLength": 1}
    if p.pattern is not None:
        schema["pattern"] = p.pattern
    return schema


def _refusals(p: Param) -> str:
    parts = []
    if p.bad_format_code is not None:
        parts.append(f"malformed: {p.bad_format_code}")
    if p.kind is Kind.SYMBOL:
        parts.append("not listed: -1121")
    if _takes_range(p) and p.kind is Kind.INTEGER:
        parts.append("out of range: -1130")
    if p.kind in (Kind.ENUM, Kind.BOOLEAN):
        case = " (any case)" if p.any_case or p.kind is Kind.BOOLEAN else ""
        parts.append(f"other values{case}: {p.invalid_code}")
    parts.extend(f"{value}: {code}" for value, code in p.refused)
    return "; ".join(parts)


def _parameter(p: Param, symbols: Sequence[str]) -> dict[str, Any]:
    refusals = _refusals(p)
    text = " ".join(x for x in (p.description, f"Refused: {refusals}." if refusals else "") if x)
    out: dict[str, Any] = {
        "name": p.name,
        "in": "query",
        "required": p.required,
        "schema": _schema(p, symbols),
    }
    if not p.required:  # an empty value is read as "not sent", as Binance does
        out["allowEmptyValue"] = True
    if text:
        out["description"] = text
    return out


SIGNED_PARAMS: list[dict[str, Any]] = [
    {
        "name": "timestamp",
        "in": "query",
        "required": True,
        "schema": {"type": "integer", "format": "int64"},
        "description": "Wall ms; within recvWindow of the server's time (-1021), at most 1 s "
        "ahead (-1021); missing or malformed -1102.",
    },
    {
        "name": "recvWindow",
        "in": "query",
        "required": False,
        "allowEmptyValue": True,
        "schema": {"type": "integer", "format": "int64", "minimum": 0, "maximum": MAX_RECV_WINDOW},
        "description": f"Default 5000; over {MAX_RECV_WINDOW} -1131, negative -1130.",
    },
]


def _error_response(codes: tuple[int, ...], description: str) -> dict[str, Any]:
    return {
        "description": f"{description} Codes: {', '.join(str(c) for c in codes)}.",
        "content": {
            "application/json": {
                "schema": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Error"},
                        {"type": "object", "properties": {"code": {"enum": list(codes)}}},
                    ]
                }
            }
        },
    }


_STATUS_TEXT = {
    400: "Refused: bad parameters, signature, timestamp, or the venue's rules.",
    AUTH_STATUS: "Refused: missing, malformed or unknown API key.",
    413: f"Refused: a body over {MAX_BODY_BYTES} bytes.",
    418: "Banned for sending inside a Retry-After (header Retry-After).",
    429: "Over a rate limit (header Retry-After).",
    503: "Only while a fault is injected (error burst, maintenance).",
}
_SHAPES = {
    Shape.OBJECT: {"type": "object"},
    Shape.ARRAY: {"type": "array"},
    Shape.EITHER: {"anyOf": [{"type": "object"}, {"type": "array"}]},
}
_NUMBER_HEADER = {"schema": {"type": "string", "pattern": "^[0-9]+$"}}


def _operation(method: str, path: str, symbols: Sequence[str]) -> dict[str, Any]:
    key = (method, path)
    op = OPERATIONS[key]
    security = _security(key, op)
    params = [_parameter(p, symbols) for p in op.params]
    if security == "signed":
        params += SIGNED_PARAMS
    description = [OPEN_RANGE]
    if op.one_of:
        description.append(f"At least one of {', '.join(op.one_of)} is required (-1102).")
    weight = ENDPOINTS[key].weight
    out: dict[str, Any] = {
        "operationId": f"{method.lower()}{path.replace('/', '_')}",
        "summary": op.summary,
        "description": " ".join(description),
        "tags": [op.tag],
        "parameters": params,
        "security": {
            "signed": [{"ApiKeyAuth": [], "Signature": []}],
            "api-key": [{"ApiKeyAuth": []}],
            "none": [],
        }[security],
        "responses": {
            "200": {
                "description": "OK",
                "headers": {"X-SIM-TIME": _NUMBER_HEADER, "X-MBX-USED-WEIGHT-1M": _NUMBER_HEADER},
                "content": {"application/json": {"schema": _SHAPES[op.shape]}},
            },
            **{
                str(status): _error_response(codes, _STATUS_TEXT[status])
                for status, codes in error_codes(method, path).items()
            },
        },
        "x-security-type": {"signed": "SIGNED", "api-key": "USER_STREAM", "none": "NONE"}[security],
    }
    if isinstance(weight, int):
        out["x-weight"] = weight
    return out


def describe(
    routes: Iterable[tuple[str, str]], *, symbols: Sequence[str], server_url: str | None = None
) -> dict[str, Any]:
    """The OpenAPI document for the Binance routes among ``routes`` (``(method, path)`` pairs).

    Raises:
        KeyError: a served route that :data:`~adapters.sim.server.surface.OPERATIONS` lacks.
    """
    paths: dict[str, dict[str, Any]] = {}
    for method, path in served(routes):
        if (method, path) not in OPERATIONS:
            msg = f"{method} {path} is served but not described: add it to surface.OPERATIONS"
            raise KeyError(msg)
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, symbols)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "perpcheck simulator: Binance USDⓈ-M futures surface",
            "version": SIM_VERSION,
            "description": (
                "The Binance USDⓈ-M REST endpoints the simulator serves (PROTOCOL.md). Market "
                "times are virtual ms, request timestamps wall ms. Every refusal is JSON "
                '{"code", "msg"}. An unknown path is 404 -1099, a wrong method 405 -1099. '
                f"At most {MAX_FIELDS} parameters (-1101); integers match "
                f"{INTEGER_PATTERN.pattern} and are 64-bit (else -1102); an empty value is "
                "not sent."
            ),
        },
        "servers": [{"url": server_url or "/"}],
        "tags": [{"name": t} for t in ("market", "account", "trade", "user-stream", "sim")],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER},
                "Signature": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "signature",
                    "description": "Hex HMAC-SHA256 of the raw query string followed by the raw "
                    "body (without the signature, which comes last), keyed with the API secret.",
                },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["code", "msg"],
                    "additionalProperties": False,
                    "properties": {"code": {"type": "integer"}, "msg": {"type": "string"}},
                }
            },
        },
    }


async def openapi_json(request: web.Request) -> web.Response:
    """``GET /openapi.json``: public, weight 0 (not a Binance endpoint, not charged)."""
    routes = [
        (route.method, route.resource.canonical)
        for route in request.app.router.routes()
        if route.resource is not None
    ]
    symbols = list(request.app[ENGINE].instruments)
    return json_response(describe(routes, symbols=symbols, server_url=_listening(request)))


def _listening(request: web.Request) -> str | None:
    """The address the request came in on (not its Host header, which the client chose)."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not isinstance(sockname, tuple) or len(sockname) < 2:
        return None
    host, port = sockname[0], sockname[1]
    shown = f"[{host}]" if ":" in str(host) else str(host)
    return f"{request.scheme}://{shown}:{port}"
