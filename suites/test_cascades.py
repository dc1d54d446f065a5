"""CASC: cascades as connected exposure (testing guide point 9).

A cascade is a graph problem: accounts, collateral pools and symbols tied by positions, shared
cross collateral and correlation; forced flow walks the book and moves the mark into the next
accounts' liquidation prices; latency lets the market run on between a crossing and its
liquidation. The oracle (harness/oracle/cascade.py, exposure.py, latency.py) predicts a shock's
liquidations from what the venue's control side reports of every account (``READ_POPULATION``)
and what it publishes (books, marks, instruments); each check runs the shock on the venue and
compares. Each measured run needs a market in a known state, so a check that runs several
shocks brings the market back between them (see each docstring).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from harness.cascade import AccountExposure, AccountLiquidation
from harness.checks import CheckContext, check
from harness.model import MarginMode, PricePath
from harness.oracle.cascade import (
    CascadePrediction,
    MarketInput,
    Shock,
    move_for_mark,
    positions_of,
    predict_cascade,
)
from harness.oracle.concentration import open_interest
from harness.oracle.exposure import (
    cascade_graph,
    exposure_graph,
    graph_summary,
    shared_collateral,
)
from harness.oracle.latency import expected_latency_cost
from harness.venue import Capability, Venue, VenueControl

if TYPE_CHECKING:  # imported by harness.oracle.exposure when a check draws a graph
    import networkx as nx

BTC = "BTCUSDT"
ETH = "ETHUSDT"
BETA = Decimal("1.3")  # ETHUSDT's move per BTCUSDT move in the correlated shock
SETTLE_MS = 40_000  # longer than the 30-sample basis window: a settled mark before a shock
TOLERANCE_BPS = Decimal(5)  # accounts whose fate turns within this of the mark are borderline
LAB = frozenset(
    {
        Capability.CONTROL_CLOCK,
        Capability.CONTROL_PRICES,
        Capability.CONTROL_SCENARIO,
        Capability.READ_POPULATION,
        Capability.READ_INSURANCE,
    }
)


def _d(value: Decimal, places: str = "0.01") -> str:
    return format(value.quantize(Decimal(places)), "f")


async def _markets(venue: Venue, symbols: Sequence[str]) -> dict[str, MarketInput]:
    instruments = await venue.instruments()
    return {
        s: MarketInput(
            instrument=instruments[s], book=await venue.order_book(s, 500), mark=await venue.mark(s)
        )
        for s in symbols
    }


async def _shock(control: VenueControl, markets: dict[str, MarketInput], shock: Shock) -> None:
    """Step each symbol's index to its shocked level at the next update (all at once)."""
    for symbol, move in shock.moves.items():
        index = markets[symbol].mark.index_price
        await control.set_price_path(
            symbol, PricePath(points=((0, index * (1 + move)),), name="shock")
        )


def _first(events: Sequence[AccountLiquidation], ids: set[str]) -> dict[str, AccountLiquidation]:
    """Each account's first liquidation step, in the venue's order."""
    out: dict[str, AccountLiquidation] = {}
    for e in events:
        if e.account_id in ids:
            out.setdefault(e.account_id, e)
    return out


def _sets(
    ctx: CheckContext, label: str, prediction: CascadePrediction, simulated: set[str]
) -> None:
    """Predicted and simulated sets agree outside the borderline accounts."""
    missing = sorted(prediction.certain - simulated)
    unexpected = sorted(simulated - set(prediction.liquidated) - prediction.borderline)
    ctx.require(
        f"{label}: every account the oracle liquidates was liquidated",
        not missing,
        expected=f"{len(prediction.certain)} certain accounts liquidated",
        observed=f"missing {', '.join(missing)}" if missing else "all of them",
    )
    ctx.require(
        f"{label}: nobody else was liquidated (borderline aside)",
        not unexpected,
        expected="none beyond the prediction",
        observed=", ".join(unexpected) if unexpected else "none",
    )


def _fate_tone(account: str, prediction: CascadePrediction, liquidated: set[str]) -> str:
    predicted = account in prediction.liquidated
    if account in prediction.borderline:
        return "warn"
    if predicted != (account in liquidated):
        return "accent"
    return "bad" if predicted else "neutral"


FATES = {
    "bad": "liquidated, as predicted",
    "warn": "borderline (either way is right)",
    "accent": "venue and prediction disagree",
    "neutral": "not liquidated, as predicted",
}


def _exposure_evidence(
    graph: nx.Graph, prediction: CascadePrediction, liquidated: set[str], traders: Mapping[str, Any]
) -> dict[str, Any]:
    """The exposure graph of the traders for the report: accounts coloured by their fate."""

    def node_id(key: tuple[str, ...]) -> str:
        return "/".join(key)

    nodes: list[dict[str, Any]] = []
    for key, data in graph.nodes(data=True):
        kind = data.get("kind")
        if kind == "account" and key[1] in traders:
            label = str(data.get("label", "")).split("/", 1)[-1]
            tone = _fate_tone(key[1], prediction, liquidated)
            nodes.append(
                {
                    "id": node_id(key),
                    "label": f"{key[1]} {label}",
                    "layer": "accounts",
                    "tone": tone,
                    "emphasis": tone == "accent",
                    "detail": FATES[tone],
                }
            )
        elif kind == "pool" and key[1] in traders:
            wallet = _d(Decimal(str(data.get("wallet", "0"))))
            what = f"isolated {key[2]}" if data.get("isolated") else "cross wallet"
            nodes.append(
                {
                    "id": node_id(key),
                    "label": f"{what} {wallet}",
                    "layer": "collateral",
                    "kind": "collateral pool",
                }
            )
        elif kind == "symbol":
            nodes.append(
                {"id": node_id(key), "label": key[1], "layer": "symbols", "kind": "symbol"}
            )
    kept = {n["id"] for n in nodes}
    edges = []
    for a, b, data in graph.edges(data=True):
        if node_id(a) not in kept or node_id(b) not in kept:
            continue
        kind = str(data.get("kind", ""))
        if kind == "position":
            detail = f"{data.get('quantity')} at {data.get('entry')}"
        elif kind == "correlation":
            detail = f"beta {data.get('beta')}"
        else:
            detail = ""
        edges.append(
            {
                "source": node_id(a),
                "target": node_id(b),
                "kind": kind,
                "label": detail if kind == "correlation" else "",
                "detail": detail,
            }
        )
    return {
        "type": "graph",
        "title": "Exposure graph: traders, their collateral and the symbols they hold",
        "directed": False,
        "layers": ["accounts", "collateral", "symbols"],
        "tones": FATES,
        "nodes": nodes,
        "edges": edges,
    }


@check("CASC-001", needs=LAB | {Capability.READ_LIQUIDATIONS})
async def test_correlated_shock_liquidates_the_predicted_set(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """A correlated two-symbol shock liquidates the accounts the exposure graph predicts.

    Scenario ``cross-pair-shock``: cross accounts long both BTCUSDT and ETHUSDT on one wallet,
    and isolated BTCUSDT longs. After the market settles (40 s: the basis window), the oracle
    reads every account's wallets and positions, builds the exposure graph (accounts, collateral
    pools, symbols; positions, shared cross collateral, the 1.3 beta) and predicts the
    liquidations of BTCUSDT -8 % with ETHUSDT -10.4 %, round by round with forced flow walking
    the books. The venue then takes that shock. Its liquidated set must be the predicted one
    (accounts within 5 bp of their line are borderline and may go either way), and no account
    may be liquidated before one the oracle puts in an earlier round. A venue that judges each
    cross position on its own loss misses the accounts the two losses together liquidate.

    Source: perp-mechanics.md §14 shared collateral, forced flow vs depth; §6 trigger
    """
    await control.load_scenario("cross-pair-shock")
    await control.advance(SETTLE_MS)
    population = await control.population()
    markets = await _markets(venue, (BTC, ETH))
    shock = Shock.correlated(BTC, Decimal("-0.08"), {ETH: BETA})
    prediction = predict_cascade(
        population,
        markets,
        shock,
        basis_samples=venue.rules.mark_basis_samples,
        non_strict=venue.rules.liquidation_non_strict,
        tolerance_bps=TOLERANCE_BPS,
    )
    graph = exposure_graph(population, {(BTC, ETH): BETA})
    traders = {a.account_id: a for a in population if not a.exempt}
    shared = {a for a, _ in shared_collateral(graph) if a in traders}
    # What a venue judging each cross position on the wallet and its own loss would liquidate:
    # the accounts only shared collateral liquidates are the difference.
    alone = predict_cascade(
        _per_symbol(population),
        markets,
        shock,
        basis_samples=venue.rules.mark_basis_samples,
        non_strict=venue.rules.liquidation_non_strict,
        tolerance_bps=Decimal(0),
    )
    through_sharing = sorted(prediction.certain - set(alone.liquidated))
    ctx.require(
        "(precondition) the shock liquidates accounts only their shared collateral exposes",
        bool(through_sharing),
        expected="at least one",
        observed=", ".join(through_sharing) or "none",
    )
    fund_before = (await venue.insurance_fund()).balance
    start = venue.clock.now_ms()
    await _shock(control, markets, shock)
    await control.advance(5_000)
    events = await control.account_liquidations(since_ms=start)
    first = _first(events, set(traders))
    simulated = set(first)
    _sets(ctx, "BTC -8 %, ETH -10.4 %", prediction, simulated)
    order = [e.account_id for e in events if e.account_id in traders]
    position = {a: order.index(a) for a in simulated}
    rounds: dict[str, int] = {}
    for rnd in prediction.rounds:
        for step in rnd.steps:
            rounds.setdefault(step.account_id, step.round)
    inversions = [
        (a, b)
        for a in simulated
        for b in simulated
        if a in rounds and b in rounds and rounds[a] < rounds[b] and position[b] < position[a]
    ]
    ctx.require(
        "order: nobody liquidated before an account of an earlier predicted round",
        not inversions,
        expected="no inversion",
        observed=f"{len(inversions)} inversion(s) {inversions[:3]}",
    )
    fund_after = (await venue.insurance_fund()).balance
    shortfall = sum((e.event.shortfall or Decimal(0) for e in events), Decimal(0))
    rows = []
    for account_id, acct in sorted(traders.items(), key=lambda kv: (kv[0] not in rounds, kv[0])):
        sim = first.get(account_id)
        rows.append(
            [
                account_id,
                acct.label,
                "cross, shared" if account_id in shared else _mode(acct),
                str(rounds.get(account_id, "—")),
                "yes" if account_id in prediction.borderline else "",
                "yes" if account_id in through_sharing else "",
                "—"
                if sim is None
                else f"{sim.event.symbol} at {_d(sim.event.trigger_mark or Decimal(0))}",
            ]
        )
    ctx.add_evidence(
        "accounts",
        {
            "type": "table",
            "title": "Predicted round vs the venue's first liquidation step, per account",
            "columns": [
                "account",
                "label",
                "collateral",
                "predicted round",
                "borderline",
                "only through shared collateral",
                "venue",
            ],
            "rows": rows,
        },
    )
    ctx.add_evidence("exposure", _exposure_evidence(graph, prediction, simulated, traders))
    ctx.add_evidence(
        "timeline",
        {
            "type": "timeline",
            "title": "The venue's liquidation steps after the shock, by predicted round",
            "x_label": "time since the shock (s)",
            "events": [
                {
                    "x": format(Decimal(e.event.time_ms - start) / 1000, "f"),
                    "lane": f"round {rounds[e.account_id]}"
                    if e.account_id in rounds
                    else "not predicted",
                    "label": f"{e.account_id} {e.event.symbol} at "
                    f"{_d(e.event.trigger_mark or Decimal(0))}",
                    "kind": e.event.symbol,
                }
                for e in events
                if e.account_id in traders
            ],
        },
    )
    ctx.add_evidence(
        "graph",
        {
            "type": "table",
            "title": "Exposure graph and cascade",
            "columns": ["quantity", "value"],
            "rows": [
                *([k, str(v)] for k, v in graph_summary(graph).items()),
                ["traders' cross pools holding both symbols", str(len(shared))],
                ["predicted liquidations (certain + borderline)", str(len(prediction.liquidated))],
                ["simulated liquidations", str(len(simulated))],
                ["predicted depth (generations)", str(prediction.depth)],
                ["predicted rounds", str(len(prediction.rounds))],
                ["predicted shortfall (USDT)", _d(sum(prediction.shortfall.values(), Decimal(0)))],
                ["venue shortfall (USDT)", _d(shortfall)],
                ["insurance fund change (USDT)", _d(fund_after - fund_before)],
            ],
        },
    )


def _per_symbol(population: Sequence[AccountExposure]) -> list[AccountExposure]:
    """Each cross position as if it alone stood on the whole cross wallet."""
    return [
        replace(
            acct,
            positions=tuple(
                replace(
                    p, margin_mode=MarginMode.ISOLATED, isolated_wallet=acct.cross_wallet_balance
                )
                if p.margin_mode is MarginMode.CROSS
                else p
                for p in acct.positions
            ),
        )
        for acct in population
    ]


def _mode(acct: AccountExposure) -> str:
    return ", ".join(sorted({p.margin_mode.value.lower() for p in acct.positions})) or "flat"


async def _cascade_run(
    venue: Venue, control: VenueControl, scenario: str
) -> tuple[
    list[AccountExposure], CascadePrediction, dict[str, AccountLiquidation], int, dict[str, Any]
]:
    """Load ``scenario``, aim a shock just past its first liquidation price, run it, then clear
    the market: every remaining member is swept out and the index returns and settles."""
    await control.load_scenario(scenario)
    await control.advance(SETTLE_MS)
    members = [a for a in await control.population() if a.label.startswith(f"{scenario}/")]
    markets = await _markets(venue, (BTC,))
    market = markets[BTC]
    highest = max(p.liquidation_price or Decimal(0) for a in members for p in a.positions)
    move = move_for_mark(
        market, highest * (1 - Decimal("0.0005")), basis_samples=venue.rules.mark_basis_samples
    )
    shock = Shock(moves={BTC: move})
    prediction = predict_cascade(
        members,
        markets,
        shock,
        basis_samples=venue.rules.mark_basis_samples,
        non_strict=venue.rules.liquidation_non_strict,
        tolerance_bps=Decimal(0),
    )
    positions = positions_of(await control.population())
    size = sum((abs(p.quantity) for p in positions_of(members)), Decimal(0))
    depth = sum((q for _, q in market.book.bids), Decimal(0))
    facts = {
        "size": size,
        "oi_share": size / open_interest(positions, BTC),
        "depth_share": size / depth,
        "leverages": sorted(p.leverage for p in positions_of(members)),
        "move": move,
    }
    fund = (await venue.insurance_fund()).balance
    start = venue.clock.now_ms()
    await _shock(control, markets, shock)
    await control.advance(3_000)
    events = await control.account_liquidations(since_ms=start)
    first = _first(events, {a.account_id for a in members})
    facts["fund_change"] = (await venue.insurance_fund()).balance - fund
    shocked_index = market.mark.index_price * (1 + move)
    index = market.mark.index_price
    sweep = PricePath(points=((0, shocked_index), (3_000, index * Decimal("0.85"))), linear=True)
    await control.set_price_path(BTC, sweep)
    await control.advance(6_000)
    back = PricePath(points=((0, index * Decimal("0.85")), (5_000, index)), linear=True)
    await control.set_price_path(BTC, back)
    await control.advance(5_000 + SETTLE_MS)
    return members, prediction, first, start, facts


def _generations(first: dict[str, AccountLiquidation]) -> dict[str, int]:
    """Each member's generation on the venue: the rank of its first step's trigger mark among
    the distinct trigger marks of the shock's update, highest first (each scan pass of a long
    cascade triggers at the lower mark the forced flow left; without flow every crossing shares
    the shock's mark). Members first liquidated after that update are left out."""
    if not first:
        return {}
    at = min(e.event.time_ms for e in first.values())
    marks = sorted(
        {e.event.trigger_mark or Decimal(0) for e in first.values() if e.event.time_ms == at},
        reverse=True,
    )
    rank = {m: i + 1 for i, m in enumerate(marks)}
    return {
        a: rank[e.event.trigger_mark or Decimal(0)]
        for a, e in first.items()
        if e.event.time_ms == at
    }


@check("CASC-002", needs=LAB | {Capability.READ_LIQUIDATIONS})
async def test_cascade_depth_rises_with_concentration(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """Forced flow: at the same leverages, a more concentrated population cascades deeper.

    Scenarios ``cascade-dispersed`` and ``cascade-concentrated``: the same five groups of
    isolated BTCUSDT longs at 50x, 45x, 40x, 35x and 30x on a thin book quoted 100 bp above the
    index (the band in which forced flow can drag the mark down, §2), ten times larger in the
    second. For each, the oracle aims a shock so the mark lands 5 bp past the highest
    liquidation price and predicts the cascade; the venue takes it. The venue's depth (distinct
    trigger marks of the members' first steps in the shock's update), each member's generation
    and the liquidated count must equal the prediction, and the concentrated population's depth
    must exceed the dispersed one's. The runs share the venue: after a run the index falls 15 %
    to sweep out every remaining member, returns to where it was and holds 45 s, so the next
    population meets the same market (book requoted around the same index, mark settled, no
    member left).

    Source: perp-mechanics.md §14 forced flow vs depth, mark inertia; testing guide point 8
    """
    results = {}
    for name in ("cascade-dispersed", "cascade-concentrated"):
        results[name] = await _cascade_run(venue, control, name)
    rows = []
    depths = {}
    for name, (members, prediction, first, _, facts) in results.items():
        generations = _generations(first)
        depth = max(generations.values(), default=0)
        depths[name] = depth
        agree = [a for a, g in prediction.generation.items() if generations.get(a) == g]
        ctx.equal(
            f"{name}: members liquidated in the oracle's generation",
            expected=Decimal(len(prediction.generation)),
            observed=Decimal(len(agree)),
        )
        ctx.equal(
            f"{name}: cascade depth = the oracle's",
            expected=Decimal(prediction.depth),
            observed=Decimal(depth),
            unit="generations",
        )
        ctx.equal(
            f"{name}: liquidated accounts = the oracle's",
            expected=Decimal(len(prediction.liquidated)),
            observed=Decimal(len(first)),
        )
        _sets(ctx, name, prediction, set(first))
        rows.append(
            [
                name,
                _d(facts["size"], "0.001"),
                _d(facts["depth_share"]),
                _d(facts["oi_share"]),
                f"{_d(facts['move'] * 100, '0.001')} %",
                f"{len(prediction.liquidated)} / {len(first)}",
                f"{prediction.depth} / {depth}",
                _d(facts["fund_change"]),
                str(len(members)),
            ]
        )
    dispersed, concentrated = results["cascade-dispersed"], results["cascade-concentrated"]
    ctx.require(
        "(precondition) both populations hold the same leverages",
        dispersed[4]["leverages"] == concentrated[4]["leverages"],
        expected=str(dispersed[4]["leverages"]),
        observed=str(concentrated[4]["leverages"]),
    )
    ctx.require(
        "(precondition) the oracle predicts a deeper cascade for the concentrated population",
        concentrated[1].depth > dispersed[1].depth,
        expected=f"> {dispersed[1].depth}",
        observed=str(concentrated[1].depth),
    )
    ctx.at_least(
        "concentrated cascade depth exceeds the dispersed one's",
        limit=Decimal(depths["cascade-dispersed"] + 1),
        observed=Decimal(depths["cascade-concentrated"]),
        unit="generations",
    )
    edges = cascade_graph(concentrated[1]).edges
    venue_gen = _generations(concentrated[2])
    ctx.add_evidence(
        "cascade",
        {
            "type": "graph",
            "title": "cascade-concentrated, predicted: whose forced flow liquidated whom",
            "directed": True,
            "layers": [f"generation {g}" for g in range(1, concentrated[1].depth + 1)],
            "tones": {
                "bad": "liquidated in the predicted generation",
                "accent": "the venue's generation differs",
            },
            "nodes": [
                {
                    "id": a,
                    "layer": g - 1,
                    "tone": "bad" if venue_gen.get(a) == g else "accent",
                    "emphasis": venue_gen.get(a) != g,
                    "detail": f"generation {g} (oracle) / {venue_gen.get(a, '—')} (venue)",
                }
                for a, g in sorted(concentrated[1].generation.items(), key=lambda kv: kv[::-1])
            ],
            "edges": [{"source": a, "target": b, "kind": "forced flow"} for a, b in sorted(edges)],
        },
    )
    ctx.add_evidence(
        "timeline",
        {
            "type": "timeline",
            "title": "cascade-concentrated: first liquidation of each member, by oracle generation",
            "x_label": "time since the shock (s)",
            "events": [
                {
                    "x": format(Decimal(e.event.time_ms - concentrated[3]) / 1000, "f"),
                    "lane": f"generation {concentrated[1].generation[a]}"
                    if a in concentrated[1].generation
                    else "not predicted",
                    "label": f"{a} at {_d(e.event.trigger_mark or Decimal(0))} "
                    f"(venue generation {venue_gen.get(a, '—')})",
                    "kind": f"venue generation {venue_gen.get(a, 'later')}",
                }
                for a, e in sorted(concentrated[2].items())
            ],
        },
    )
    ctx.add_evidence(
        "cascade graph",
        {
            "type": "table",
            "title": "cascade-concentrated, predicted: whose forced flow liquidated whom",
            "columns": ["from", "to", "generation (oracle / venue)"],
            "rows": [
                [
                    a,
                    b,
                    f"{concentrated[1].generation[b]} / "
                    f"{_generations(concentrated[2]).get(b, '—')}",
                ]
                for a, b in sorted(edges)
            ],
        },
    )
    ctx.add_evidence(
        "concentration",
        {
            "type": "table",
            "title": "Concentration against cascade depth (oracle / venue)",
            "columns": [
                "population",
                "size (BTC)",
                "share of bid depth",
                "share of open interest",
                "shock",
                "liquidated",
                "depth",
                "insurance fund change (USDT)",
                "accounts",
            ],
            "rows": rows,
        },
    )


@check(
    "CASC-003",
    needs=LAB | {Capability.READ_LIQUIDATIONS, Capability.CONTROL_LIQUIDATION_LATENCY},
)
async def test_latency_raises_deficits_and_insurance_usage(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """Liquidation-engine latency raises deficits and insurance-fund usage monotonically.

    Scenario ``latency-cohort`` (ten isolated BTCUSDT longs at 20x to 25x), once per latency of
    0, 2 and 5 s: the index falls 1 % a second for 12 s. The oracle predicts each member's
    crossing, its liquidation at crossing + latency, and what the insurance fund loses taking
    over below the bankruptcy price; the venue's liquidation times, the shortfall it reports
    and the fund's drawdown are compared with it, and must rise with the latency by at least
    half the rise the oracle expects. The runs share the venue: every member is liquidated by
    the fall; the index then returns to its starting level and holds 45 s, and the next run
    loads a fresh cohort from the same seeded plan, so each latency meets the same market and
    the same positions.

    Source: perp-mechanics.md §14 mark inertia, throttles; §8 insurance fund
    """
    latencies = (0, 2_000, 5_000)
    interval = venue.rules.mark_update_interval_ms
    base = (await venue.mark(BTC)).index_price
    seen: set[str] = set()
    runs = []
    for latency in latencies:
        await control.set_liquidation_latency(latency)
        await control.load_scenario("latency-cohort")
        cohort = [a for a in await control.population("cohort") if a.account_id not in seen]
        seen |= {a.account_id for a in cohort}
        await control.advance(2 * interval)
        market = (await _markets(venue, (BTC,)))[BTC]
        index = market.mark.index_price
        path = PricePath(points=((0, index), (12_000, index * Decimal("0.88"))), linear=True)
        start = venue.clock.now_ms()
        expected = expected_latency_cost(
            cohort,
            market,
            path,
            start_ms=start,
            latency_ms=latency,
            update_interval_ms=interval,
        )
        fund = (await venue.insurance_fund()).balance
        await control.set_price_path(BTC, path)
        await control.advance(20_000)
        events = [
            e
            for e in await control.account_liquidations(since_ms=start)
            if e.account_id in {a.account_id for a in cohort}
        ]
        used = fund - (await venue.insurance_fund()).balance
        shortfall = sum((e.event.shortfall or Decimal(0) for e in events), Decimal(0))
        notional = sum((p.size * p.entry_price for p in positions_of(cohort)), Decimal(0))
        first = _first(events, {a.account_id for a in cohort})
        late = [
            s.account_id
            for s in expected.steps
            if s.account_id not in first
            or abs(first[s.account_id].event.time_ms - s.executed_ms) > interval
        ]
        ctx.require(
            f"latency {latency} ms: each member liquidated at its crossing + latency",
            not late and len(first) == len(cohort),
            expected=f"{len(cohort)} on time (within one update)",
            observed=f"{len(first)} liquidated, off time: {', '.join(late) or 'none'}",
        )
        ctx.equal(
            f"latency {latency} ms: shortfall reported = the oracle's",
            expected=expected.shortfall,
            observed=shortfall,
            tolerance=expected.shortfall * Decimal("0.05") + notional * Decimal("0.001"),
            unit="USDT",
        )
        runs.append((latency, expected, shortfall, used, notional))
        await control.set_price_path(
            BTC, PricePath(points=((0, index * Decimal("0.88")), (5_000, base)), linear=True)
        )
        await control.advance(5_000 + SETTLE_MS)
    await control.set_liquidation_latency(0)
    for (l0, e0, s0, u0, _), (l1, e1, s1, u1, _) in itertools.pairwise(runs):
        rise = (e1.shortfall - e0.shortfall) / 2
        ctx.at_least(
            f"shortfall rises from {l0} to {l1} ms by at least half the expected rise",
            limit=rise,
            observed=s1 - s0,
            unit="USDT",
        )
        ctx.at_least(
            f"insurance-fund usage rises from {l0} to {l1} ms by at least half the expected rise",
            limit=rise,
            observed=u1 - u0,
            unit="USDT",
        )
    ctx.add_evidence(
        "latency",
        {
            "type": "series",
            "title": "Insurance-fund shortfall against liquidation latency",
            "x_label": "latency (s)",
            "y_label": "USDT",
            "series": {
                "oracle": [[str(lat / 1000), _d(e.shortfall)] for lat, e, _, _, _ in runs],
                "venue shortfall": [[str(lat / 1000), _d(s)] for lat, _, s, _, _ in runs],
                "fund drawdown": [[str(lat / 1000), _d(u)] for lat, _, _, u, _ in runs],
            },
        },
    )
    ctx.add_evidence(
        "runs",
        {
            "type": "table",
            "title": "One run per latency (index -1 %/s for 12 s)",
            "columns": ["latency (ms)", "cohort notional", "oracle", "venue", "fund drawdown"],
            "rows": [[str(lat), _d(n), _d(e.shortfall), _d(s), _d(u)] for lat, e, s, u, n in runs],
        },
    )
