"""benchmarks/bench_http.py: reading wrk's report, and the pool of signed orders it replays.

No wrk runs here: the reports below were recorded from wrk 4.1.0 (Debian) against the
benchmark's hello server (the second one on a missing route, every answer a 404).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qsl

import pytest

from adapters.sim.server.auth import sign

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

OK_REPORT = """\
Running 2s test @ http://127.0.0.1:35957/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   553.85us  144.57us   3.99ms   96.25%
    Req/Sec    29.25k   531.19    30.57k    75.00%
  Latency Distribution
     50%  536.00us
     75%  557.00us
     90%  601.00us
     99%    0.94ms
  58234 requests in 2.00s, 9.83MB read
Requests/sec:  29101.66
Transfer/sec:      4.91MB
"""

NOT_FOUND_REPORT = """\
Running 2s test @ http://127.0.0.1:35957/missing
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.08ms    1.42ms  12.96ms   96.01%
    Req/Sec    19.03k     1.39k   20.74k    60.00%
  Latency Distribution
     50%  748.00us
     75%  820.00us
     90%    1.17ms
     99%    9.93ms
  37860 requests in 2.00s, 6.28MB read
  Non-2xx or 3xx responses: 37860
Requests/sec:  18916.43
Transfer/sec:      3.14MB
"""

# A slow run: latencies in seconds, socket errors (the lines wrk prints in that case).
SLOW_REPORT = """\
Running 1m test @ http://127.0.0.1:8080/fapi/v1/order
  1 threads and 64 connections
  Latency Distribution
     50%    1.50s
     75%    1.80s
     90%    1.90s
     99%    2.00s
  1200 requests in 1.00m, 1.00MB read
  Socket errors: connect 0, read 3, write 0, timeout 12
  Non-2xx or 3xx responses: 200
Requests/sec:     20.00
Transfer/sec:     17.00KB
"""


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))  # bench_http imports its sibling _common
    try:
        spec = importlib.util.spec_from_file_location("bench_http", BENCHMARKS / "bench_http.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_http"] = module  # dataclasses resolve their module by name
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_parse_reads_rate_percentiles_and_counts(bench: ModuleType) -> None:
    result = bench.parse_wrk(OK_REPORT)
    assert result.requests == 58234
    assert result.seconds == pytest.approx(2.0)
    assert result.requests_per_s == pytest.approx(29101.66)
    assert result.p50_ms == pytest.approx(0.536)
    assert result.p99_ms == pytest.approx(0.94)
    assert result.non_2xx == 0
    assert result.socket_errors == 0
    assert result.ok_per_s == pytest.approx(58234 / 2.0)


def test_non_2xx_answers_are_not_counted_as_served(bench: ModuleType) -> None:
    result = bench.parse_wrk(NOT_FOUND_REPORT)
    assert result.non_2xx == 37860
    assert result.requests_per_s == pytest.approx(18916.43)  # wrk's own figure counts them
    assert result.ok_per_s == 0
    assert result.p50_ms == pytest.approx(0.748)
    assert result.p99_ms == pytest.approx(9.93)


def test_parse_converts_seconds_and_minutes_and_sums_socket_errors(bench: ModuleType) -> None:
    result = bench.parse_wrk(SLOW_REPORT)
    assert result.seconds == pytest.approx(60.0)
    assert result.p50_ms == pytest.approx(1500.0)
    assert result.p99_ms == pytest.approx(2000.0)
    assert result.socket_errors == 15
    assert result.ok_per_s == pytest.approx(1000 / 60)


@pytest.mark.parametrize(
    "report",
    [
        "",
        OK_REPORT.replace("Requests/sec:", "Requests per second:"),
        OK_REPORT.replace("     99%    0.94ms\n", ""),  # run without --latency
    ],
)
def test_a_report_missing_a_figure_is_refused(bench: ModuleType, report: str) -> None:
    with pytest.raises(ValueError, match="not a wrk --latency report"):
        bench.parse_wrk(report)


def test_the_pool_is_signed_and_alternates_accounts_and_sides(bench: ModuleType) -> None:
    accounts = [["keyA", "secretA"], ["keyB", "secretB"]]
    lines = list(bench.signed_pool(accounts, "60001.80", 8, now_ms=1_700_000_000_000, tag="t"))
    seen: list[tuple[str, str]] = []
    cids = set()
    for line in lines:
        key, body = line.split("\t")
        signed, _, signature = body.rpartition("&signature=")
        secret = dict(accounts)[key]
        assert signature == sign(secret, signed.encode())
        params = dict(parse_qsl(signed, keep_blank_values=True))
        assert params["recvWindow"] == "60000"
        assert params["timestamp"] == "1700000000000"
        assert params["price"] == "60001.80"
        cids.add(params["newClientOrderId"])
        seen.append((key, params["side"]))
    assert len(cids) == 8
    cycle = [("keyA", "BUY"), ("keyB", "SELL"), ("keyB", "BUY"), ("keyA", "SELL")]
    assert seen == cycle * 2
