"""Target 5: signed order placement over HTTP at >= 50 % of a bare aiohttp JSON handler's req/s.

Three servers, each in its own child process on 127.0.0.1 with the same event loop (asyncio's
default, as ``perpcheck serve`` runs; ``--loop uvloop`` for all), are loaded in turn by ``wrk``
(a native load generator: a Python client saturates before the server does):

* **hello**: a bare aiohttp application whose one handler answers ``{"hello": "world"}``;
* **shape** (informative, ``--no-shape`` skips it): a bare handler taking the same signed POSTs
  and answering a fixed order object of the sim's size with the sim's headers, doing no work:
  the ratio the request and answer sizes alone leave;
* **sim**: the simulator's HTTP venue (:func:`adapters.sim.server.runner.start_server`), loaded
  with ``POST /fapi/v1/order``: every request goes through the whole server path (parameter
  parsing, the gateway's rate-limit accounting, the API key and HMAC-SHA256 signature and
  timestamp checks, the order parameters, matching with full bookkeeping, the JSON answer).

wrk's Lua has no HMAC: the requests are signed here just before each run (a pool larger than the
run can use, ``recvWindow=60000`` against the server's wall clock, a unique ``newClientOrderId``
each) and ``benchmarks/wrk/signed_orders.lua`` cycles through them. Orders really match: two
accounts trade 0.002 BTC limit orders at one price inside the market maker's spread in the cycle
A buys, B sells, B buys, A sells, so positions oscillate around zero and the book neither grows
nor empties (requests on different connections may arrive out of order: an order then rests a
little longer, or meets its own account's order and self-trade prevention expires the resting
one; the fills are counted and printed).

Rate limiting stays on: every request rolls and charges the weight window and both order
windows of its account. Binance's real order limits (300 per 10 s, 1200 per minute) would refuse
all but the first 300 orders of a run, which measures the 429 path, not placement; the server's
limits are raised to 10^9 instead (same code path, no refusal). Every non-2xx
answer (a 429 included) is counted and is not a placement: the figure is 2xx answers per second.

Each side runs ``--rounds`` times (default 2), interleaved; the target line is the best sim
figure over the best hello figure. Also printed: p50/p99 latency, non-2xx counts, the fills the
engine made, the spread over rounds, and each server's CPU time per request (from /proc: less
sensitive than req/s to other processes on a shared machine). Exits 1 when the ratio misses 0.5,
2 when wrk is not installed. ``--profile`` runs the sim server under cProfile, ``--py-spy``
samples it with py-spy; both save to benchmarks/out/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import OUT, Target, profiled, report

HERE = Path(__file__).resolve().parent
LUA = HERE / "wrk" / "signed_orders.lua"
SYMBOL = "BTCUSDT"
QUANTITY = "0.002"  # 0.002 BTC at ~60,000: over the 100 USDT minimum notional
TARGET = 0.5
RECV_WINDOW = 60_000  # Binance's maximum; the pool must be used within it
HUGE = 10**9  # the server's rate limits during the benchmark (module docstring)
INSTALL = "wrk not found: install it (Debian/Ubuntu: sudo apt-get install wrk) or pass --wrk PATH"

__all__ = ["WrkResult", "parse_wrk", "signed_pool"]


# ---------------------------------------------------------------------- wrk output
@dataclass(frozen=True, slots=True)
class WrkResult:
    """What one wrk run measured; ``ok_per_s`` counts 2xx answers only."""

    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def ok_per_s(self) -> float:
        return (self.requests - self.non_2xx) / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        return (
            f"{self.ok_per_s:,.0f} 2xx req/s, p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms,"
            f" {self.requests} requests, {self.non_2xx} non-2xx, {self.socket_errors} socket errors"
        )


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", re.M)
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_PERCENTILE = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)", re.M)
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def parse_wrk(text: str) -> WrkResult:
    """Read wrk's ``--latency`` report (ValueError when a figure is missing)."""
    total, rate = _TOTAL.search(text), _RATE.search(text)
    percentiles = {
        m.group(1): float(m.group(2)) * _UNIT_MS[m.group(3)] for m in _PERCENTILE.finditer(text)
    }
    if total is None or rate is None or set(percentiles) != {"50", "99"}:
        msg = f"not a wrk --latency report:\n{text}"
        raise ValueError(msg)
    non_2xx = _NON_2XX.search(text)
    sockets = _SOCKET.search(text)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=float(total.group(2)) * _UNIT_MS[total.group(3)] / 1000,
        requests_per_s=float(rate.group(1)),
        p50_ms=percentiles["50"],
        p99_ms=percentiles["99"],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in sockets.groups()) if sockets else 0,
    )


# ---------------------------------------------------------------------- the servers (children)
# What the sim answers an order placement (a filled 0.002 BTC limit order), for the "shape" server.
SHAPE_BODY = (
    '{"orderId":82,"symbol":"BTCUSDT","status":"FILLED","clientOrderId":"r0-1","price":'
    '"60001.80","avgPrice":"60001.80000000","origQty":"0.002","executedQty":"0.002","cumQty":'
    '"0.002","cumQuote":"120.00360","timeInForce":"GTC","type":"LIMIT","reduceOnly":false,'
    '"closePosition":false,"side":"SELL","positionSide":"BOTH","stopPrice":"0","workingType":'
    '"CONTRACT_PRICE","priceProtect":false,"origType":"LIMIT","priceMatch":"NONE",'
    '"selfTradePreventionMode":"EXPIRE_MAKER","goodTillDate":0,"updateTime":1700000000000}'
)
SHAPE_HEADERS = {
    "X-SIM-TIME": "1700000000000",
    "X-MBX-USED-WEIGHT-1M": "0",
    "X-MBX-ORDER-COUNT-10S": "1",
    "X-MBX-ORDER-COUNT-1M": "1",
}


async def _serve_bare(ready: dict[str, Any], kind: str) -> tuple[Any, dict[str, Any]]:
    """``hello``: GET / answers {"hello": "world"}; ``shape``: POST /fapi/v1/order reads the
    body and answers a fixed order object with the sim's headers (no work at all)."""
    from aiohttp import web

    async def hello(_request: web.Request) -> web.Response:
        return web.json_response({"hello": "world"})

    async def shape(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text=SHAPE_BODY, content_type="application/json", headers=SHAPE_HEADERS)

    app = web.Application()
    if kind == "hello":
        app.router.add_get("/", hello)
    else:
        app.router.add_post("/fapi/v1/order", shape)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    ready["base_url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
    return runner, {}


async def _serve_sim(ready: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    from adapters.sim.server.runner import start_server
    from harness.model import quantize_down
    from harness.venue import RateLimits, VenueConfig

    handle = await start_server(VenueConfig(seed=seed, options={"balance": "1000000"}))
    engine = handle.engine
    gateway = engine.gateway
    gateway.set_limits(
        RateLimits(weight_per_minute=HUGE, orders_per_10s=HUGE, orders_per_minute=HUGE)
    )
    other = engine.create_account(Decimal(1_000_000), "bench B")
    b_key = handle.keys.issue(other.account_id, seat="bench-b")
    book = engine.books[SYMBOL]
    bid, ask = book.best_bid(), book.best_ask()
    tick = engine.instruments[SYMBOL].tick_size
    if bid is None or ask is None or ask - bid <= tick:
        msg = f"no room inside the {SYMBOL} spread ({bid}, {ask}) for the benchmark's orders"
        raise RuntimeError(msg)
    price = quantize_down((bid + ask) / 2, tick)
    ready.update(
        base_url=handle.base_url,
        price=format(price, "f"),
        accounts=[[handle.api_key, handle.api_secret], [b_key.api_key, b_key.secret]],
    )
    ids = (handle.account_id, other.account_id)

    def stats() -> dict[str, Any]:
        accounts = [engine.accounts[i] for i in ids]
        return {
            "orders": sum(len(a.orders) for a in accounts),
            "fills": sum(len(a.fills) for a in accounts),
            "resting": sum(1 for _ in book.orders_of(ids[0]))
            + sum(1 for _ in book.orders_of(ids[1])),
        }

    return handle, {"stats": stats}


def serve(kind: str, seed: int) -> None:
    """Child process: serve ``kind``, print one JSON line, serve until SIGTERM, print stats."""

    async def main() -> dict[str, Any]:
        ready: dict[str, Any] = {"kind": kind, "pid": os.getpid()}
        if kind in ("hello", "shape"):
            server, extra = await _serve_bare(ready, kind)
        else:
            server, extra = await _serve_sim(ready, seed)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        print(json.dumps(ready), flush=True)
        await stop.wait()
        result = extra["stats"]() if "stats" in extra else {}
        await (server.stop() if kind == "sim" else server.cleanup())
        return result

    return_value = asyncio.run(main())
    print(json.dumps(return_value), flush=True)


# ---------------------------------------------------------------------- the client (parent)
def signed_pool(
    accounts: list[list[str]], price: str, count: int, *, now_ms: int, tag: str
) -> Iterator[str]:
    """``count`` lines ``key<TAB>signed form body``: A buys, B sells, B buys, A sells, ..."""
    from adapters.sim.server.auth import sign

    cycle = ((0, "BUY"), (1, "SELL"), (1, "BUY"), (0, "SELL"))
    for i in range(count):
        who, side = cycle[i % 4]
        key, secret = accounts[who]
        body = (
            f"symbol={SYMBOL}&side={side}&type=LIMIT&timeInForce=GTC&quantity={QUANTITY}"
            f"&price={price}&newClientOrderId={tag}-{i}&recvWindow={RECV_WINDOW}"
            f"&timestamp={now_ms}"
        )
        yield f"{key}\t{body}&signature={sign(secret, body.encode())}"


class Child:
    """A server child process and its ready line."""

    def __init__(self, kind: str, loop: str, seed: int, profile: bool) -> None:
        cmd = [sys.executable, __file__, "--serve", kind, "--loop", loop, "--seed", str(seed)]
        if profile:
            cmd.append("--profile")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)  # noqa: S603
        assert self.proc.stdout is not None  # noqa: S101 - PIPE
        line = self.proc.stdout.readline()
        if not line:
            msg = f"the {kind} server did not start (exit {self.proc.wait()})"
            raise RuntimeError(msg)
        self.info: dict[str, Any] = json.loads(line)

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        lines = [x for x in out.splitlines() if x.startswith("{")]
        return json.loads(lines[-1]) if lines else {}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Side:
    """One server's wrk figures and the CPU time it spent per request."""

    wrk: WrkResult
    cpu_us: float

    def describe(self) -> str:
        return f"{self.wrk.describe()}, server CPU {self.cpu_us:.0f} us/request"


def measure(
    wrk: str, url: str, args: argparse.Namespace, pid: int, script: tuple[str, ...] = ()
) -> Side:
    before = cpu_seconds(pid)
    result = run_wrk(wrk, url, args, script)
    used = cpu_seconds(pid) - before
    return Side(result, used / result.requests * 1e6 if result.requests else 0.0)


def run_wrk(
    wrk: str, url: str, args: argparse.Namespace, script: tuple[str, ...] = ()
) -> WrkResult:
    """One wrk run; ``script``: the Lua script and its arguments (after the URL)."""
    cmd = [wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    if script:
        cmd += ["-s", script[0], url, "--", *script[1:]]
    else:
        cmd.append(url)
    out = subprocess.run(  # noqa: S603 - our own command line
        cmd, capture_output=True, text=True, check=False, timeout=args.duration * 4 + 60
    )
    if out.returncode:
        msg = f"wrk failed (exit {out.returncode}): {out.stderr.strip() or out.stdout.strip()}"
        raise RuntimeError(msg)
    return parse_wrk(out.stdout)


def round_bare(wrk: str, args: argparse.Namespace, kind: str, pool: Path) -> Side:
    """Load the bare ``hello`` (GET /) or ``shape`` server (the signed pool's POSTs)."""
    child = Child(kind, args.loop, args.seed, profile=False)
    try:
        url = child.info["base_url"]
        if kind == "hello":
            return measure(wrk, url + "/", args, child.proc.pid)
        return measure(wrk, url, args, child.proc.pid, (str(LUA), str(pool)))
    finally:
        child.stop()


def start_py_spy(args: argparse.Namespace, pid: int) -> subprocess.Popen[bytes] | None:
    """With ``--py-spy``: sample the sim server for the run (collapsed stacks in OUT)."""
    if not args.py_spy:
        return None
    OUT.mkdir(parents=True, exist_ok=True)
    target = OUT / "http_sim_server.pyspy.txt"
    cmd = [args.py_spy, "record", "-p", str(pid), "-d", str(args.duration), "-r", "250"]
    print(f"py-spy profile: {target}", file=sys.stderr)
    return subprocess.Popen(  # noqa: S603 - our own command line
        [*cmd, "-f", "raw", "-o", str(target)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def round_sim(wrk: str, args: argparse.Namespace, n: int, tmp: Path) -> tuple[Side, dict[str, Any]]:
    child = Child("sim", args.loop, args.seed, profile=args.profile)
    try:
        info = child.info
        pool = tmp / f"pool-{n}.txt"
        now_ms = time.time_ns() // 1_000_000
        lines = signed_pool(info["accounts"], info["price"], args.pool, now_ms=now_ms, tag=f"r{n}")
        pool.write_text("\n".join(lines) + "\n", encoding="ascii")
        spy = start_py_spy(args, child.proc.pid)
        result = measure(wrk, info["base_url"], args, child.proc.pid, (str(LUA), str(pool)))
        if spy is not None:
            spy.wait(timeout=args.duration + 60)
    finally:
        stats = child.stop()
    return result, stats


def _spread(values: list[float]) -> str:
    return f"{min(values):,.0f}..{max(values):,.0f}"


@dataclass(frozen=True, slots=True)
class Round:
    """One round: the bare handler, the sim, the bare POST of the same shape, engine counts."""

    hello: Side
    sim: Side
    shape: Side | None
    stats: dict[str, Any]


def summarize(rounds: list[Round], args: argparse.Namespace) -> list[Target]:
    """The target line (best sim 2xx req/s over best hello req/s) and informative lines."""
    hello = max((r.hello for r in rounds), key=lambda x: x.wrk.ok_per_s)
    best = max(rounds, key=lambda r: r.sim.wrk.ok_per_s)
    sim = best.sim
    ratio = sim.wrk.ok_per_s / hello.wrk.ok_per_s if hello.wrk.ok_per_s else 0.0
    cpu_hello = min(r.hello.cpu_us for r in rounds)
    cpu_sim = min(r.sim.cpu_us for r in rounds)
    per_round = ", ".join(
        f"{r.sim.wrk.ok_per_s / r.hello.wrk.ok_per_s:.2f}" for r in rounds if r.hello.wrk.ok_per_s
    )
    targets = [
        Target(
            "http signed order placement",
            f"{sim.wrk.ok_per_s:,.0f} req/s, ratio {ratio:.2f}",
            f"target >= {TARGET}",
            ratio >= TARGET,
        ),
        Target(
            "http signed order placement latency",
            f"p50 {sim.wrk.p50_ms:.2f} ms, p99 {sim.wrk.p99_ms:.2f} ms, {sim.wrk.non_2xx} non-2xx,"
            f" {best.stats.get('fills', '?')} fills, {best.stats.get('resting', '?')} left resting",
            f"{args.connections} connections",
            None,
        ),
        Target(
            "http bare aiohttp hello",
            f"{hello.wrk.ok_per_s:,.0f} req/s, p50 {hello.wrk.p50_ms:.2f} ms, "
            f"p99 {hello.wrk.p99_ms:.2f} ms, {hello.wrk.non_2xx} non-2xx",
            f"event loop: {args.loop}",
            None,
        ),
    ]
    shapes = [r.shape for r in rounds if r.shape is not None]
    if shapes:
        shape = max(shapes, key=lambda x: x.wrk.ok_per_s)
        ceiling = shape.wrk.ok_per_s / hello.wrk.ok_per_s if hello.wrk.ok_per_s else 0.0
        targets.append(
            Target(
                "http bare POST of the same shape",
                f"{shape.wrk.ok_per_s:,.0f} req/s, ratio {ceiling:.2f}, "
                f"CPU {min(x.cpu_us for x in shapes):.0f} us/request",
                "informative: the ceiling the request and answer sizes alone leave",
                None,
            )
        )
    targets += [
        Target(
            "http server CPU per request",
            f"hello {cpu_hello:.0f} us, sim {cpu_sim:.0f} us, ratio {cpu_hello / cpu_sim:.2f}"
            if cpu_sim
            else "n/a",
            "informative: less sensitive to a busy machine than req/s",
            None,
        ),
        Target(
            "http spread over rounds",
            f"hello {_spread([r.hello.wrk.ok_per_s for r in rounds])}, "
            f"sim {_spread([r.sim.wrk.ok_per_s for r in rounds])} req/s, "
            f"ratio per round {per_round}",
            f"{len(rounds)} rounds of {args.duration} s",
            None,
        ),
    ]
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="hello/sim pairs to run (2)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (5)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--pool", type=int, default=0, help="signed requests per run (auto)")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--wrk", default=None, help="the wrk binary (default: on PATH)")
    parser.add_argument("--profile", action="store_true", help="cProfile the sim server")
    parser.add_argument(
        "--py-spy",
        nargs="?",
        const="py-spy",
        default=None,
        metavar="PATH",
        help="sample the sim server with py-spy (pip install py-spy)",
    )
    parser.add_argument(
        "--no-shape", action="store_true", help="skip the bare POST of the same shape"
    )
    parser.add_argument("--serve", choices=("hello", "shape", "sim"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if args.serve:
        profiled(f"http_{args.serve}_server", args.profile, lambda: serve(args.serve, args.seed))
        return 0
    if args.py_spy and shutil.which(args.py_spy) is None:
        print(f"py-spy not found ({args.py_spy}): pip install py-spy", file=sys.stderr)
        return 2
    wrk = args.wrk or shutil.which("wrk")
    if wrk is None or not Path(wrk).exists():
        print(INSTALL, file=sys.stderr)
        return 2
    # Enough signed requests for 25,000 req/s (2.5x the bare handler on this kind of machine).
    args.pool = args.pool or 25_000 * args.duration
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="bench_http-") as tmp:
        for n in range(args.rounds):
            hello = round_bare(wrk, args, "hello", Path())
            sim, stats = round_sim(wrk, args, n, Path(tmp))
            pool = Path(tmp) / f"pool-{n}.txt"
            shape = None if args.no_shape else round_bare(wrk, args, "shape", pool)
            rounds.append(Round(hello, sim, shape, stats))
            print(f"round {n + 1}: hello {hello.describe()}", flush=True)
            print(f"round {n + 1}: sim   {sim.describe()}; engine {stats}", flush=True)
            if shape is not None:
                print(f"round {n + 1}: shape {shape.describe()}", flush=True)
            if sim.wrk.requests > args.pool:
                print(f"  (the pool of {args.pool} signed requests wrapped around)", flush=True)
    targets = summarize(rounds, args)
    if args.profile:
        print(f"profile: {OUT / 'http_sim_server.prof'}", file=sys.stderr)
    return report(targets)


if __name__ == "__main__":
    sys.exit(main())
