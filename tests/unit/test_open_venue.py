"""Opening venues by name (harness.venue.open_venue): entry points, looked up once."""

from __future__ import annotations

import asyncio
import importlib.metadata
from typing import Any

import pytest

import harness.venue as venue_module
from harness.errors import ConfigError
from harness.venue import VenueConfig, open_venue


def test_a_venue_factory_is_looked_up_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    scans: list[str] = []
    real = importlib.metadata.entry_points

    def counting(**kwargs: Any) -> Any:
        scans.append(kwargs["group"])
        return real(**kwargs)

    monkeypatch.setattr(venue_module, "entry_points", counting)
    monkeypatch.setattr(venue_module, "_FACTORIES", {})

    async def open_twice() -> list[str]:
        names = []
        for seed in (1, 2):
            venue = await open_venue("sim", VenueConfig(seed=seed))
            names.append(venue.name)
            await venue.close()
        return names

    assert asyncio.run(open_twice()) == ["sim", "sim"]
    assert scans == ["perpcheck.venues"]  # a run opens a venue per check: ~2 ms a scan


def test_an_unknown_venue_is_refused_every_time_with_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(venue_module, "_FACTORIES", {})
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"unknown venue 'nope'; choose one of: .*sim"):
            asyncio.run(open_venue("nope", VenueConfig(seed=1)))


def test_a_factory_whose_module_was_imported_again_is_looked_up_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pytester drops the modules a run imported; the next run imports them anew and patches
    # the new classes: the cached factory of the old module must not build the old ones.
    import sys

    import adapters.sim

    monkeypatch.setattr(venue_module, "_FACTORIES", {})
    asyncio.run(open_venue("sim", VenueConfig(seed=1)))  # cached now
    old = venue_module._FACTORIES["sim"]
    before = sys.modules["adapters.sim.venue"]
    monkeypatch.setattr(adapters.sim, "venue", before)  # both put back at teardown
    monkeypatch.delitem(sys.modules, "adapters.sim.venue")
    fresh = importlib.import_module("adapters.sim.venue")
    assert fresh is not before

    async def open_one() -> type:
        venue = await open_venue("sim", VenueConfig(seed=1))
        await venue.close()
        return type(venue)

    assert asyncio.run(open_one()) is fresh.SimVenue
    assert venue_module._FACTORIES["sim"] is not old
