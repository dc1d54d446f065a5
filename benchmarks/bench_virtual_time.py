"""Target 4: virtual time runs at least 500,000 times faster than real time.

1,000 accounts hold positions in BTCUSDT (funding every 8 h) and ETHUSDT (every hour): 500 pairs
that traded with each other at the index (a long and a short each; half of the pairs isolated, half
cross). Then the clock is advanced 30 days of virtual time, one hour per call as a check would:
every 1-s update of the venue (feeds, index, quotes, the mark, the liquidation scan, the monitor),
a premium sample every 5 s, every settlement paid to or by every position (90 BTCUSDT and 720
ETHUSDT settlements, 1,000 payments each). The market is quiet (noiseless feeds, a flat index),
which lets the engine take runs of identical updates in closed form; nothing sleeps.

Prints simulated seconds per real second (target >= 500,000) and the settlements paid;
``--noisy-hours N`` also runs N hours with 1-bp feed noise (every update differs) for information.
``--hours`` shortens the main run; ``--profile`` saves a cProfile of it.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
import time
from decimal import Decimal

from _common import Target, profiled, report

from adapters.sim.config import SimConfig, default_instruments
from adapters.sim.engine.exchange import Engine
from harness.clock import VirtualClock
from harness.model import MarginMode, OrderRequest, OrderType, Side, TimeInForce, quantize_down

HOUR_MS = 3_600_000
PAIRS = 500
TARGET = 500_000
LEGS = {"BTCUSDT": Decimal("0.01"), "ETHUSDT": Decimal("0.2")}


def build(seed: int, noise_bps: Decimal) -> Engine:
    instruments = {
        s: dataclasses.replace(si, feed_noise_bps=noise_bps)
        for s, si in default_instruments().items()
    }
    engine = Engine(SimConfig(seed=seed, instruments=instruments), VirtualClock())
    for pair in range(PAIRS):
        mode = MarginMode.ISOLATED if pair % 2 else MarginMode.CROSS
        long = engine.create_account(Decimal(10_000), f"long {pair}")
        short = engine.create_account(Decimal(10_000), f"short {pair}")
        for symbol, qty in LEGS.items():
            for acct in (long, short):
                if mode is MarginMode.ISOLATED:
                    engine.set_margin_mode(acct.account_id, symbol, mode)
                engine.set_leverage(acct.account_id, symbol, 10)
            price = quantize_down(engine.prices[symbol].index, engine.instruments[symbol].tick_size)
            bid = OrderRequest(
                symbol=symbol,
                side=Side.BUY,
                type=OrderType.LIMIT,
                quantity=qty,
                price=price,
                time_in_force=TimeInForce.GTC,
            )
            engine.place_order(long.account_id, bid)
            sell = OrderRequest(symbol=symbol, side=Side.SELL, type=OrderType.MARKET, quantity=qty)
            rec = engine.place_order(short.account_id, sell)
            assert rec.status == "FILLED", rec  # noqa: S101 - the pair traded with itself
    return engine


def run(engine: Engine, hours: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(hours):
        engine.clock.advance(HOUR_MS)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--hours", type=int, default=30 * 24)
    parser.add_argument("--noisy-hours", type=int, default=0)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)

    engine = build(args.seed, Decimal(0))
    settled_before = len(engine.funding.settlements)
    elapsed = profiled("virtual_time", args.profile, lambda: run(engine, args.hours))
    settlements = engine.funding.settlements[settled_before:]
    payments = sum(len(s.payments) for s in settlements)
    speed = args.hours * 3600 / elapsed
    targets = [
        Target(
            "quiet market",
            f"{args.hours / 24:g} days in {elapsed:.2f} s, {len(settlements)} settlements, "
            f"{payments:,} payments",
            "30 days, every settlement paid",
            None,
        ),
        Target(
            "virtual time speed", f"{speed:,.0f}x real time", f">= {TARGET:,}x", speed >= TARGET
        ),
    ]
    if args.noisy_hours:
        noisy = build(args.seed, Decimal(1))
        noisy_elapsed = run(noisy, args.noisy_hours)
        noisy_speed = args.noisy_hours * 3600 / noisy_elapsed
        targets.append(
            Target(
                "noisy feeds (1 bp)",
                f"{noisy_speed:,.0f}x real time over {args.noisy_hours} h",
                "every update differs; information",
                None,
            )
        )
    return report(targets)


if __name__ == "__main__":
    sys.exit(main())
