"""Clocks: virtual time only moves when told, and a driver sees every advance."""

from __future__ import annotations

import pytest

from harness.clock import DEFAULT_EPOCH_MS, Clock, VirtualClock, WallClock, iso_ms


def test_virtual_clock_starts_at_a_funding_boundary_and_advances_exactly() -> None:
    clock = VirtualClock()
    assert clock.now_ms() == DEFAULT_EPOCH_MS
    assert DEFAULT_EPOCH_MS % (8 * 3_600_000) == 0
    assert clock.advance(1500) == DEFAULT_EPOCH_MS + 1500
    assert iso_ms(DEFAULT_EPOCH_MS) == "2026-01-01T00:00:00.000+00:00"


def test_virtual_clock_never_goes_backwards() -> None:
    clock = VirtualClock(1000)
    with pytest.raises(ValueError, match="cannot advance a clock by -1 ms"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="cannot move a clock back"):
        clock.set(999)


def test_driver_walks_the_clock_through_its_events() -> None:
    clock = VirtualClock(0)
    seen: list[int] = []

    def driver(target: int) -> None:
        while clock.now_ms() + 1000 <= target:
            clock.set(clock.now_ms() + 1000)
            seen.append(clock.now_ms())

    clock.attach_driver(driver)
    clock.advance(3500)
    assert seen == [1000, 2000, 3000]
    assert clock.now_ms() == 3500
    with pytest.raises(ValueError, match="already has a driver"):
        clock.attach_driver(driver)


@pytest.mark.asyncio
async def test_sleeping_on_a_virtual_clock_advances_it_without_waiting() -> None:
    clock = VirtualClock(0)
    await clock.sleep(3600)
    assert clock.now_ms() == 3_600_000


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(VirtualClock(), Clock)
    assert isinstance(WallClock(), Clock)
    assert WallClock().now_ms() > DEFAULT_EPOCH_MS
