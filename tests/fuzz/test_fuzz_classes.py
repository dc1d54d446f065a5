"""Each class of bad input gets its documented Binance code, and the engine stays consistent.

Hypothesis draws requests from the parameter table (tests/fuzz/cases.py): a valid request for
one endpoint with exactly one defect (missing, empty, malformed, out-of-range or unknown values,
repeated or too many parameters, invalid UTF-8, extra parameters, huge and negative numbers,
API-key problems, missing/bad/foreign/misplaced signatures, stale and future timestamps, bad
recvWindow, a 1 MiB body, replays after the window, an order replayed with its client id), sent
byte for byte over loopback. Each answer must be the code that class gets (PROTOCOL.md
"Errors", binance-usdm-surface.md §3-4) with its status, as a ``{code, msg}`` JSON body, and one
of the codes the OpenAPI description lists for that endpoint and status. Afterwards the engine's
invariants hold (tests/fuzz/invariants.py) and every parameter a handler read is documented.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.sim.engine.gateway import ENDPOINTS
from adapters.sim.server.params import Params
from adapters.sim.server.surface import OPERATIONS
from tests.fuzz.cases import DEFECTS, Case, Context, Expect, documented, draw_case, security_of
from tests.fuzz.conftest import FuzzStats, check_invariants, scaled, server_settings
from tests.fuzz.kit import FuzzServer, RawClient, Reply

EXAMPLES = 130
BATCH = 40  # requests drawn per example (a few examples stop early)
MINIMUM = 4_400  # with tests/fuzz/test_fuzz_random.py and test_schemathesis.py: >= 10,000
CURRENT: list[tuple[str, str]] = []  # the endpoint being sent (the server reads it on a thread)
READS: dict[tuple[str, str], set[str]] = defaultdict(set)
SEEN: dict[str, int] = defaultdict(int)


@pytest.fixture(scope="module")
def recording() -> Iterator[None]:
    """Record every parameter name a handler reads, per endpoint (``Params.text`` is the root
    of every typed getter)."""
    original = Params.text

    def text(self: Params, name: str, *, required: bool = False) -> str | None:
        if CURRENT:
            READS[CURRENT[-1]].add(name)
        return original(self, name, required=required)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Params, "text", text)
        yield


@pytest.fixture(scope="module")
def ctx(fuzz_server: FuzzServer) -> Context:
    engine = fuzz_server.handle.engine
    marks = fuzz_server.call(lambda: {s: engine.mark(s) for s in engine.instruments})
    return Context(
        api_key=fuzz_server.handle.api_key,
        secret=fuzz_server.handle.api_secret,
        instruments=dict(engine.instruments),
        marks=marks,
    )


def _assert_binance_shape(reply: Reply, case: Case) -> None:
    assert reply.status < 500, (case, reply)
    assert reply.headers.get("Content-Type", "").startswith("application/json"), (case, reply)
    assert "X-SIM-TIME" in reply.headers
    if reply.status >= 400:
        assert isinstance(reply.json, dict), (case, reply)
        assert set(reply.json) == {"code", "msg"}, (case, reply)
        assert isinstance(reply.json["code"], int), (case, reply)
        assert isinstance(reply.json["msg"], str), (case, reply)
        assert reply.json["msg"], (case, reply)
        assert documented(case.key, reply.status, reply.code), (
            f"{case.key} answered {reply.status} {reply.code}, not in its OpenAPI description",
            case,
        )


def _send(server: FuzzServer, client: RawClient, case: Case, stats: FuzzStats) -> Reply:
    first: Reply | None = None
    for step in case.steps:
        expect = step.expect
        if case.defect == "replayed-order" and first is not None and first.status != 200:
            expect = Expect(status=first.status, codes=frozenset({first.code or 0}))
        if step.shift_ms:
            server.clock.offset_ms += step.shift_ms
        CURRENT.append(case.key)
        try:
            reply = client.send(step.request)
        finally:
            CURRENT.pop()
            server.clock.offset_ms -= step.shift_ms
        stats.count("classes", reply.status, reply.code)
        _assert_binance_shape(reply, case)
        assert expect.admits(case.key, reply.status, reply.code), (
            f"{case.defect} on {case.key}: expected {expect}, got {reply.status} {reply.raw!r}",
            step.request,
        )
        first = first or reply
    assert first is not None
    return first


def _learn(ctx: Context, case: Case, reply: Reply) -> None:
    body = reply.json
    if case.key == ("POST", "/fapi/v1/order") and isinstance(body, dict) and "orderId" in body:
        ctx.order_ids.append(int(body["orderId"]))
        ctx.client_ids.append(str(body["clientOrderId"]))


@server_settings(EXAMPLES)
@given(data=st.data())
def test_each_defect_class_gets_its_documented_code(
    fuzz_server: FuzzServer,
    fuzz_stats: FuzzStats,
    ctx: Context,
    recording: None,
    data: st.DataObject,
) -> None:
    client = RawClient(fuzz_server.host, fuzz_server.port)
    started = time.monotonic()
    try:
        for _ in range(BATCH):
            case = draw_case(data.draw, ctx)
            SEEN[case.defect] += 1
            _learn(ctx, case, _send(fuzz_server, client, case, fuzz_stats))
    finally:
        client.close()
        fuzz_stats.seconds += time.monotonic() - started
    check_invariants(fuzz_server)


def test_every_defect_class_and_endpoint_was_exercised(fuzz_stats: FuzzStats) -> None:
    """The run above reached every class (its coverage, not luck) and no undocumented read."""
    if not SEEN:
        pytest.skip("runs after test_each_defect_class_gets_its_documented_code")
    assert fuzz_stats.sent["classes"] >= scaled(MINIMUM)
    assert set(DEFECTS) <= set(SEEN), set(DEFECTS) - set(SEEN)
    for key, names in READS.items():
        documented_names = {p.name for p in OPERATIONS[key].params}
        if security_of(key) == "signed":
            documented_names |= {"timestamp", "recvWindow"}
        assert names <= documented_names, (key, names - documented_names)
    assert set(READS) <= set(ENDPOINTS)
