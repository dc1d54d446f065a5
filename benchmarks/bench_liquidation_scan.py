"""Target 3: the cost of one mark update depends on the positions that cross, not on all of them.

Two populations per margin mode (isolated, cross): 1,000 and 100,000 accounts, each holding one
BTCUSDT long of 0.01 BTC entered at 60,000 (cross accounts of the far population also hold an
ETHUSDT long, so their buckets span two symbols). Both populations share the same *near* part: 10
accounts per measured update whose liquidation prices lie between two consecutive marks of the
run, so that about 10 positions cross at each update; the rest (*far*) have liquidation prices 10 %
to 40 % below the mark (seeded), and never cross. The BTCUSDT index falls linearly (noiseless
feeds, a falling path); each measured update is one ``clock.advance(1000)``: feeds, index,
market-maker quotes, basis and premium samples, the mark, the anomaly monitor (its cascade early
warning every 5 s) and the liquidation scan with the liquidations it finds.

Positions are installed straight into the engine's account state (as restoring a snapshot would),
so the setup is not what is measured; the population is then moved out of the cyclic garbage
collector's generations (``gc.freeze``, as a long-running venue process would), so that a full
collection walking every object does not land in one size's measurement and not the other's.
Prints the mean time per update at both sizes and the ratio (target <= 2 for each mode);
``--profile`` saves a cProfile of the 100,000-account cross run.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import random
import sys
import time
from decimal import ROUND_UP, Decimal
from functools import partial
from itertools import pairwise

from _common import Target, profiled, report

from adapters.sim.config import SimConfig, default_instruments
from adapters.sim.engine.exchange import Engine
from harness.clock import VirtualClock
from harness.model import MarginMode, PricePath

BTC, ETH = "BTCUSDT", "ETHUSDT"
ENTRY = Decimal(60000)
QTY = Decimal("0.01")
ETH_QTY = Decimal("0.1")
ETH_ENTRY = Decimal(3000)
MMR, ETH_MMR = Decimal("0.004"), Decimal("0.005")
UPDATES = 20  # measured updates
PER_UPDATE = 10  # positions crossing per update
FALL_PER_S = Decimal(3)  # USDT per second of the BTCUSDT index
SIZES = (1_000, 100_000)
TARGET_RATIO = 2.0
UNIT = Decimal("0.00000001")


def _config(seed: int) -> SimConfig:
    instruments = {
        s: dataclasses.replace(si, feed_noise_bps=Decimal(0))
        for s, si in default_instruments().items()
    }
    return SimConfig(seed=seed, instruments=instruments, initial_funding_rate=Decimal(0))


def _falling(engine: Engine) -> None:
    seconds = 3_600
    path = PricePath(
        points=((0, ENTRY), (seconds * 1000, ENTRY - FALL_PER_S * seconds)), linear=True
    )
    engine.set_price_path(BTC, path)


def dry_marks(seed: int) -> list[Decimal]:
    """The BTCUSDT marks of the measured updates, on an engine without positions."""
    engine = Engine(_config(seed), VirtualClock())
    _falling(engine)
    engine.clock.advance(1000)  # the warm-up update (not measured)
    marks = [engine.mark(BTC)]
    for _ in range(UPDATES):
        engine.clock.advance(1000)
        marks.append(engine.mark(BTC))
    return marks


def liquidation_prices(n: int, marks: list[Decimal], seed: int) -> list[Decimal]:
    """``PER_UPDATE`` prices inside each measured update's mark step, then the far ones."""
    rng = random.Random(seed)
    near: list[Decimal] = []
    for before, after in pairwise(marks):
        for _ in range(PER_UPDATE):
            near.append(after + (before - after) * Decimal(rng.randint(1, 999)) / 1000)
    far = [
        (marks[0] * (1 - Decimal(rng.randint(1000, 4000)) / 10_000)).quantize(Decimal("0.01"))
        for _ in range(n - len(near))
    ]
    # Interleave, so that the near accounts are not all at the start of the account table.
    out: list[Decimal] = far
    step = max(len(far) // max(len(near), 1), 1)
    for i, lp in enumerate(near):
        out.insert(min(i * (step + 1), len(out)), lp)
    return out


def build(n: int, mode: MarginMode, marks: list[Decimal], seed: int) -> Engine:
    engine = Engine(_config(seed), VirtualClock())
    _falling(engine)
    for lp in liquidation_prices(n, marks, seed):
        # Equity = maintenance at lp: W + Q(lp - E) = Q lp mmr (first tier, cum 0).
        wallet = (QTY * ENTRY - QTY * lp * (1 - MMR)).quantize(UNIT, rounding=ROUND_UP)
        far = lp < marks[-1] - 100
        extra = ETH_QTY * ETH_ENTRY * ETH_MMR if far and mode is MarginMode.CROSS else Decimal(0)
        acct = engine.create_account(wallet + extra)
        pos = acct.position(BTC, 50)
        if mode is MarginMode.ISOLATED:
            pos.margin_mode = MarginMode.ISOLATED
            acct.margin_modes[BTC] = MarginMode.ISOLATED
            acct.cross_wallet -= wallet
            pos.isolated_wallet = wallet
        pos.qty, pos.entry = QTY, ENTRY
        if extra:
            eth = acct.position(ETH, 20)
            eth.qty, eth.entry = ETH_QTY, ETH_ENTRY
    engine.clock.advance(1000)  # the warm-up update: every index and quote in place
    return engine


def measure(engine: Engine) -> tuple[float, int]:
    """Mean seconds per update over the measured updates, and the liquidations they made."""
    before = len(engine.liquidator.records)
    # The population is long-lived: move it out of the cyclic collector's generations, as a
    # long-running venue process would (gc.freeze), so a full collection does not walk it.
    gc.collect()
    gc.freeze()
    start = time.perf_counter()
    for _ in range(UPDATES):
        engine.clock.advance(1000)
    elapsed = time.perf_counter() - start
    gc.unfreeze()
    return elapsed / UPDATES, len(engine.liquidator.records) - before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--large", type=int, default=SIZES[1], help="the large population")
    parser.add_argument("--profile", action="store_true", help="cProfile the large cross run")
    args = parser.parse_args(argv)
    marks = dry_marks(args.seed)
    targets: list[Target] = []
    for mode in (MarginMode.ISOLATED, MarginMode.CROSS):
        per_update: dict[int, float] = {}
        for n in (SIZES[0], args.large):
            engine = build(n, mode, marks, args.seed)
            profile = args.profile and n == args.large and mode is MarginMode.CROSS
            seconds, liquidations = profiled("liquidation_scan", profile, partial(measure, engine))
            per_update[n] = seconds
            name = f"{mode.value.lower()} {n:,} accounts"
            targets.append(
                Target(
                    name,
                    f"{seconds * 1000:.2f} ms/update, {liquidations / UPDATES:.1f} "
                    "liquidations/update",
                    "per mark update",
                    None,
                )
            )
            del engine
            gc.collect()
        ratio = per_update[args.large] / per_update[SIZES[0]]
        targets.append(
            Target(
                f"{mode.value.lower()} scan ratio {args.large:,}/{SIZES[0]:,}",
                f"{ratio:.2f}",
                f"<= {TARGET_RATIO}",
                ratio <= TARGET_RATIO,
            )
        )
    return report(targets)


if __name__ == "__main__":
    sys.exit(main())
