"""benchmarks/bench_matching.py: the side-by-side runs measure the same work as one piece.

The two books run the stream in turn, a slice at a time; slicing must not change what either
does (the engine's whole state, the bare book's resting orders), or the ratio compares other
work. nautilus_trader's run (the optional ``bench`` extra) is checked where it is installed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.sim.digest import digest, first_difference

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))  # the script imports its siblings (_common, nautilus_book)
    try:
        return _load("bench_matching")
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.mark.parametrize(("n", "count"), [(0, 20), (1, 20), (19, 20), (20, 20), (1001, 20)])
def test_slices_cover_the_stream_once_in_order(bench: ModuleType, n: int, count: int) -> None:
    parts = bench.slices(n, count)
    assert [i for lo, hi in parts for i in range(lo, hi)] == list(range(n))
    assert len(parts) <= count
    assert all(lo < hi for lo, hi in parts)


def test_a_sliced_run_does_what_one_piece_does(bench: ModuleType) -> None:
    stream = bench.make_stream(3_000, 5)
    inputs = bench.engine_inputs(stream)
    whole_engine, ids = bench.new_engine(5)
    sliced_engine, _ = bench.new_engine(5)
    whole, sliced = (
        bench.EngineRun(whole_engine, ids, inputs),
        bench.EngineRun(sliced_engine, ids, inputs),
    )
    whole_bare, sliced_bare = bench.BareRun(stream), bench.BareRun(stream)
    whole.run(0, len(stream))
    whole_bare.run(0, len(stream))
    for lo, hi in bench.slices(len(stream), 7):
        sliced_bare.run(lo, hi)
        sliced.run(lo, hi)
    assert first_difference(digest(whole_engine), digest(sliced_engine)) is None
    assert (whole.misses, whole_bare.misses) == (sliced.misses, sliced_bare.misses)
    assert whole.misses > 0  # the stream cancels orders a marketable order filled meanwhile
    resting = {i: (o.side, o.price, o.qty) for i, o in whole_bare.book.orders.items()}
    assert resting == {i: (o.side, o.price, o.qty) for i, o in sliced_bare.book.orders.items()}
    assert whole_engine.books[bench.SYMBOL].best_bid() is not None


def test_without_nautilus_the_comparison_says_how_to_get_it(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench.nautilus_book, "version", lambda: None)
    (line,) = bench.nautilus_targets(bench.make_stream(100, 5), 5, 100, 4)
    assert line.met is None  # informative, never a verdict
    assert "not installed" in line.measured
    assert ".[bench]" in line.target


def test_nautilus_runs_the_stream(bench: ModuleType) -> None:
    pytest.importorskip("nautilus_trader", reason="the optional bench extra is not installed")
    stream = bench.make_stream(2_000, 5)
    run = bench.nautilus_book.NautilusRun(stream, bench.MID, bench.TICK)
    for lo, hi in bench.slices(len(stream), 4):
        run.run(lo, hi)
    adds = sum(1 for a in stream if a[0] == bench.ADD)
    cancels = sum(1 for a in stream if a[0] == bench.CANCEL)
    takes = len(stream) - adds - cancels
    # Every add rests (none reaches the quote), so each cancel finds its order; every market
    # order fills in one piece against the quote's 1,000 BTC (nautilus accepts no market order).
    assert run.events.get("OrderAccepted") == adds
    assert run.events.get("OrderCanceled") == cancels
    assert run.events.get("OrderFilled") == takes > 0
    assert "OrderRejected" not in run.events
