"""Runs of identical updates, taken in closed form.

In a quiet market an update changes almost nothing: the feeds print the same price (no noise, a
flat stretch of the index path), the index and the quotes stay, the basis window already holds
the same sample, the mark stays put, nobody's margin moved, so the liquidation scan and the cascade
early warning find what they found last time. What still happens is bookkeeping: each feed draws
its noise from the symbol's random stream (even with zero noise), the basis window takes the same
sample, a premium sample is taken every 5 s, the cascade early warning is re-evaluated every 5 s.
:meth:`QuietRuns.skip` does exactly that bookkeeping for a whole run of such updates (the random
streams are advanced word by word, :func:`skip_randints`), then runs the run's last update for
real, so the state afterwards is the state the updates one by one would have left, field for
field.

The conditions are checked, never assumed; any one failing means the updates run one by one:

* the engine runs the fast paths (:attr:`Engine.reference` off), no defect is injected, nobody
  listens to the events, the parameter controller is off and no liquidation waits for its latency;
* nothing changed since the last liquidation scan found nothing and since the cascade early
  warning was last evaluated (the same marks, order books, tier tables and accounts, and no wallet
  or position change: ``Watch.version``, engine/accounts.py);
* every symbol: no feed noise, no stalled feed, the feeds at the prices the path gives for the
  whole run, the index equal to what they give, the market maker's quotes fresh, the basis window
  full of the sample the book gives now, no funding time in the run, and the mark the same at both
  ends of the run (the mark is monotone in time between funding times, so then at every update);
* no scheduled event falls in the run.
"""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING

from harness.model import PricePath

if TYPE_CHECKING:
    from decimal import Decimal
    from random import Random

    from adapters.sim.engine.exchange import Engine

__all__ = ["QuietRuns", "skip_randints"]

_Signature = tuple[int, tuple[object, ...], tuple[int, ...], object, int | None, int]
_ALL_BYTES = bytes(range(256))


def skip_randints(rng: Random, count: int, width: int = 201) -> None:
    """Advance ``rng`` exactly as ``count`` calls of ``rng.randrange(width)`` would.

    CPython draws ``randrange(width)`` as ``getrandbits(k)`` with ``k = width.bit_length()``,
    redrawn until below ``width``; each ``getrandbits(k)`` (``k <= 32``) takes one 32-bit word
    of the Mersenne Twister and keeps its top ``k`` bits. ``getrandbits(32 * n)`` takes ``n`` words
    in the same order, so the words are taken in bulk and the accepted ones counted, never taking a
    word past the last acceptance. Only ``k == 8`` (widths 129..256) is handled.
    """
    if not 128 < width <= 256:
        msg = f"{width=} must be in 129..256 (one byte per word)"
        raise ValueError(msg)
    rejected = _ALL_BYTES[:width]  # bytes below width: deleted, what remains is rejected
    need = count
    while need > 0:
        words = rng.getrandbits(32 * need).to_bytes(4 * need, "little")
        # The top byte of each little-endian word is what getrandbits(8) would have kept; each
        # acceptance completes a draw, so the draws left are the rejections of this batch.
        need = len(words[3::4].translate(None, rejected))


def _constant_until(path: PricePath, offset: int) -> int | None:
    """The last offset (inclusive) up to which the path's price is the price at ``offset``
    (a conservative bound; None: constant from there on)."""
    points = path.points
    if offset >= points[-1][0]:
        return None
    if offset < points[0][0]:
        return points[0][0] - 1
    for (t0, p0), (t1, p1) in pairwise(points):
        if t0 <= offset < t1:
            if path.linear and p0 != p1:
                return offset
            return t1 - 1
    return offset  # unreachable for a valid path; no run


class QuietRuns:
    """Detects and takes runs of identical updates of one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._scanned: _Signature | None = None  # when a scan last found nothing
        self._evaluated: _Signature | None = None  # when the early warning was last evaluated
        self.skipped = 0  # updates taken in closed form so far

    def signature(self) -> _Signature | None:
        """What the scan and the early warning read, as of now (None: a change is pending)."""
        engine = self.engine
        index = engine.trigger_index
        if index.pending or len(engine.accounts) != index.registered:
            return None  # an account whose changes are not watched yet
        instruments = engine.instruments
        return (
            index.watch.version,
            tuple(state.mark for state in engine.prices.values()),
            tuple(book.update_id for book in engine.books.values()),
            instruments,
            getattr(instruments, "version", None),
            len(engine.accounts),
        )

    def scanned(self, found_nothing: bool) -> None:
        """A settle ended; ``found_nothing``: its last scan stepped no account."""
        self._scanned = self.signature() if found_nothing else None

    def evaluated(self) -> None:
        """The cascade early warning was evaluated."""
        self._evaluated = self.signature()

    @staticmethod
    def _same(a: _Signature | None, b: _Signature | None) -> bool:
        if a is None or b is None:
            return False
        return a[3] is b[3] and a[4] is not None and a == b

    def _engine_quiet(self) -> bool:
        engine = self.engine
        return (
            not engine.reference
            and not engine.defects
            and not engine.events.active
            and not engine.params.active
            and engine.liquidation_latency.idle
            and engine.trigger_index.active
        )

    # ------------------------------------------------------------------ the run
    def skip(self, first: int, target: int) -> bool:
        """Take the updates from ``first`` up to ``target`` that form a quiet run, if any.

        ``first`` is the next update's time. Returns False (nothing done) when there is no run of
        at least two updates; else the run's updates are done and the clock is at its last.
        """
        engine = self.engine
        interval = engine.config.update_interval_ms
        if target - first < interval or not self._engine_quiet():
            return False
        now_sig = self.signature()
        if not self._same(now_sig, self._scanned):
            return False
        last = first + (target - first) // interval * interval
        if engine._events:
            last = min(last, (engine._events[0][0] - 1) // interval * interval)
        funding = engine.funding
        for symbol, state in engine.prices.items():
            last = min(last, (state.next_funding_ms - 1) // interval * interval)
            if (
                state.noise_bps
                or symbol in engine.market_maker._stale
                or any(f.stalled for f in state.feeds)
            ):
                return False
            until = _constant_until(state.path, first - state.path_start_ms)
            if until is not None:
                last = min(last, (state.path_start_ms + until) // interval * interval)
        if last - first < interval:
            return False
        # Every evaluation of the early warning inside the run must repeat the last one.
        monitor = engine.monitor
        evaluations = monitor.evaluation_times(first, last - interval, interval)
        if evaluations and not self._same(now_sig, self._evaluated):
            return False
        samples: dict[str, tuple[Decimal, list[int]]] = {}
        for symbol in engine.prices:
            sample = self._steady(symbol, first, last)
            if sample is None:
                return False
            times = funding.sample_times(first, last - interval)
            samples[symbol] = (sample, times)
        # The run is quiet: the bookkeeping of every update but the last...
        count = (last - first) // interval
        for symbol, state in engine.prices.items():
            skip_randints(state.rng, count * len(state.feeds))
            state.extend_basis(samples[symbol][0], count)
            times = samples[symbol][1]
            if times:
                funding.add_samples(symbol, times)
        if evaluations:
            monitor.evaluated_at(evaluations[-1])
        engine._update_count += count
        self.skipped += count
        # ...and the last one for real.
        engine.clock.set(last)
        engine._update()
        return True

    def _steady(self, symbol: str, first: int, last: int) -> Decimal | None:
        """The basis sample every update of the run takes, when the symbol is steady over it."""
        engine = self.engine
        state = engine.prices[symbol]
        since = engine._last_update_ms
        base = state.path_price(first)
        for feed in state.feeds:
            if feed.updated_ms != since or feed.price != state.steady_feed_price(feed, base):
                return None
        if state.compute_index(since) != state.index:
            return None
        book = engine.books[symbol]
        sample = state.next_basis_sample(book.best_bid(), book.best_ask())
        window = state.basis_samples
        if sample is None or len(window) != window.maxlen or any(s != sample for s in window):
            return None
        mark = state.mark
        for at in (first, last):
            if state.mark_parts(at)[2] != mark:
                return None
        return sample
