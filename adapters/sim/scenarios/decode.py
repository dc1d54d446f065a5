"""Decode a scenario TOML document into :mod:`~adapters.sim.scenarios.model` records.

Strict at the edge: an unknown key, a missing key, a value of the wrong type, and every TOML
float (prices, rates and bps are strings, so they stay exact decimals) is a
:class:`~harness.errors.ConfigError` naming the file, the dotted key and the fix. Everything
random is drawn here from the scenario's seed, one independent stream per purpose
(:func:`rng_for`), so adding an event never reshuffles a population.
"""

from __future__ import annotations

import random
import tomllib
from decimal import Decimal

from adapters.sim.config import DEPTH_PROFILES
from adapters.sim.scenarios._toml import Table
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
from harness.model import MarginMode, PricePath, Side

__all__ = ["decode", "decode_text", "follow_path", "rng_for"]

BPS = Decimal(10_000)
GRID = Decimal("0.01")  # wallets and notionals are drawn on a cent grid
TOP_KEYS = ("name", "description", "seed", "duration_days", "symbols", "population")
SYMBOL_KEYS = (
    "path",
    "follows",
    "beta",
    "noise_bps",
    "noise_every_ms",
    "depth",
    "skew_bps",
    "events",
)
FOLLOW_KEYS = ("beta", "noise_bps", "noise_every_ms")
PATH_KEYS = ("points", "relative", "linear")
EVENT_KEYS = ("at_ms", "jitter_ms", "feed", "stall", "offset", "wick")
WICK_KEYS = ("side", "depth_fraction")
POPULATION_KEYS = (
    "name",
    "count",
    "symbol",
    "symbols",
    "side",
    "margin_mode",
    "leverage",
    "wallet",
    "notional",
    "quantities",
)
SIDES = {"long": Side.BUY, "short": Side.SELL}
MODES = {"cross": MarginMode.CROSS, "isolated": MarginMode.ISOLATED}


def rng_for(seed: int, purpose: str) -> random.Random:
    """The scenario's random stream for one purpose (``events:BTCUSDT``, ``population:crowd``)."""
    return random.Random(f"{seed}:{purpose}")  # noqa: S311 - a seeded simulation, not cryptography


# ---------------------------------------------------------------------- documents
def decode_text(text: str, source: str, expected_name: str | None = None) -> Scenario:
    """Parse TOML ``text`` read from ``source`` (named in errors); see :func:`decode`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"scenario file {source} is not valid TOML ({exc}); fix the syntax there"
        raise ConfigError(msg) from None
    return decode(data, source, expected_name)


def decode(data: object, source: str, expected_name: str | None = None) -> Scenario:
    """A parsed TOML document to a :class:`Scenario`; ``expected_name``: the file's stem."""
    top = Table(source, "", data, TOP_KEYS)
    name = top.string("name", 'name = "my-scenario"')
    if expected_name is not None and name != expected_name:
        top.fail(
            "name",
            f"= {name!r} differs from the file name {expected_name}.toml",
            "rename the file or the scenario so they match",
        )
    description = top.string("description", 'description = "what the market does"')
    seed = top.integer("seed", "seed = 7")
    duration_days = top.opt_integer("duration_days", minimum=1)
    symbols_table = top.table("symbols", None)
    if symbols_table is None or not symbols_table.data:
        top.fail("symbols", "is missing or empty", "add a [symbols.BTCUSDT] table")
    specs = {
        symbol: Table(source, f"symbols.{symbol}", spec, SYMBOL_KEYS)
        for symbol, spec in symbols_table.data.items()
    }
    decoded: dict[str, SymbolScenario] = {}
    for symbol, spec in specs.items():  # leaders first: a follower's path is derived from them
        if not spec.has("follows"):
            decoded[symbol] = _symbol(spec, name, seed, symbol, None)
    for symbol, spec in specs.items():
        if spec.has("follows"):
            leader = spec.string("follows", 'follows = "BTCUSDT"')
            if leader not in decoded:
                spec.fail(
                    "follows",
                    f"= {leader!r} is not a leader in this scenario",
                    "follow a symbol that has its own [symbols.<leader>] table and no follows",
                )
            decoded[symbol] = _symbol(spec, name, seed, symbol, (leader, decoded[leader]))
    populations: list[Population] = []
    for table in top.tables("population", POPULATION_KEYS):
        population = _population(table, seed)
        if any(p.name == population.name for p in populations):
            table.fail("name", f"= {population.name!r} is used twice", "name each population once")
        populations.append(population)
    return Scenario(
        name=name,
        description=description,
        seed=seed,
        symbols={symbol: decoded[symbol] for symbol in specs},
        populations=tuple(populations),
        duration_days=duration_days,
    )


# ---------------------------------------------------------------------- symbols
def _symbol(
    spec: Table, scenario: str, seed: int, symbol: str, leader: tuple[str, SymbolScenario] | None
) -> SymbolScenario:
    follow: Follow | None = None
    if leader is None:
        for key in FOLLOW_KEYS:
            if spec.has(key):
                spec.fail(
                    key, "only applies to a follower", f'add follows = "BTCUSDT" or drop {key}'
                )
        path_table = spec.table("path", PATH_KEYS)
        if path_table is None:  # no path: the index holds where it is at load time
            path, relative = PricePath(points=((0, Decimal(1)),), name=scenario), True
        else:
            path, relative = _path(path_table, scenario)
    else:
        if spec.has("path"):
            spec.fail("path", "cannot be combined with follows", "drop one of the two")
        every = spec.opt_integer("noise_every_ms", minimum=1)
        follow = Follow(
            symbol=leader[0],
            beta=spec.decimal("beta", 'beta = "1.2"'),
            noise_bps=spec.opt_decimal("noise_bps", Decimal(0)) or Decimal(0),
            noise_every_ms=every,
        )
        try:
            path = follow_path(leader[1].path, follow, rng_for(seed, f"follow:{symbol}"), scenario)
        except ValueError as exc:
            spec.fail("beta", f"gives an impossible path ({exc})", "lower beta or the moves")
        relative = True
    depth = None
    if spec.has("depth"):
        depth = spec.string("depth", 'depth = "thin"', choices=sorted(DEPTH_PROFILES))
    feed_events, wicks = _events(spec, seed, symbol)
    return SymbolScenario(
        path=path,
        relative=relative,
        depth=depth,
        skew_bps=spec.opt_decimal("skew_bps"),
        follows=follow,
        feed_events=feed_events,
        wicks=wicks,
    )


def _path(table: Table, scenario: str) -> tuple[PricePath, bool]:
    example = 'points = [[0, "1"], [10_000, "0.95"]]'
    raw = table.raw("points", example)
    if not isinstance(raw, list) or not raw:
        table.fail("points", 'is not a non-empty array of [ms, "price"] pairs', f"write {example}")
    points: list[tuple[int, Decimal]] = []
    for i, pair in enumerate(raw):
        if not isinstance(pair, list) or len(pair) != 2:
            table.fail(
                f"points[{i}]", f'= {pair!r} is not a [ms, "price"] pair', f"write {example}"
            )
        at = table.as_int(f"points[{i}][0]", pair[0], 0)
        price = table.as_decimal(f"points[{i}][1]", pair[1])
        if price <= 0:
            table.fail(f"points[{i}][1]", f"= {price} is not > 0", "prices are positive")
        if points and at < points[-1][0]:
            table.fail(f"points[{i}][0]", f"= {at} goes back in time", "sort keyframes by time")
        points.append((at, price))
    linear, relative = table.boolean("linear"), table.boolean("relative")
    return PricePath(points=tuple(points), linear=bool(linear), name=scenario), bool(relative)


def follow_path(leader: PricePath, follow: Follow, rng: random.Random, name: str) -> PricePath:
    """The follower's relative path: ``1 + beta · (r_L(t) − 1) + ε(t)`` (see :class:`Follow`).

    Keyframes at 0, at each of the leader's keyframes and every ``noise_every_ms`` up to the
    leader's last keyframe. Between keyframes both paths interpolate the same way, so the bound
    ``|ε| ≤ noise_bps / 10⁴`` holds at every instant.

    Raises:
        ValueError: the derived price reaches zero or below.
    """
    times = {0} | {t for t, _ in leader.points}
    if follow.noise_every_ms is not None:
        times |= set(range(0, leader.duration_ms + 1, follow.noise_every_ms))
    base = leader.price_at(0)
    points: list[tuple[int, Decimal]] = []
    for t in sorted(times):
        draw = rng.randint(-1000, 1000)
        noise = follow.noise_bps * draw / 1000 / BPS if t > 0 else Decimal(0)
        level = 1 + follow.beta * (leader.price_at(t) / base - 1) + noise
        if level <= 0:
            msg = f"the follower's price multiple at {t} ms is {level}"
            raise ValueError(msg)
        points.append((t, level))
    return PricePath(points=tuple(points), linear=leader.linear, name=name)


def _events(
    spec: Table, seed: int, symbol: str
) -> tuple[tuple[FeedEvent, ...], tuple[WickEvent, ...]]:
    rng = rng_for(seed, f"events:{symbol}")
    feeds: list[FeedEvent] = []
    wicks: list[WickEvent] = []
    for event in spec.tables("events", EVENT_KEYS):
        at = event.integer("at_ms", "at_ms = 10_000")
        jitter = event.opt_integer("jitter_ms") or 0
        at += rng.randint(0, jitter) if jitter else 0  # a jittered event lands in [at, at + jitter]
        wick = event.table("wick", WICK_KEYS)
        if wick is not None:
            for key in ("feed", "stall", "offset"):
                if event.has(key):
                    event.fail(key, "cannot be combined with a wick", "split it into two events")
            side = wick.string("side", 'side = "SELL"', choices=[s.value for s in Side])
            fraction = wick.decimal("depth_fraction", 'depth_fraction = "1.5"', Decimal(0))
            wicks.append(WickEvent(at_ms=at, side=Side(side), depth_fraction=fraction))
            continue
        feed = event.integer("feed", "feed = 2", minimum=1)
        stall, offset = event.boolean("stall"), event.opt_decimal("offset")
        if stall is None and offset is None:
            event.fail(None, "changes nothing", 'give stall = true/false, offset = "0.3" or a wick')
        feeds.append(FeedEvent(at_ms=at, feed=feed, stall=stall, offset=offset))
    return tuple(feeds), tuple(wicks)


# ---------------------------------------------------------------------- populations
def _population(table: Table, seed: int) -> Population:
    name = table.string("name", 'name = "crowd"')
    count = table.integer("count", "count = 20", minimum=1)
    if table.has("symbol") == table.has("symbols"):
        table.fail(None, "needs exactly one of symbol and symbols", 'write symbols = ["BTCUSDT"]')
    if table.has("symbol"):
        symbols: tuple[str, ...] = (table.string("symbol", 'symbol = "BTCUSDT"'),)
    else:
        raw = table.raw("symbols", 'symbols = ["BTCUSDT"]')
        if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
            table.fail("symbols", f"= {raw!r} is not an array of symbols", 'write ["BTCUSDT"]')
        if len(set(raw)) != len(raw):
            table.fail("symbols", f"= {raw!r} repeats a symbol", "name each symbol once")
        symbols = tuple(raw)
    side = SIDES[table.string("side", 'side = "long"', choices=list(SIDES))]
    mode = MODES["cross"]
    if table.has("margin_mode"):
        mode = MODES[table.string("margin_mode", 'margin_mode = "cross"', choices=list(MODES))]
    leverage = table.int_range("leverage", "leverage = [10, 20]")
    wallet = table.decimal_range("wallet", 'wallet = ["500", "900"]')
    if table.has("notional") == table.has("quantities"):
        table.fail(
            None,
            "needs exactly one of notional and quantities",
            'write notional = ["1000", "2500"]',
        )
    notional = (
        table.decimal_range("notional", 'notional = ["1000", "2500"]')
        if table.has("notional")
        else None
    )
    quantities = _quantities(table, symbols, count) if notional is None else {}
    rng = rng_for(seed, f"population:{name}")
    accounts = []
    for i in range(count):  # per account: leverage, wallet, then each leg's notional
        lev = rng.randint(*leverage)
        deposit = _uniform(rng, *wallet)
        legs = tuple(
            Leg(symbol=s, notional=_uniform(rng, *notional))
            if notional is not None
            else Leg(symbol=s, quantity=quantities[s][i])
            for s in symbols
        )
        accounts.append(AccountPlan(wallet=deposit, leverage=lev, legs=legs))
    return Population(
        name=name, side=side, margin_mode=mode, symbols=symbols, accounts=tuple(accounts)
    )


def _quantities(table: Table, symbols: tuple[str, ...], count: int) -> dict[str, list[Decimal]]:
    sub = table.table("quantities", symbols)
    assert sub is not None  # noqa: S101 - the caller checked the key is there
    out: dict[str, list[Decimal]] = {}
    for symbol in symbols:
        raw = sub.raw(symbol, f'{symbol} = ["0.010", "0.020"]')
        if not isinstance(raw, list) or len(raw) != count:
            sub.fail(symbol, f"does not hold count = {count} quantities", "give one per account")
        out[symbol] = [sub.as_decimal(f"{symbol}[{i}]", q, Decimal(0)) for i, q in enumerate(raw)]
    return out


def _uniform(rng: random.Random, low: Decimal, high: Decimal) -> Decimal:
    """A draw from ``[low, high]`` on the cent grid (exact, reproducible)."""
    steps = int((high - low) / GRID)
    return low + GRID * rng.randint(0, steps)
