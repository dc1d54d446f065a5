"""Index from constituent feeds, basis sampling and the mark price (perp-mechanics.md §1, §2).

The simulator's own implementation (it never calls the oracle):

* Index: weighted mean of the feeds that are fresh; a feed more than 5 % from the median of the
  fresh feeds gets weight 0; if more than one deviates, the index is their plain median (§1).
  A feed not updated within ``stale_ms`` is excluded.
* Mark (V1, Binance 2025 rule, §2): ``median(P1, P2, last)`` with
  ``P1 = index * (1 + F_last * tau / T)`` and ``P2 = index + mean of the last N basis samples``,
  one sample of ``(bid1 + ask1) / 2 - index`` per update.

Published index and mark are rounded half-even to ``price_decimals`` (the venue's wire
precision); every later formula uses the published values.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import repeat

from harness.model import PricePath

__all__ = ["Feed", "PriceState"]


@dataclass(slots=True)
class Feed:
    name: str
    weight: Decimal
    price: Decimal
    updated_ms: int
    stalled: bool = False  # a stalled feed stops updating (an outage)
    offset: Decimal = Decimal(0)  # relative offset added on top of the path (an outlier source)


@dataclass(slots=True)
class PriceState:
    """Everything about one symbol's prices; ``update`` runs once per simulator update."""

    symbol: str
    feeds: list[Feed]
    noise_bps: Decimal
    rng: random.Random
    quantum: Decimal
    stale_ms: int
    outlier_threshold: Decimal
    basis_samples: deque[Decimal]
    path: PricePath
    path_start_ms: int
    index: Decimal
    last_price: Decimal
    last_funding_rate: Decimal
    interest_rate: Decimal
    next_funding_ms: int
    funding_interval_ms: int
    mark: Decimal = Decimal(0)
    p1: Decimal = Decimal(0)
    p2: Decimal = Decimal(0)
    mark_time_ms: int = 0
    history: list[tuple[int, Decimal, Decimal, Decimal]] = field(default_factory=list)
    #: The basis window's mean, until it takes a sample (basis_samples changes through
    #: sample_basis and extend_basis only).
    ma_cache: Decimal | None = field(default=None, repr=False, compare=False)
    #: ``(noise_bps, table)``: ``noise_bps * draw / 10^6`` for the draws -100..100, indexed by
    #: ``draw + 100``, for the ``noise_bps`` object it was built from (update_feeds).
    noise_cache: tuple[Decimal, tuple[Decimal, ...]] | None = field(
        default=None, repr=False, compare=False
    )

    def round(self, value: Decimal) -> Decimal:
        return value.quantize(self.quantum, rounding=ROUND_HALF_EVEN)

    def set_path(self, path: PricePath, now_ms: int) -> None:
        self.path = path
        self.path_start_ms = now_ms

    def path_price(self, now_ms: int) -> Decimal:
        return self.path.price_at(now_ms - self.path_start_ms)

    def update_feeds(self, now_ms: int) -> None:
        """Move each live feed to the path price, with seeded noise of up to ``noise_bps``.

        Each feed draws ``randint(-100, 100)`` (taken as ``randrange(201)``, the draw plus 100:
        the same words of the generator) and moves by ``noise_bps * draw / 10^6``, read from a
        table per ``noise_bps`` (``noise_cache``); :meth:`update_feeds_reference` computes
        it at every update (the engine's reference mode; tests/sim/test_fast_paths.py).
        """
        base = self.path_price(now_ms)
        draw = self.rng.randrange
        noise_bps, cache = self.noise_bps, self.noise_cache
        if cache is None or cache[0] is not noise_bps:
            table = tuple(noise_bps * Decimal(d) / Decimal(1_000_000) for d in range(-100, 101))
            self.noise_cache = cache = (noise_bps, table)
        table = cache[1]
        quantum = self.quantum
        for feed in self.feeds:
            # Draw for every feed every update so a stalled feed does not shift the others' noise.
            k = draw(201)
            if feed.stalled:
                continue
            feed.price = (base * (1 + table[k] + feed.offset)).quantize(
                quantum, rounding=ROUND_HALF_EVEN
            )
            feed.updated_ms = now_ms

    def update_feeds_reference(self, now_ms: int) -> None:
        """:meth:`update_feeds` as the rule reads, every factor computed where it is used."""
        base = self.path_price(now_ms)
        for feed in self.feeds:
            draw = self.rng.randint(-100, 100)
            if feed.stalled:
                continue
            noise = self.noise_bps * Decimal(draw) / Decimal(1_000_000)
            feed.price = self.round(base * (1 + noise + feed.offset))
            feed.updated_ms = now_ms

    def compute_index(self, now_ms: int) -> Decimal:
        stale_ms = self.stale_ms
        fresh = [f for f in self.feeds if now_ms - f.updated_ms <= stale_ms]
        if not fresh:
            return self.index  # every feed is out: keep the last index (§1 "on a feed outage")
        ordered = sorted([f.price for f in fresh])
        mid = len(ordered) // 2
        median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
        band = self.outlier_threshold * median
        deviating = [f for f in fresh if abs(f.price - median) > band]
        if len(deviating) > 1:
            return self.round(median)
        used = [f for f in fresh if f not in deviating] if deviating else fresh
        # Summed left to right from zero, as sum(..., Decimal(0)) adds.
        total_weight = weighted = Decimal(0)
        for f in used:
            total_weight += f.weight
            weighted += f.weight * f.price
        return self.round(weighted / total_weight)

    def steady_feed_price(self, feed: Feed, base: Decimal) -> Decimal:
        """The price :meth:`update_feeds` gives a live feed when the noise is zero."""
        return self.round(base * (1 + feed.offset))

    def next_basis_sample(
        self, best_bid: Decimal | None, best_ask: Decimal | None
    ) -> Decimal | None:
        """The sample :meth:`sample_basis` would take (None: it would take none)."""
        if best_bid is None or best_ask is None:
            return self.basis_samples[-1] if self.basis_samples else None
        return (best_bid + best_ask) / 2 - self.index

    def sample_basis(self, best_bid: Decimal | None, best_ask: Decimal | None) -> None:
        """One basis sample per update; an empty side repeats the previous sample."""
        self.ma_cache = None
        if best_bid is None or best_ask is None:
            if self.basis_samples:
                self.basis_samples.append(self.basis_samples[-1])
            return
        self.basis_samples.append((best_bid + best_ask) / 2 - self.index)

    def extend_basis(self, sample: Decimal, count: int) -> None:
        """``count`` samples of ``sample`` at once (engine/quiet.py)."""
        self.ma_cache = None
        samples = self.basis_samples
        samples.extend(repeat(sample, min(count, samples.maxlen or count)))

    def ma_basis(self) -> Decimal:
        """The mean of the basis window (kept until the window takes a sample: the mark is
        recomputed after every trade, the window changes once per update)."""
        cached = self.ma_cache
        if cached is None:
            samples = self.basis_samples
            cached = sum(samples, Decimal(0)) / len(samples) if samples else Decimal(0)
            self.ma_cache = cached
        return cached

    def mark_parts(
        self, now_ms: int, *, mark_is_last: bool = False
    ) -> tuple[Decimal, Decimal, Decimal]:
        """``(P1, P2, mark)`` at ``now_ms`` from the current state (nothing is stored)."""
        tau = Decimal(max(self.next_funding_ms - now_ms, 0))
        p1 = self.index * (1 + self.last_funding_rate * tau / Decimal(self.funding_interval_ms))
        p2 = self.index + self.ma_basis()
        if mark_is_last:
            return p1, p2, self.round(self.last_price)
        low, high = min(p1, p2), max(p1, p2)
        # median(a, b, c) == clamp(c, min(a, b), max(a, b))
        return p1, p2, self.round(min(max(self.last_price, low), high))

    def compute_mark(self, now_ms: int, *, mark_is_last: bool = False) -> Decimal:
        self.p1, self.p2, mark = self.mark_parts(now_ms, mark_is_last=mark_is_last)
        return mark

    def publish_mark(self, mark: Decimal, now_ms: int) -> bool:
        """Store a new mark; returns True if it changed."""
        changed = mark != self.mark
        self.mark = mark
        self.mark_time_ms = now_ms
        if changed:
            self.history.append((now_ms, mark, self.index, self.last_price))
        return changed
