"""The harness's funding probe on the simulator (harness/funding_probe.py, perp-mechanics.md §3).

Venues here carry one symbol, so a simulated hour costs little.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from adapters.sim.config import SimConfig, default_instruments
from adapters.sim.venue import SimVenue
from harness.clock import DEFAULT_EPOCH_MS
from harness.funding_probe import PremiumSampler, funding_symbol, make_hourly

D = Decimal
HOUR = 3_600_000
T0 = DEFAULT_EPOCH_MS


def venue_with(symbol: str, hours: int) -> SimVenue:
    si = default_instruments()[symbol]
    si = dataclasses.replace(
        si, instrument=dataclasses.replace(si.instrument, funding_interval_hours=hours)
    )
    return SimVenue(SimConfig(seed=5, instruments={symbol: si}))


@pytest.mark.asyncio
async def test_funding_symbol_is_the_one_settling_most_often() -> None:
    assert await funding_symbol(SimVenue(SimConfig(seed=1))) == "ETHUSDT"


@pytest.mark.asyncio
async def test_make_hourly_switches_at_the_first_funding_time_the_notice_allows() -> None:
    venue = venue_with("BTCUSDT", 2)
    info = await make_hourly(venue, "BTCUSDT")
    assert venue.clock.now_ms() == T0 + 2 * HOUR  # T0 + 2 h is the first funding time >= 1 h away
    assert (info.interval_hours, info.next_funding_time_ms) == (1, T0 + 3 * HOUR)
    assert [e.funding_time_ms for e in await venue.funding_history("BTCUSDT")] == [T0 + 2 * HOUR]


@pytest.mark.asyncio
async def test_sampler_rebuilds_the_interval_and_its_rate_from_the_book() -> None:
    venue = venue_with("ETHUSDT", 1)
    await venue.control.set_quote_skew("ETHUSDT", D(20))
    sampler = PremiumSampler(venue, "ETHUSDT")
    obs = await sampler.observe_interval()
    assert (obs.start_ms, obs.funding_time_ms, len(obs.samples)) == (T0, T0 + HOUR, 720)
    assert [s.time_ms for s in obs.samples[:2]] == [T0 + 5_000, T0 + 10_000]
    assert obs.event is not None
    assert abs(obs.event.funding_rate - obs.expected_rate) <= D("0.000000005")
    engine_mean = venue.engine.funding.settlements[-1].average_premium
    assert abs(obs.average_premium - engine_mean) < D("1e-24")
    chart = sampler.evidence("premium")
    assert len(chart["series"]["premium sample"]) == 120  # one point per 30 s


@pytest.mark.asyncio
async def test_sampler_must_start_at_a_funding_time() -> None:
    venue = venue_with("ETHUSDT", 1)
    await venue.control.advance(5_000)
    with pytest.raises(RuntimeError, match="must start at a funding time"):
        await PremiumSampler(venue, "ETHUSDT").observe_interval()
