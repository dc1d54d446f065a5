"""A test-only pytest plugin that stops a run at a chosen point and says so, so a test can kill
or interrupt it there: deterministically, without guessing with wall-clock sleeps.

Loaded in the run under test with ``PYTEST_PLUGINS=tests.plugin.pause_hook`` (pytest reads it,
xdist workers inherit it). ``PERPCHECK_TEST_PAUSE`` says where to stop:

* ``after:ORD-001``: once ORD-001's result is written (between two checks);
* ``inside:ORD-004:2``: inside check ORD-004, right after its 2nd order was accepted; it then
  places a market order for the same quantity too, so the venue holds a resting order *and* an
  open position of the run while the check is mid-flight.

At that point it writes ``PERPCHECK_TEST_MARKER`` (JSON: where it stopped, the run folder, the
venue's open orders and position for the run) and waits until a signal ends the wait: SIGKILL, or
SIGINT (which the event loop turns into KeyboardInterrupt). The wait is bounded (``WAIT_S``)
so a test that fails to signal never leaves a process behind forever.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from harness.model import OrderRequest, OrderType
from harness.results import CheckResult
from harness.safety import SafeAccount

WAIT_S = 60.0
_current: dict[str, str] = {}


def _where() -> tuple[str, str, int]:
    kind, _, rest = os.environ.get("PERPCHECK_TEST_PAUSE", "").partition(":")
    check, _, n = rest.partition(":")
    return kind, check, int(n or 0)


def _mark(data: dict[str, Any]) -> None:
    _current["paused"] = "yes"  # this process (of an xdist run's several) is the one that paused
    marker = Path(os.environ["PERPCHECK_TEST_MARKER"])
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(marker)  # the test never reads half a marker


def pytest_runtest_setup(item: pytest.Item) -> None:
    spec = getattr(getattr(item, "function", None), "perpcheck_spec", None)
    _current["check"] = getattr(spec, "id", "")
    _current["orders"] = "0"


def pytest_perpcheck_check_finished(item: pytest.Item, result: CheckResult) -> None:
    kind, check, _ = _where()
    if kind == "after" and result.id == check:
        _mark({"at": f"after:{check}", "pid": os.getpid()})
        threading.Event().wait(WAIT_S)  # a signal ends it (SIGKILL); bounded in any case


_place_order = SafeAccount.place_order


async def _pausing_place_order(self: SafeAccount, request: OrderRequest) -> Any:
    order = await _place_order(self, request)
    kind, check, n = _where()
    if kind != "inside" or _current.get("check") != check:
        return order
    _current["orders"] = str(int(_current.get("orders", "0")) + 1)
    if int(_current["orders"]) != n:
        return order
    extra = replace(
        request, type=OrderType.MARKET, price=None, time_in_force=None, client_order_id=None
    )
    await _place_order(self, extra)
    prefix = self._prefix
    orders = await self.inner.open_orders(request.symbol)
    position = sum(
        (p.quantity for p in await self.inner.positions() if p.symbol == request.symbol),
        Decimal(0),
    )
    _mark(
        {
            "at": f"inside:{check}:{n}",
            "pid": os.getpid(),
            "prefix": prefix,
            "symbol": request.symbol,
            "open_orders": [str(o.client_order_id) for o in orders],
            "position": str(position),
        }
    )
    # Wait inside the running event loop, as a check waiting on the venue does: Ctrl-C reaches
    # the check here, mid-flight.
    await asyncio.wait_for(asyncio.get_running_loop().create_future(), WAIT_S)
    return order


if _where()[0] == "inside":
    SafeAccount.place_order = _pausing_place_order  # type: ignore[method-assign]


async def _venue_state(handle: Any) -> dict[str, Any]:
    """Open orders and positions of the server's trading account, asked over HTTP by a fresh
    client (not the run's), the way a person would check a testnet account afterwards."""
    from adapters.ccxt_venue._wire import Wire
    from adapters.ccxt_venue.binance import BinanceAccount
    from adapters.ccxt_venue.clients import binance_client

    ex = binance_client(
        api_key=handle.api_key, secret=handle.api_secret, wire=Wire(), base_url=handle.base_url
    )
    try:
        account = BinanceAccount(ex, account_id=handle.account_id, venue_name="sim-http")
        orders = await account.open_orders()
        positions = await account.positions()
    finally:
        await ex.close()
    return {
        "open_orders": [str(o.client_order_id) for o in orders],
        "positions": {p.symbol: str(p.quantity) for p in positions if p.quantity},
    }


def _dump_before_stop() -> None:
    """Record the venue's state when the run stops a ``sim-http`` server (after its cleanup):
    the test reads ``PERPCHECK_TEST_AFTER``. Only the process that paused records, once: its
    first stop after the pause is the paused check's venue (other xdist workers run other
    checks on servers of their own)."""
    from adapters.sim.server.runner import ServerHandle

    stop = ServerHandle.stop

    def paused_and_not_dumped() -> bool:
        return (
            bool(_current.get("paused")) and not Path(os.environ["PERPCHECK_TEST_AFTER"]).exists()
        )

    def dump(state: dict[str, Any]) -> None:
        Path(os.environ["PERPCHECK_TEST_AFTER"]).write_text(json.dumps(state), encoding="utf-8")

    async def dumping_stop(self: Any) -> None:
        if paused_and_not_dumped():
            dump(await _venue_state(self))
        await stop(self)

    ServerHandle.stop = dumping_stop  # type: ignore[method-assign]


if os.environ.get("PERPCHECK_TEST_AFTER"):
    _dump_before_stop()
