"""The scenario file format: strict TOML decoding, seeded draws and apply-time refusals."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from adapters.sim import scenarios
from adapters.sim.engine.scenario import apply_scenario
from adapters.sim.scenarios.decode import decode_text, follow_path, rng_for
from adapters.sim.scenarios.model import Follow
from harness.errors import ConfigError
from harness.model import MarginMode, PricePath, Side
from tests.sim.simkit import BTC, ETH, make_engine

D = Decimal

GOOD = """
name = "mine"
description = "a test scenario"
seed = 5

[symbols.BTCUSDT.path]
relative = true
linear = true
points = [[0, "1"], [10_000, "0.95"]]

[[symbols.BTCUSDT.events]]
at_ms = 1_000
jitter_ms = 500
feed = 1
stall = true

[symbols.ETHUSDT]
follows = "BTCUSDT"
beta = "2"

[[population]]
name = "crowd"
count = 3
symbol = "BTCUSDT"
side = "short"
margin_mode = "isolated"
leverage = [5, 10]
wallet = ["100", "200"]
quantities = { BTCUSDT = ["0.002", "0.003", "0.004"] }
"""


def _write(tmp_path: Path, text: str, name: str = "mine") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_scenario_file_outside_the_package_loads_by_its_path(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    scenario = scenarios.load(str(path))
    assert (scenario.name, scenario.seed) == ("mine", 5)
    (event,) = scenario.symbols[BTC].feed_events
    assert 1_000 <= event.at_ms <= 1_500  # jittered into [at_ms, at_ms + jitter_ms]
    assert scenario.symbols[ETH].path.points[-1] == (10_000, D("0.90"))  # 1 + 2 x (-5 %)
    (crowd,) = scenario.populations
    assert (crowd.side, crowd.margin_mode, crowd.count) == (Side.SELL, MarginMode.ISOLATED, 3)
    assert [a.legs[0].quantity for a in crowd.accounts] == [D("0.002"), D("0.003"), D("0.004")]
    assert all(5 <= a.leverage <= 10 and D(100) <= a.wallet <= D(200) for a in crowd.accounts)


def test_the_seed_and_only_the_seed_decides_the_draws(tmp_path: Path) -> None:
    same = scenarios.load_file(_write(tmp_path, GOOD))
    assert scenarios.load_file(_write(tmp_path, GOOD)) == same
    other = scenarios.load_file(_write(tmp_path, GOOD.replace("seed = 5", "seed = 6")))
    assert other.populations != same.populations
    # Streams are per purpose: an extra event does not reshuffle the population.
    event = '[[symbols.BTCUSDT.events]]\nat_ms = 9\njitter_ms = 9\nfeed = 2\noffset = "0.1"\n'
    extra = GOOD.replace("[symbols.ETHUSDT]", event + "\n[symbols.ETHUSDT]")
    assert scenarios.load_file(_write(tmp_path, extra)).populations == same.populations


def test_a_follower_stays_within_its_noise_of_beta_times_the_leader_at_every_instant() -> None:
    leader = PricePath(
        points=((0, D(60_000)), (7_000, D(57_000)), (20_000, D(61_000))), linear=True
    )
    follow = Follow(symbol=BTC, beta=D("1.5"), noise_bps=D(20), noise_every_ms=3_000)
    path = follow_path(leader, follow, rng_for(1, "follow:ETHUSDT"), "t")
    assert path.points[0] == (0, D(1))
    deviations = []
    for t in range(0, 25_000, 250):
        expected = 1 + follow.beta * (leader.price_at(t) / leader.price_at(0) - 1)
        deviations.append(abs(path.price_at(t) - expected))
    assert max(deviations) <= D(20) / 10_000
    assert max(deviations) > D(5) / 10_000  # the noise is really drawn


MALFORMED = [
    (
        GOOD.replace('[10_000, "0.95"]', "[10_000, 0.95]"),
        "symbols.BTCUSDT.path.points[1][1]",
        "TOML float",
    ),
    (
        GOOD.replace('beta = "2"', "beta = 2.0"),
        "symbols.ETHUSDT.beta",
        'write it as a string, "2.0"',
    ),
    (GOOD.replace("seed = 5", "sede = 5"), "sede", "use one of: name, description, seed"),
    (GOOD.replace("seed = 5\n", ""), "seed is missing", "add it, e.g. seed = 7"),
    (
        GOOD.replace('side = "short"', 'side = "sell"'),
        "population[0].side",
        "choose from: long, short",
    ),
    (
        GOOD.replace('follows = "BTCUSDT"', 'follows = "SOLUSDT"'),
        "symbols.ETHUSDT.follows",
        "is not a leader",
    ),
    (GOOD.replace("count = 3", "count = 2"), "population[0].quantities.BTCUSDT", "count = 2"),
    (
        GOOD.replace('name = "mine"', 'name = "yours"'),
        "name = 'yours' differs from the file name",
        "file name mine.toml; rename",
    ),
    (
        GOOD.replace("feed = 1\n", 'feed = "one"\n'),
        "symbols.BTCUSDT.events[0].feed",
        "not an integer",
    ),
    (
        GOOD.replace("leverage = [5, 10]", "leverage = [10, 5]"),
        "population[0].leverage",
        "low > high",
    ),
    (
        GOOD + '\n[symbols.SOLUSDT]\ndepth = "deep"\n',
        "symbols.SOLUSDT.depth",
        "choose from: normal, thin",
    ),
    (
        GOOD.replace("[[population]]", '[[population]]\nnotional = "500"'),
        "population[0]",
        "exactly one of notional and quantities",
    ),
    (
        GOOD.replace(
            "stall = true", 'stall = true\nwick = { side = "SELL", depth_fraction = "1" }'
        ),
        "events[0].feed",
        "cannot be combined with a wick",
    ),
    (GOOD + "\n[oops\n", "is not valid TOML", "fix the syntax"),
]


@pytest.mark.parametrize(("text", "key", "fix"), MALFORMED)
def test_a_malformed_file_is_a_config_error_naming_the_file_the_key_and_the_fix(
    tmp_path: Path, text: str, key: str, fix: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        scenarios.load_file(path)
    message = str(info.value)
    assert f"scenario file {path}" in message
    assert key in message
    assert fix in message


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read scenario file .*nope\.toml"):
        scenarios.load(str(tmp_path / "nope.toml"))


def test_a_population_the_venue_refuses_is_a_config_error_naming_it(tmp_path: Path) -> None:
    text = GOOD.replace('wallet = ["100", "200"]', 'wallet = "1"')
    scenario = decode_text(text, "inline", expected_name="mine")
    with pytest.raises(ConfigError) as info:
        apply_scenario(make_engine(), scenario)
    message = str(info.value)
    assert "scenario 'mine' population 'crowd' account 1" in message
    assert "-2019" in message
    assert "raise its wallet" in message


def test_an_unknown_symbol_or_feed_is_refused_before_anything_changes() -> None:
    text = GOOD.replace("[symbols.ETHUSDT]", "[symbols.DOGEUSDT]")
    engine = make_engine()
    with pytest.raises(ConfigError, match="unknown symbol 'DOGEUSDT'; choose from: BTCUSDT"):
        apply_scenario(engine, decode_text(text, "inline"))
    with pytest.raises(ConfigError, match=r"has feeds 1\.\.3, not 9"):
        apply_scenario(engine, decode_text(GOOD.replace("feed = 1", "feed = 9"), "inline"))
    assert not engine.scenario_accounts
    assert len(engine.accounts) == 2  # the market maker and the insurance fund


def test_the_format_example_in_the_package_docstring_decodes() -> None:
    doc = scenarios.__doc__ or ""
    lines = doc.split("::\n\n", 1)[1].splitlines()
    end = next(i for i, line in enumerate(lines) if line and not line.startswith("    "))
    text = "\n".join(line.removeprefix("    ") for line in lines[:end])
    scenario = decode_text(text, "docstring", expected_name="fast-move")
    assert scenario.duration_days == 30
    assert scenario.symbols[ETH].follows is not None
    (crowd,) = scenario.populations
    assert crowd.count == 20
    apply_scenario(make_engine(), scenario)
