"""Target 6: 100,000 accounts with positions in 10 symbols fit in less than 1 GiB of RSS.

Ten symbols (BTCUSDT, ETHUSDT and eight more on BTCUSDT's filters and brackets), the market maker
quoting each; 100,000 accounts of 10,000 USDT each open positions with market orders through the
engine (alternately long and short, 0.002 BTC-like / 0.05 ETH each): by default every account
holds a position in every one of the 10 symbols (1,000,000 positions: the target as the issue
states it); ``--positions-per-account 1`` gives each account one position, the symbols taken in
turn (10,000 positions per symbol). Each position comes with its order, fill and commission
income, the trigger index's key and the mark history the trades make. Virtual time advances one
second every 100 accounts (the market maker requotes).

Prints the resident set size (current and peak, from the kernel, the interpreter included) and
the bytes per account and per position; target: peak RSS < 1 GiB. ``--accounts`` sets the
population.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
import time
from decimal import Decimal
from pathlib import Path

from _common import Target, peak_rss_mib, profiled, report

from adapters.sim.config import SimConfig, SimInstrument, default_instruments
from adapters.sim.engine.exchange import Engine
from harness.clock import VirtualClock
from harness.model import OrderRequest, OrderType, Side

EXTRA = ("SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT", "AVAXUSDT", "LINKUSDT", "DOTUSDT")
LIMIT_MIB = 1024


def instruments() -> dict[str, SimInstrument]:
    out = default_instruments()
    btc = out["BTCUSDT"]
    for symbol in EXTRA:
        inst = dataclasses.replace(btc.instrument, symbol=symbol, base_asset=symbol[:-4])
        out[symbol] = dataclasses.replace(btc, instrument=inst)
    return out


def rss_mib() -> float:
    """Current resident set size in MiB (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1])
    return pages * 4096 / 2**20


def populate(engine: Engine, accounts: int, per_account: int) -> None:
    qty = {s: Decimal("0.05") if s == "ETHUSDT" else Decimal("0.002") for s in engine.instruments}
    requests = {
        (s, side): OrderRequest(symbol=s, side=side, type=OrderType.MARKET, quantity=q)
        for s, q in qty.items()
        for side in (Side.BUY, Side.SELL)
    }
    symbols = list(engine.instruments)
    for n in range(accounts):
        acct = engine.create_account(Decimal(10_000))
        side = Side.BUY if (n // len(symbols)) % 2 else Side.SELL
        for k in range(per_account):
            symbol = symbols[(n + k) % len(symbols)]
            engine.place_order(acct.account_id, requests[symbol, side])
        if n % 100 == 99:
            engine.clock.advance(1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--positions-per-account", type=int, default=10, choices=range(1, 11))
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    base = rss_mib()
    engine = Engine(SimConfig(seed=args.seed, instruments=instruments()), VirtualClock())
    start = time.perf_counter()
    per = args.positions_per_account
    profiled("memory_populate", args.profile, lambda: populate(engine, args.accounts, per))
    elapsed = time.perf_counter() - start
    gc.collect()
    positions = sum(len(a.open_positions()) for a in engine.accounts.values() if not a.exempt)
    now, peak = rss_mib(), peak_rss_mib()
    grown = (now - base) * 2**20
    print(
        f"populated {args.accounts:,} accounts, {positions:,} positions in {elapsed:.1f} s",
        file=sys.stderr,
    )
    return report(
        [
            Target(
                "rss now",
                f"{now:,.0f} MiB ({grown / args.accounts:,.0f} bytes/account, "
                f"{grown / max(positions, 1):,.0f} bytes/position)",
                "information",
                None,
            ),
            Target(
                f"peak rss, {args.accounts:,} accounts, {positions:,} positions in "
                f"{len(engine.instruments)} symbols",
                f"{peak:,.0f} MiB",
                f"< {LIMIT_MIB:,} MiB",
                peak < LIMIT_MIB,
            ),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
