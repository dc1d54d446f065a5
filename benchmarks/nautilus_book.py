"""nautilus_trader's ``OrderMatchingEngine`` driven from Python on bench_matching's stream.

For orientation only (issue 9, target 2): installed by the optional ``bench`` extra
(``pip install -e '.[bench]'``); without it :func:`version` is ``None`` and bench_matching says so.

The set-up follows nautilus_trader's own matching-engine tests: a ``TestClock``, a
``MessageBus``, the test kit's cache and its Binance ``BTCUSDT-PERP`` instrument (tick 0.1, step
0.001, as the stream's), an L1 book quoted one tick either side of the stream's mid (1,000 BTC a
side), NETTING positions, a MARGIN account. Its resting orders are the traders' orders and its
liquidity is the quote: the stream's passive adds rest, its marketable orders fill against the
quote, its cancels cancel. The execution engine's part is played by a handler on
``ExecEngine.process`` that applies every event to its order (the order state nautilus keeps).

Orders, their ``OrderSubmitted`` events and the cancel commands are built before the clock
starts, as bench_matching builds the engine's requests. Identifiers are made from the stream
position, so a run is the same every time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from importlib import import_module
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from typing import Any

__all__ = ["NautilusRun", "version"]

ADD, CANCEL = 0, 1  # bench_matching's action kinds (TAKE is any other)


def version() -> str | None:
    """nautilus_trader's version, or None when it is not installed."""
    try:
        return dist_version("nautilus_trader")
    except PackageNotFoundError:
        return None


def _uuid(nt: Any, i: int) -> Any:
    return nt.UUID4.from_str(str(uuid.UUID(int=i + 1, version=4)))


class _Nautilus:
    """The nautilus_trader names used here, imported on first use."""

    def __init__(self) -> None:
        def get(module: str, *names: str) -> None:
            mod = import_module(module)
            for name in names:
                setattr(self, name, getattr(mod, name))

        get("nautilus_trader.backtest.engine", "OrderMatchingEngine")
        get("nautilus_trader.backtest.models", "FillModel", "MakerTakerFeeModel")
        get("nautilus_trader.common.component", "MessageBus", "TestClock")
        get("nautilus_trader.core.uuid", "UUID4")
        get("nautilus_trader.execution.messages", "CancelOrder")
        get("nautilus_trader.model.data", "QuoteTick")
        get(
            "nautilus_trader.model.enums",
            "AccountType",
            "BookType",
            "OmsType",
            "OrderSide",
            "TimeInForce",
        )
        get("nautilus_trader.model.events", "OrderSubmitted")
        get("nautilus_trader.model.identifiers", "AccountId", "ClientOrderId", "StrategyId")
        get("nautilus_trader.model.identifiers", "TraderId")
        get("nautilus_trader.model.objects", "Price", "Quantity")
        get("nautilus_trader.model.orders", "LimitOrder", "MarketOrder")
        get("nautilus_trader.test_kit.providers", "TestInstrumentProvider")
        get("nautilus_trader.test_kit.stubs.component", "TestComponentStubs")


class NautilusRun:
    """The matching engine through ``stream`` (bench_matching actions), a slice at a time."""

    def __init__(self, stream: Sequence[tuple[Any, ...]], mid: Any, tick: Any) -> None:
        nt = self.nt = _Nautilus()
        self.trader, self.strategy = nt.TraderId("TRADER-001"), nt.StrategyId("S-001")
        self.account = nt.AccountId("SIM-001")
        self.clock = nt.TestClock()
        msgbus = nt.MessageBus(trader_id=self.trader, clock=self.clock)
        self.instrument = inst = nt.TestInstrumentProvider.btcusdt_perp_binance()
        cache = nt.TestComponentStubs.cache()
        cache.add_instrument(inst)
        self.engine = nt.OrderMatchingEngine(
            instrument=inst,
            raw_id=0,
            fill_model=nt.FillModel(),
            fee_model=nt.MakerTakerFeeModel(),
            book_type=nt.BookType.L1_MBP,
            oms_type=nt.OmsType.NETTING,
            account_type=nt.AccountType.MARGIN,
            msgbus=msgbus,
            cache=cache,
            clock=self.clock,
        )
        self.orders: dict[Any, Any] = {}
        self.events: dict[str, int] = {}
        msgbus.register("ExecEngine.process", self._on_event)
        side_qty = nt.Quantity.from_str("1000.000")
        self.engine.process_quote_tick(
            nt.QuoteTick(
                inst.id,
                nt.Price.from_str(str(mid - tick)),
                nt.Price.from_str(str(mid + tick)),
                side_qty,
                side_qty,
                0,
                0,
            )
        )
        self.inputs = self._build(stream)
        self.seconds = 0.0

    def _on_event(self, event: Any) -> None:
        name = type(event).__name__
        self.events[name] = self.events.get(name, 0) + 1
        order = self.orders.get(event.client_order_id)
        if order is not None:
            order.apply(event)

    def _build(self, stream: Sequence[tuple[Any, ...]]) -> list[tuple[int, Any]]:
        nt, inst = self.nt, self.instrument
        ids = {"trader_id": self.trader, "strategy_id": self.strategy, "instrument_id": inst.id}
        by_key: dict[int, Any] = {}
        out: list[tuple[int, Any]] = []
        buy, sell = nt.OrderSide.BUY, nt.OrderSide.SELL
        for i, (kind, _trader, key, side, price, qty) in enumerate(stream):
            if kind == CANCEL:
                command = nt.CancelOrder(
                    client_order_id=by_key[key],
                    venue_order_id=None,
                    command_id=_uuid(nt, 2 * i),
                    ts_init=0,
                    **ids,
                )
                out.append((CANCEL, command))
                continue
            cid = nt.ClientOrderId(f"O-{i}")
            order_side = buy if side.value == "BUY" else sell
            quantity = nt.Quantity.from_str(str(qty))
            if kind == ADD:
                order = nt.LimitOrder(
                    client_order_id=cid,
                    order_side=order_side,
                    quantity=quantity,
                    price=nt.Price.from_str(str(price)),
                    time_in_force=nt.TimeInForce.GTC,
                    init_id=_uuid(nt, 2 * i),
                    ts_init=0,
                    **ids,
                )
                by_key[key] = cid
            else:
                order = nt.MarketOrder(
                    client_order_id=cid,
                    order_side=order_side,
                    quantity=quantity,
                    init_id=_uuid(nt, 2 * i),
                    ts_init=0,
                    **ids,
                )
            submitted = nt.OrderSubmitted(
                self.trader, self.strategy, inst.id, cid, self.account, _uuid(nt, 2 * i + 1), 0, 0
            )
            order.apply(submitted)
            self.orders[cid] = order
            out.append((kind, order))
        return out

    def run(self, lo: int, hi: int) -> float:
        """Actions ``lo`` to ``hi``; the seconds they took."""
        process_order, process_cancel = self.engine.process_order, self.engine.process_cancel
        account = self.account
        start = time.perf_counter()
        for kind, item in self.inputs[lo:hi]:
            if kind == CANCEL:
                process_cancel(item, account)
            else:
                process_order(item, account)
        took = time.perf_counter() - start
        self.seconds += took
        return took
