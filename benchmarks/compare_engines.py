"""Run the same seeded order flow on two source trees' simulator engines; compare their state.

Usage: python benchmarks/compare_engines.py --reference-tree DIR [--seeds 1 2 3] [--steps 3000]

Each tree runs in its own interpreter (``DIR`` first on PYTHONPATH; this checkout for the other)
through the random order flow of tests/sim/simkit.py (orders, cancels, time, price moves, depth
changes, isolated and cross accounts) and, for a quiet market, hours of funding; after every
100 operations it writes a digest of what the venue publishes or records: wallets, positions,
orders, fills, income, order books, marks and their history, funding settlements, liquidations,
ADL, alerts. The digests must be identical (exit 1 otherwise). It checks optimizations against the
engine they replaced, beyond the reference mode the tests compare with
(tests/sim/test_fast_paths.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_RUNNER = r"""
import json, random, sys
from decimal import Decimal as D
from harness.model import MarginMode, Side
from tests.sim.simkit import BTC, ETH, limit, make_engine, market, random_operation


def s(v):
    return None if v is None else str(v)


def digest(engine):
    accounts = {}
    for a in engine.accounts.values():
        accounts[a.account_id] = {
            "cross": s(a.cross_wallet),
            "positions": [
                [p.symbol, s(p.qty), s(p.entry), s(p.isolated_wallet), p.leverage,
                 str(p.margin_mode), p.update_ms]
                for p in a.positions.values()
            ],
            "orders": [
                [r.order_id, r.client_order_id, r.side, r.type, r.time_in_force, s(r.price),
                 s(r.orig_qty), s(r.executed_qty), s(r.cum_quote), r.status, r.time_ms,
                 r.update_time_ms, r.reduce_only, r.liquidation]
                for r in a.orders.values()
            ],
            "fills": [[f.trade_id, f.order_id, f.side, s(f.price), s(f.qty), s(f.commission),
                       f.maker, s(f.realized_pnl), f.time_ms] for f in a.fills],
            "income": [[str(i.income_type), s(i.amount), i.symbol, i.time_ms, i.tran_id, i.info]
                       for i in a.income],
        }
    books = {
        sym: [b.update_id, [[s(p), s(q)] for p, q in b.levels(Side.BUY, 10**6)],
              [[s(p), s(q)] for p, q in b.levels(Side.SELL, 10**6)]]
        for sym, b in engine.books.items()
    }
    prices = {
        sym: [s(st.mark), s(st.index), s(st.last_price), s(st.p1), s(st.p2), st.mark_time_ms,
              [[t, s(m), s(i), s(l)] for t, m, i, l in st.history],
              [s(x) for x in st.basis_samples], st.next_funding_ms, s(st.last_funding_rate)]
        for sym, st in engine.prices.items()
    }
    return {
        "clock": engine.clock.now_ms(),
        "accounts": accounts,
        "books": books,
        "prices": prices,
        "settlements": [[x.symbol, x.funding_time_ms, s(x.rate), s(x.mark), s(x.residual),
                         sorted((k, s(v)) for k, v in x.payments.items())]
                        for x in engine.funding.settlements],
        "liquidations": [repr(r) for r in engine.liquidator.records],
        "adl": [repr(r) for r in engine.liquidator.adl_records],
        "alerts": [repr(a) for a in engine.monitor.alerts],
    }


def flow(seed, steps):
    engine = make_engine(seed=seed)
    accounts = []
    for i in range(8):
        acct = engine.create_account(D(2_000) if i % 3 else D(200_000))
        if i % 2:
            engine.set_margin_mode(acct.account_id, BTC, MarginMode.ISOLATED)
        accounts.append(acct.account_id)
    rng = random.Random(seed)
    out = []
    for step in range(steps):
        random_operation(engine, rng, accounts)
        if step % 100 == 99:
            out.append(digest(engine))
    return out


def quiet(seed):
    engine = make_engine(seed=seed, quiet=True)
    ids = []
    for pair in range(6):
        long, short = engine.create_account(D(5_000)), engine.create_account(D(5_000))
        for symbol, qty in ((BTC, "0.05"), (ETH, "0.8")):
            for acct in (long, short):
                if pair % 2:
                    engine.set_margin_mode(acct.account_id, symbol, MarginMode.ISOLATED)
            price = engine.prices[symbol].index
            engine.place_order(long.account_id, limit(symbol, Side.BUY, qty, price))
            engine.place_order(short.account_id, market(symbol, Side.SELL, qty))
        ids += [long.account_id, short.account_id]
    out = []
    for hour in range(30):
        engine.clock.advance(3_600_000 if hour % 3 else 1_234_567)
        if hour % 7 == 3:
            engine.place_order(ids[hour % len(ids)], market(ETH, Side.BUY, "0.1"))
        out.append(digest(engine))
    return out


seeds = [int(x) for x in sys.argv[1].split(",")]
steps = int(sys.argv[2])
result = {str(seed): flow(seed, steps) for seed in seeds}
result["quiet"] = quiet(seeds[0])
json.dump(result, sys.stdout)
"""


def _run(tree: Path, seeds: list[int], steps: int) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{ROOT}"}
    proc = subprocess.run(  # noqa: S603 - our interpreter running our code
        [sys.executable, "-c", _RUNNER, ",".join(map(str, seeds)), str(steps)],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, object] = json.loads(proc.stdout)
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-tree", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args(argv)
    reference = _run(args.reference_tree.resolve(), args.seeds, args.steps)
    current = _run(ROOT, args.seeds, args.steps)
    differences = 0
    for key in reference:
        ref_digests, cur_digests = reference[key], current.get(key)
        if (
            not isinstance(ref_digests, list)
            or not isinstance(cur_digests, list)
            or len(cur_digests) != len(ref_digests)
        ):
            print(f"{key}: digest counts differ")
            differences += 1
            continue
        for i, (a, b) in enumerate(zip(ref_digests, cur_digests, strict=True)):
            if a != b:
                print(f"{key}: first difference at digest {i} (after {(i + 1) * 100} steps)")
                differences += 1
                break
    checked = sum(len(v) for v in reference.values() if isinstance(v, list))
    print(f"compare_engines: {checked} digests compared, {differences} run(s) differ")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
