"""Declarative scenarios: one TOML file per named market situation, next to this module.

A scenario is the same situation on every run: everything random in it derives from its own
``seed`` (not the run seed, which still drives feed noise and the market maker's sizes). Files are
decoded at the edge (:mod:`.decode`) into frozen records (:mod:`.model`); a malformed file is a
:class:`~harness.errors.ConfigError` naming the file, the key and the fix.
:func:`adapters.sim.engine.scenario.apply_scenario` puts a scenario into a running engine.

The format (times are integer milliseconds after loading; prices, rates and bps are **strings**,
TOML floats are refused so every number stays an exact ``Decimal``)::

    name = "fast-move"                # must equal the file name
    description = "what the market does, with the numbers a check can measure"
    seed = 11                         # the scenario's own seed
    duration_days = 30                # optional hint for checks (e.g. multi-cycle funding)

    [symbols.BTCUSDT]
    depth = "thin"                    # market-maker depth profile (config.DEPTH_PROFILES)
    skew_bps = "10"                   # quotes centred this far above (+) / below (−) the index
    [symbols.BTCUSDT.path]            # the index path; omitted: the index holds where it is
    relative = true                   # prices are multiples of the index at load time
    linear = true                     # interpolate between keyframes (else: step at each)
    points = [[0, "1"], [10_000, "1"], [40_000, "0.92"]]

    [[symbols.BTCUSDT.events]]        # a constituent feed stalls / resumes / prints off
    at_ms = 10_000
    jitter_ms = 2_000                 # optional: lands in [at_ms, at_ms + jitter_ms], seeded
    feed = 2                          # 1-based constituent number
    stall = true                      # and/or offset = "0.30" (relative to the path)
    [[symbols.BTCUSDT.events]]        # a wick: market-sell 1.5 × the visible bid depth
    at_ms = 20_500
    wick = { side = "SELL", depth_fraction = "1.5" }

    [symbols.ETHUSDT]                 # a correlated follower instead of a path:
    follows = "BTCUSDT"               #   r_ETH(t) − 1 = beta · (r_BTC(t) − 1) + ε(t)
    beta = "1.3"                      #   r = price / price at load time
    noise_bps = "8"                   #   |ε| ≤ 8 bp, ε(0) = 0, drawn from the seed at the
    noise_every_ms = 5_000            #   leader's keyframes and every noise_every_ms

    [[population]]                    # accounts opened at load time with market orders
    name = "crowd"                    # engine.scenario_accounts["crowd"] lists their ids
    count = 20
    symbols = ["BTCUSDT"]             # or symbol = "BTCUSDT"; one leg per symbol
    side = "long"                     # or "short"
    margin_mode = "isolated"          # or "cross" (default): cross legs share the wallet
    leverage = [20, 30]               # a whole number, or an inclusive range drawn per account
    wallet = "300"                    # deposit: a value or a ["low", "high"] range (cent grid)
    notional = ["1000", "2500"]       # per leg, drawn per account (cent grid), bought at the
                                      # load-time index rounded down to the step; or instead
    # quantities = { BTCUSDT = ["0.020", "0.035"] }   one per account

A follower's path is always relative; its leader may be absolute or relative, and must not follow
another symbol. ``load("path/to/file.toml")`` loads a scenario file from outside the package.
"""

from __future__ import annotations

import functools
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from adapters.sim.scenarios.decode import decode_text
from adapters.sim.scenarios.model import (
    AccountPlan,
    FeedEvent,
    Follow,
    Leg,
    Population,
    Scenario,
    SymbolScenario,
    WickEvent,
)
from harness.errors import ConfigError

__all__ = [
    "AccountPlan",
    "FeedEvent",
    "Follow",
    "Leg",
    "Population",
    "Scenario",
    "SymbolScenario",
    "WickEvent",
    "available",
    "catalog",
    "load",
    "load_file",
]

SUFFIX = ".toml"


def _folder() -> Traversable:
    return resources.files(__package__)


def available() -> list[str]:
    """The bundled scenarios' names, sorted."""
    return sorted(
        p.name.removesuffix(SUFFIX) for p in _folder().iterdir() if p.name.endswith(SUFFIX)
    )


def load(name: str) -> Scenario:
    """The bundled scenario ``name``, or the file ``name`` if it ends in ``.toml``.

    Raises:
        ConfigError: no such scenario (the message lists the choices), or the file is malformed.
    """
    if name.endswith(SUFFIX):
        return load_file(Path(name))
    names = available()
    if name not in names:
        msg = f"unknown scenario {name!r}; choose from: {', '.join(names)}"
        raise ConfigError(msg)
    entry = _folder().joinpath(name + SUFFIX)
    return decode_text(entry.read_text(encoding="utf-8"), str(entry), expected_name=name)


def load_file(path: Path) -> Scenario:
    """A scenario from a TOML file anywhere; its ``name`` must equal the file's stem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read scenario file {path}: {exc.strerror}; check the path"
        raise ConfigError(msg) from None
    return decode_text(text, str(path), expected_name=path.stem)


def catalog() -> dict[str, str]:
    """Name -> description of every bundled scenario; entry point ``perpcheck.scenarios``."""
    return dict(_catalog())


@functools.cache
def _catalog() -> tuple[tuple[str, str], ...]:
    # The bundled files are package data: read and decoded once per process (the sim-http venue
    # asks for the list each time it opens, once per check).
    out = []
    for name in available():
        scenario = load(name)
        hint = f" [{scenario.duration_days} days]" if scenario.duration_days else ""
        out.append((name, scenario.description + hint))
    return tuple(out)
