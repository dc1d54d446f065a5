"""schemathesis against the server's own ``GET /openapi.json``: the description holds.

schemathesis loads the description from the running server (127.0.0.1) and generates requests
for every operation, schema-valid (positive) and schema-violating (negative). Most are made to
pass authentication the way a client would (the account's API key, a fresh ``timestamp``, the
HMAC ``signature`` over the query as sent), so that the handlers run; the rest go out as
generated (no key, random keys, stale or random timestamps, no signature). Every answer is
judged by schemathesis' own checks against the description: no 5xx, a documented status, JSON,
the response schema (errors exactly ``{code, msg}`` with a code the operation lists for that
status), the documented headers, and a schema-violating request refused (for requests sent as
generated).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from adapters.sim.server import sign
from tests.fuzz.conftest import FuzzStats, check_invariants, scaled, server_settings
from tests.fuzz.kit import FuzzServer, wall_ms

EXAMPLES = 2_000  # one request each
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
Operation = tuple[Any, GenerationMode, st.SearchStrategy[Any]]


@pytest.fixture(scope="module")
def operations(fuzz_server: FuzzServer) -> list[Operation]:
    schema = schemathesis.openapi.from_url(fuzz_server.handle.base_url + "/openapi.json")
    ops = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert len(ops) >= 40, "the description lost operations"
    return [
        (op, mode, op.as_strategy(generation_mode=mode))
        for op in ops
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]


@pytest.fixture(scope="module")
def session() -> Any:
    with requests.Session() as s:
        yield s


def _prepare(
    case: Any, server: FuzzServer, *, repair: bool, fresh: bool
) -> requests.PreparedRequest:
    """The request for ``case``; ``repair``: with the account's key and a valid signature."""
    security = case.operation.definition.raw.get("x-security-type", "NONE")
    if repair and security != "NONE":
        case.headers = {**(case.headers or {}), "X-MBX-APIKEY": server.handle.api_key}
    if repair and security == "SIGNED":
        query = {k: v for k, v in (case.query or {}).items() if k != "signature"}
        if fresh:
            query["timestamp"] = wall_ms()
        case.query = query
    kwargs = case.as_transport_kwargs(base_url=server.handle.base_url)
    wanted = ("method", "url", "params", "headers", "cookies", "data", "json")
    prepared = requests.Request(**{k: v for k, v in kwargs.items() if k in wanted}).prepare()
    if repair and security == "SIGNED":
        assert prepared.url is not None
        query_text = urlsplit(prepared.url).query
        body = prepared.body  # none: the description has no request bodies
        assert body is None or isinstance(body, str | bytes), body
        raw = body.encode() if isinstance(body, str) else body or b""
        payload = query_text.encode() + raw
        signature = sign(server.handle.api_secret, payload)
        prepared.url += ("&" if query_text else "?") + "signature=" + signature
    return prepared


@server_settings(EXAMPLES, tuple(HealthCheck))
@given(data=st.data())
def test_schemathesis_finds_every_answer_as_described(
    fuzz_server: FuzzServer,
    fuzz_stats: FuzzStats,
    operations: list[Operation],
    session: Any,
    data: st.DataObject,
) -> None:
    _, mode, strategy = data.draw(st.sampled_from(operations))
    case = data.draw(strategy)
    repair = data.draw(st.integers(0, 3)) > 0  # three in four pass authentication
    fresh = mode is GenerationMode.POSITIVE or data.draw(st.booleans())
    prepared = _prepare(case, fuzz_server, repair=repair, fresh=fresh)
    started = time.monotonic()
    response = session.send(prepared, timeout=30)
    fuzz_stats.seconds += time.monotonic() - started
    body = response.json() if response.content else None
    code = body.get("code") if isinstance(body, dict) and response.status_code >= 400 else None
    fuzz_stats.count("schemathesis", response.status_code, code)
    checks = list(CHECKS)
    if mode is GenerationMode.NEGATIVE and not repair:  # a repaired case is no longer invalid
        checks.append(negative_data_rejection)
    case.validate_response(response, checks=checks)


def test_the_engine_is_consistent_after_schemathesis(
    fuzz_server: FuzzServer, fuzz_stats: FuzzStats
) -> None:
    check_invariants(fuzz_server)
    if fuzz_stats.sent["schemathesis"]:
        assert fuzz_stats.sent["schemathesis"] >= scaled(EXAMPLES)
