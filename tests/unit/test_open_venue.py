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
