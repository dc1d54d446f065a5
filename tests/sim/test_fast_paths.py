"""The engine's fast paths leave exactly the state of its reference algorithms.

Two engines with the same seed go through the same operations, one on the fast paths (the
liquidation trigger index, quiet runs of updates in closed form, the incremental aggregates of
order books and accounts), one with ``Engine.reference`` set; after every operation their whole
state (tests/sim/digest.py) must be identical, representation of every decimal included.
"""

from __future__ import annotations

import random
from decimal import Decimal
from itertools import count

import pytest

from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.quiet import skip_randints
from harness.errors import Rejected
from harness.model import MarginMode, PricePath, Side, TimeInForce
from tests.sim.digest import digest, first_difference
from tests.sim.simkit import BTC, ETH, limit, make_engine, market, random_operation

D = Decimal


def _pair(seed: int, *, quiet: bool, defects: tuple[str, ...] = ()) -> tuple[Engine, Engine]:
    fast = make_engine(seed=seed, quiet=quiet, defects=defects)
    ref = make_engine(seed=seed, quiet=quiet, defects=defects)
    ref.reference = True
    return fast, ref


def _same(fast: Engine, ref: Engine, when: str) -> None:
    difference = first_difference(digest(fast), digest(ref))
    assert difference is None, f"{when}: {difference}"


def _both(engines: tuple[Engine, Engine], action: object) -> None:
    for engine in engines:
        action(engine)  # type: ignore[operator]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_order_flow_leaves_the_same_state_on_fast_paths_and_reference(seed: int) -> None:
    fast, ref = _pair(seed, quiet=False)
    accounts = []
    for i in range(6):
        wallet = D(2_000) if i % 3 else D(200_000)
        ids = [e.create_account(wallet).account_id for e in (fast, ref)]
        assert ids[0] == ids[1]
        accounts.append(ids[0])
        if i % 2:
            for e in (fast, ref):
                e.set_margin_mode(ids[0], BTC, MarginMode.ISOLATED)
    rngs = (random.Random(seed), random.Random(seed))
    for step in range(600):
        for engine, rng in zip((fast, ref), rngs, strict=True):
            random_operation(engine, rng, accounts)
        if step % 25 == 0:
            _same(fast, ref, f"step {step}")
    _same(fast, ref, "end")
    fills = sum(len(a.fills) for a in fast.accounts.values() if not a.exempt)
    assert fills > 50  # the flow traded


def _populate(engine: Engine, rng: random.Random) -> list[str]:
    """Pairs that trade with each other at the index (the quiet market stays quiet)."""
    ids = []
    for pair in range(8):
        long = engine.create_account(D(5_000))
        short = engine.create_account(D(5_000))
        for symbol, qty in ((BTC, "0.05"), (ETH, "0.8")):
            for acct in (long, short):
                if pair % 2:
                    engine.set_margin_mode(acct.account_id, symbol, MarginMode.ISOLATED)
                engine.set_leverage(acct.account_id, symbol, rng.choice((5, 10, 20)))
            price = engine.prices[symbol].index
            engine.place_order(long.account_id, limit(symbol, Side.BUY, qty, price))
            engine.place_order(short.account_id, market(symbol, Side.SELL, qty))
        ids += [long.account_id, short.account_id]
    return ids


def test_quiet_runs_leave_the_same_state_as_every_update_one_by_one() -> None:
    fast, ref = _pair(11, quiet=True)
    rngs = (random.Random(4), random.Random(4))
    ids = _populate(fast, rngs[0])
    assert _populate(ref, rngs[1]) == ids
    _same(fast, ref, "populated")
    plan = random.Random(9)
    for step in count():
        if step == 30:
            break
        kind = plan.random()
        ms = plan.choice((999, 1_000, 4_321, 60_000, 600_000, 3_600_000))
        _both((fast, ref), lambda e, ms=ms: e.clock.advance(ms))
        _same(fast, ref, f"step {step}, after {ms} ms")
        if kind < 0.4:
            pass
        elif kind < 0.6:
            acct, side = plan.choice(ids), plan.choice(list(Side))
            symbol = plan.choice((BTC, ETH))
            qty = "0.01" if symbol == BTC else "0.1"
            _both(
                (fast, ref),
                lambda e, a=acct, s=side, y=symbol, q=qty: e.place_order(a, market(y, s, q)),
            )
        elif kind < 0.7:
            # A path step some way off: the run must stop before it.
            move = D(plan.randint(-300, 300)) / 10_000
            at = plan.randint(1, 7_200) * 1000

            def path(e: Engine, move: Decimal = move, at: int = at) -> None:
                index = e.prices[BTC].index
                e.set_price_path(BTC, PricePath(points=((0, index), (at, index * (1 + move)))))

            _both((fast, ref), path)
        elif kind < 0.8:
            # A scheduled event inside a run.
            at = plan.randint(1, 3_600) * 997

            def schedule(e: Engine, at: int = at) -> None:
                e.schedule(e.clock.now_ms() + at, lambda: None)

            _both((fast, ref), schedule)
        elif kind < 0.9:
            acct = plan.choice(ids)
            price = fast.prices[ETH].index * (1 - D(plan.randint(1, 50)) / 10_000)
            req = limit(ETH, Side.BUY, "0.1", price.quantize(D("0.01")), TimeInForce.GTC)
            _both((fast, ref), lambda e, a=acct, r=req: e.place_order(a, r))
        else:
            feed = plan.randrange(3)
            _both(
                (fast, ref), lambda e, f=feed: setattr(e.prices[ETH].feeds[f], "offset", D("0.001"))
            )
        _same(fast, ref, f"step {step}")
    assert fast.quiet.skipped > 5_000  # the runs were taken in closed form
    assert ref.quiet.skipped == 0
    assert len(fast.funding.settlements) >= 2


def test_skip_randints_draws_the_same_words_as_randint() -> None:
    for n in (0, 1, 2, 3, 7, 100, 4_321):
        a, b = random.Random(n), random.Random(n)
        for _ in range(n):
            a.randint(-100, 100)
        skip_randints(b, n)
        assert a.getstate() == b.getstate()
        assert a.random() == b.random()


@pytest.mark.parametrize("defects", [(), ("thin-book-counts-new-orders",)])
def test_thin_book_clusters_raise_the_same_alerts_on_fast_paths_and_reference(
    defects: tuple[str, ...],
) -> None:
    fast, ref = _pair(21, quiet=False, defects=defects)
    for engine in (fast, ref):
        engine.market_maker.set_profile(BTC, "thin")
    ids = []
    for _ in range(12):
        ids.append(fast.create_account(D(50_000)).account_id)
        assert ref.create_account(D(50_000)).account_id == ids[-1]
    plan = random.Random(5)
    for step in range(500):
        acct = plan.choice(ids)
        kind = plan.random()
        pick = plan.random()
        mark = fast.mark(BTC)
        bps = D(plan.randint(-60, 60))
        qty = str(D(plan.randint(2, 150)) / 1000)
        wait = plan.choice((500, 5_000, 30_000))
        for engine in (fast, ref):
            try:
                if kind < 0.6:
                    side = Side.BUY if bps < 0 else Side.SELL
                    price = (mark * (1 + bps / 10_000)).quantize(D("0.1"))
                    engine.place_order(acct, limit(BTC, side, qty, price))
                elif kind < 0.65:
                    engine.place_order(acct, market(BTC, Side.BUY if bps < 0 else Side.SELL, qty))
                elif kind < 0.9:
                    orders = [
                        r.order_id
                        for r in engine.accounts[acct].orders.values()
                        if r.status in ("NEW", "PARTIALLY_FILLED")
                    ]
                    if orders:
                        engine.cancel_order(acct, BTC, orders[int(pick * len(orders))], None)
                else:
                    engine.clock.advance(wait)
            except Rejected:
                pass
        if step % 100 == 99:  # a cancel burst: 22 orders placed and pulled at once
            price = (mark * D("0.995")).quantize(D("0.1"))
            for engine in (fast, ref):
                for _ in range(22):
                    engine.place_order(acct, limit(BTC, Side.BUY, "0.002", price))
                engine.cancel_all(acct, BTC)
        if step % 50 == 0:
            _same(fast, ref, f"step {step}")
    _same(fast, ref, "end")
    detectors = {a.detector for a in fast.monitor.alerts}
    assert {"thin-book-cluster", "cancel-burst"} <= detectors, detectors


@pytest.mark.parametrize("seed", [3, 8])
def test_market_maker_requotes_leave_the_same_book_on_fast_paths_and_reference(seed: int) -> None:
    """The maker's requote with its per-profile tables (engine/marketmaker.py) against the
    reference requote: moving index, profile and skew changes, traders resting at and taking
    its prices (its quotes trade, rest beside others' and are skipped where they would cross)."""
    fast, ref = _pair(seed, quiet=False)
    ids = []
    for _ in range(4):
        ids.append(fast.create_account(D(100_000)).account_id)
        assert ref.create_account(D(100_000)).account_id == ids[-1]
    plan = random.Random(seed)
    for step in range(240):
        kind = plan.random()
        acct = plan.choice(ids)
        symbol = plan.choice((BTC, ETH))
        bps = D(plan.randint(-40, 40))
        qty = "0.003" if symbol == BTC else "0.05"
        for engine in (fast, ref):
            mm = engine.market_maker
            try:
                if kind < 0.45:
                    engine.clock.advance(1_000 * (1 + step % 7))
                elif kind < 0.7:
                    # At a price the maker quotes (or would quote): rests beside it, or takes it.
                    side = Side.BUY if bps < 0 else Side.SELL
                    book = engine.books[symbol]
                    edge = book.best_bid() if side is Side.BUY else book.best_ask()
                    assert edge is not None
                    price = edge * (1 + bps / 100_000)
                    tick = engine.instruments[symbol].tick_size
                    engine.place_order(acct, limit(symbol, side, qty, price.quantize(tick)))
                elif kind < 0.8:
                    engine.place_order(
                        acct, market(symbol, Side.BUY if bps < 0 else Side.SELL, qty)
                    )
                elif kind < 0.9:
                    mm.set_profile(symbol, ("normal", "thin")[step % 2])
                else:
                    mm.set_skew(symbol, bps / 4)
            except Rejected:
                pass
        if step % 20 == 0:
            _same(fast, ref, f"step {step}")
    _same(fast, ref, "end")
    maker = fast.market_maker.account
    assert fast.order_seq > 2_000  # it requoted many times
    assert {r.symbol for r in maker.orders.values()} == {BTC, ETH}


@pytest.mark.parametrize("half", [100, 1000])
def test_table_draws_are_randint_draws(half: int) -> None:
    """The fast paths draw ``randrange(2 * half + 1)`` for ``randint(-half, half)`` (feed noise:
    100, the maker's jitter: 1000): the same words of the generator, shifted by ``half``."""
    for seed in (0, 1, 99):
        a, b = random.Random(seed), random.Random(seed)
        assert [a.randint(-half, half) for _ in range(5_000)] == [
            b.randrange(2 * half + 1) - half for _ in range(5_000)
        ]
        assert a.getstate() == b.getstate()
