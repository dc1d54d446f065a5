"""Declarative scenarios: JSON files next to this module, one per scenario.

A scenario names, per symbol, an index price path (absolute prices, or multiples of the price at
load time with ``"relative": true``), a depth profile, and timed events: a constituent feed that
stalls or prints off (``{"feed": 2, "stall": true}``, ``{"feed": 3, "offset": "0.30"}``) and
wicks, where a trader sweeps a multiple of the visible depth on one side
(``{"wick": {"side": "SELL", "depth_fraction": "1.5"}}``). Times are milliseconds from loading.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any

from harness.errors import ConfigError
from harness.model import PricePath, Side

__all__ = ["FeedEvent", "Scenario", "SymbolScenario", "WickEvent", "available", "load"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedEvent:
    at_ms: int
    feed: int  # 1-based constituent number
    stall: bool | None = None
    offset: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WickEvent:
    at_ms: int
    side: Side
    depth_fraction: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolScenario:
    path: PricePath
    relative: bool
    depth: str | None
    feed_events: tuple[FeedEvent, ...]
    wicks: tuple[WickEvent, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    name: str
    description: str
    symbols: dict[str, SymbolScenario]


def available() -> list[str]:
    folder = resources.files(__package__)
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


def load(name: str) -> Scenario:
    """The named scenario; a :class:`ConfigError` naming the choices if there is none."""
    names = available()
    if name not in names:
        msg = f"unknown scenario {name!r}; choose from: {', '.join(names)}"
        raise ConfigError(msg)
    text = resources.files(__package__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    try:
        return parse(json.loads(text))
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        msg = f"scenario {name!r} is malformed: {exc}"
        raise ConfigError(msg) from None


def _dec(value: Any) -> Decimal:
    if not isinstance(value, str | int):
        msg = f"expected a decimal string, got {value!r}"
        raise TypeError(msg)
    return Decimal(value)


def parse(data: dict[str, Any]) -> Scenario:
    symbols: dict[str, SymbolScenario] = {}
    for symbol, spec in data["symbols"].items():
        path_spec = spec["path"]
        path = PricePath(
            points=tuple((int(t), _dec(p)) for t, p in path_spec["points"]),
            linear=bool(path_spec.get("linear", False)),
            name=data["name"],
        )
        feed_events: list[FeedEvent] = []
        wicks: list[WickEvent] = []
        for event in spec.get("events", ()):
            if "wick" in event:
                wick = event["wick"]
                wicks.append(
                    WickEvent(
                        at_ms=int(event["at_ms"]),
                        side=Side(wick["side"]),
                        depth_fraction=_dec(wick["depth_fraction"]),
                    )
                )
            else:
                feed_events.append(
                    FeedEvent(
                        at_ms=int(event["at_ms"]),
                        feed=int(event["feed"]),
                        stall=event.get("stall"),
                        offset=_dec(event["offset"]) if "offset" in event else None,
                    )
                )
        symbols[symbol] = SymbolScenario(
            path=path,
            relative=bool(path_spec.get("relative", False)),
            depth=spec.get("depth"),
            feed_events=tuple(feed_events),
            wicks=tuple(wicks),
        )
    return Scenario(name=data["name"], description=data["description"], symbols=symbols)
