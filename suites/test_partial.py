"""PLQ: partial-liquidation fairness and the liquidation band (testing guide point 4).

Each check drives the index through a position's band and judges every forced step against
the oracle's expectation under the venue's published rule (``Instrument.liquidation``): how much
a step closes, in which tier order, for whom first, how the band looks, when slices may follow,
at what price, and who bears what the book cannot take.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest

from harness.checks import CheckContext, check
from harness.drive import Drive, band_legs, drive_index
from harness.model import (
    Instrument,
    LiquidationVariant,
    MarginMode,
    Position,
    PricePath,
    Side,
    TimeInForce,
)
from harness.probes import limit, market, need, open_isolated, position_input, position_of
from harness.streams import AccountEvent, LiquidationOrderEvent, select
from harness.venue import Account, Capability, Venue, VenueControl

BTC = "BTCUSDT"
ETH = "ETHUSDT"
NEEDS = frozenset(
    {
        Capability.TRADE,
        Capability.CONTROL_CLOCK,
        Capability.CONTROL_PRICES,
        Capability.CONTROL_ACCOUNTS,
        Capability.READ_LIQUIDATIONS,
        Capability.READ_BRACKETS,
    }
)


def _equity(pos: Position, wallet: Decimal, mark: Decimal) -> Decimal:
    return wallet + pos.quantity * (mark - pos.entry_price)


async def _partial_symbol(venue: Venue, variant: LiquidationVariant) -> Instrument:
    for inst in (await venue.instruments()).values():
        if inst.liquidation.variant is variant:
            return inst
    pytest.skip(f"{venue.name} has no symbol liquidated by {variant.value}")


async def _twins(
    venue: Venue,
    control: VenueControl,
    inst: Instrument,
    qty: Decimal,
    wallet: Decimal,
    leverage: int = 20,
) -> tuple[Account, Account]:
    """Two accounts with identical isolated positions: same size, entry, margin and leverage."""
    symbol = inst.symbol
    seller = await control.create_account(Decimal(10_000_000), label="twin seller")
    book = await venue.order_book(symbol, 5)
    ask = need(book.best_ask, f"an ask in {symbol}")
    bid = need(book.best_bid, f"a bid in {symbol}")
    price = ask - inst.tick_size if ask - inst.tick_size > bid else ask
    await seller.place_order(limit(symbol, Side.SELL, 2 * qty, price, TimeInForce.GTC))
    twins = []
    for name in ("twin A", "twin B"):
        twin = await control.create_account(wallet, label=name)
        await open_isolated(twin, symbol, Side.BUY, qty, leverage=leverage)
        twins.append(twin)
    await seller.cancel_all(symbol)
    return twins[0], twins[1]


def _band_marks(
    oracle: ModuleType, pos: Position, inst: Instrument, wallet: Decimal, isolated: bool
) -> list[Decimal]:
    """The oracle's band marks for ``pos`` (a long), highest first."""
    steps = oracle.expected_band(
        position_input(pos, inst.brackets),
        wallet=wallet,
        policy=inst.liquidation,
        step_size=inst.step_size,
        isolated=isolated,
        fee_rate=inst.liquidation_fee_rate or Decimal(0),
    )
    return [step.mark for step in steps]


def _steps_chart(
    drive: Drive,
    title: str,
    bands: Mapping[str, Sequence[Decimal]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The drive's chart with each liquidation step as a marker on the mark line (at its trigger
    mark) and each account's band (first step to full close) shaded, its edges as lines."""
    data = drive.evidence(title, **extra)
    data["vlines"] = []  # the steps are markers instead
    data["markers"] = [
        {
            "x": format(Decimal(e.time_ms - drive.start_ms) / 1000, "f"),
            "y": format(e.trigger_mark if e.trigger_mark is not None else f.mark, "f"),
            "label": f"{name}: {'partial step' if e.partial else 'full close'}, {e.quantity}",
            "tone": "warn" if e.partial else "bad",
        }
        for f in drive.frames
        for name, events in f.events.items()
        for e in events
    ]
    data["bands"] = [
        {"y0": format(min(band), "f"), "y1": format(max(band), "f"), "label": f"{name}'s band"}
        for name, band in (bands or {}).items()
        if band
    ]
    return data


async def _drive_through(
    venue: Venue,
    inst: Instrument,
    bands: list[list[Decimal]],
    accounts: dict[str, Account],
    stop: Callable[[Drive], bool],
) -> Drive:
    """Fast to the top of the bands, then slowly through them so every step gets its update."""
    marks = [m for band in bands for m in band]
    gaps = [a - b for band in bands for a, b in itertools.pairwise(band) if a > b]
    snapshot = await venue.mark(inst.symbol)
    legs, target, updates = band_legs(
        mark=snapshot.mark_price,
        index=snapshot.index_price,
        top=max(marks),
        bottom=min(marks),
        gap=min(gaps, default=max(marks) * Decimal("0.001")),
        tick=inst.tick_size,
    )
    focus = (min(marks) * Decimal("0.997"), max(marks) * Decimal("1.003"))
    return await drive_index(
        venue,
        inst.symbol,
        target,
        updates=updates,
        legs=legs,
        accounts=accounts,
        stop=stop,
        focus=focus,
    )


@check("PLQ-001", needs=NEEDS)
async def test_partial_step_is_minimal(
    venue: Venue, account: Account, control: VenueControl, oracle: ModuleType, ctx: CheckContext
) -> None:
    """A partial liquidation closes no more than the venue's rule needs to restore margin.

    Over-liquidation ratio = closed / minimal, where minimal is the oracle's step under the
    venue's published variant (tier step-down: the remainder just inside the highest lower tier
    that restores maintenance, filled at the trigger mark); it must be <= 1 + one quantity step.
    Judged for an isolated and a cross position.

    Source: perp-mechanics.md §7(a) tier step-down, §7(d) minimality, §13.3
    """
    inst = await _partial_symbol(venue, LiquidationVariant.TIER_STEP_DOWN)
    symbol = inst.symbol
    mark = (await venue.mark(symbol)).mark_price
    tier2 = inst.brackets[1].notional_floor
    # Six times the tier-2 floor: the step closes most of the position, which leaves the rest a
    # wide margin, so the full close comes well after the step (a mark jump cannot merge them).
    await open_isolated(account, symbol, Side.BUY, (tier2 * 6 / mark).quantize(inst.step_size), 40)
    cross = await control.create_account(Decimal(10_000), label="cross trader")
    await cross.place_order(
        market(symbol, Side.BUY, (tier2 * Decimal("2.4") / mark).quantize(inst.step_size))
    )
    accounts = {"isolated": account, "cross": cross}
    iso = need(await position_of(account, symbol), "the isolated position")
    crs = need(await position_of(cross, symbol), "the cross position")
    cross_wallet = (await cross.balance()).cross_wallet_balance
    bands = [
        _band_marks(oracle, iso, inst, iso.isolated_wallet, isolated=True),
        _band_marks(oracle, crs, inst, cross_wallet, isolated=False),
    ]
    drive = await _drive_through(
        venue, inst, bands, accounts, stop=lambda d: all(d.events(n) for n in accounts)
    )
    bands_of = dict(zip(accounts, bands, strict=True))
    ctx.add_evidence(
        "drive", _steps_chart(drive, "Index walked into the liquidation band", bands_of)
    )
    rows = []
    for name in accounts:
        events = drive.events(name)
        ctx.require(
            f"{name}: a liquidation step happened",
            bool(events),
            expected="a step",
            observed=f"{len(events)} step(s)",
        )
        if not events:
            continue
        frame_index, event = events[0]
        before = drive.before(frame_index)
        pos = need(before.positions[name], f"the {name} position before its liquidation")
        trigger = (
            event.trigger_mark if event.trigger_mark is not None else drive.frames[frame_index].mark
        )
        isolated = pos.margin_mode is MarginMode.ISOLATED
        wallet = pos.isolated_wallet if isolated else before.balances[name].cross_wallet_balance
        minimal = oracle.step_close_quantity(
            position_input(pos, inst.brackets),
            price=trigger,
            equity=_equity(pos, wallet, trigger),
            policy=inst.liquidation,
            step_size=inst.step_size,
            isolated=isolated,
            fee_rate=inst.liquidation_fee_rate or Decimal(0),
        )
        ratio = event.quantity / minimal
        rows.append(
            [
                name,
                str(abs(pos.quantity)),
                str(trigger),
                str(minimal),
                str(event.quantity),
                f"{ratio:.6f}",
            ]
        )
        ctx.require(
            f"{name}: the step left part of the position (partial)",
            minimal < abs(pos.quantity) and event.partial,
            expected=f"partial, minimal {minimal} of {abs(pos.quantity)}",
            observed=f"closed {event.quantity}, partial={event.partial}",
        )
        ctx.at_most(
            f"{name}: over-liquidation ratio closed / minimal",
            limit=1 + inst.step_size / minimal,
            observed=ratio,
        )
    ctx.add_evidence(
        "steps",
        {
            "type": "table",
            "title": "First liquidation step",
            "columns": ["account", "position", "trigger mark", "minimal", "closed", "ratio"],
            "rows": rows,
        },
    )


async def _big_isolated(
    control: VenueControl, venue: Venue, inst: Instrument
) -> tuple[Account, Position]:
    """An isolated long three tiers deep (four steps to full closure)."""
    mark = (await venue.mark(inst.symbol)).mark_price
    big = await control.create_account(Decimal(1_000_000), label="tiered long")
    qty = (inst.brackets[2].notional_floor * Decimal("1.5") / mark).quantize(inst.step_size)
    pos = await open_isolated(big, inst.symbol, Side.BUY, qty, leverage=20)
    return big, pos


async def _drive_to_close(
    venue: Venue, oracle: ModuleType, inst: Instrument, account: Account, pos: Position
) -> Drive:
    band = _band_marks(oracle, pos, inst, pos.isolated_wallet, isolated=True)
    return await _drive_through(
        venue,
        inst,
        [band],
        {"trader": account},
        stop=lambda d: bool(d.events("trader")) and d.frames[-1].positions["trader"] is None,
    )


@check("PLQ-002", needs=NEEDS)
async def test_tier_step_down_order_and_reevaluation(
    venue: Venue, control: VenueControl, oracle: ModuleType, ctx: CheckContext
) -> None:
    """Tier step-down goes one tier at a time, and each step waits for margin to break again.

    Each step lands the remainder in the highest lower tier that restores margin (the oracle's
    step, within one quantity step); tiers strictly decrease step by step; no step happens while
    the remainder's equity is above maintenance, and none is late once it is at or below.

    Source: perp-mechanics.md §7(a) step-down, §7(d) progress and stop rule, §13.4, §13.5
    """
    inst = await _partial_symbol(venue, LiquidationVariant.TIER_STEP_DOWN)
    trader, start = await _big_isolated(control, venue, inst)
    drive = await _drive_to_close(venue, oracle, inst, trader, start)
    band = _band_marks(oracle, start, inst, start.isolated_wallet, isolated=True)
    ctx.add_evidence(
        "drive", _steps_chart(drive, "Tier step-down through the band", {"trader": band})
    )
    events = drive.events("trader")
    ctx.require(
        "the position went through several steps to full closure",
        len(events) >= 3 and drive.frames[-1].positions["trader"] is None,
        expected=">= 3 steps, then flat",
        observed=f"{len(events)} step(s)",
    )
    tiers = []
    rows = []
    for frame_index, event in events:
        pos = need(drive.before(frame_index).positions["trader"], "the position before a step")
        trigger = need(event.trigger_mark, "the step's trigger mark")
        size = abs(pos.quantity)
        expected = oracle.step_close_quantity(
            position_input(pos, inst.brackets),
            price=trigger,
            equity=_equity(pos, pos.isolated_wallet, trigger),
            policy=inst.liquidation,
            step_size=inst.step_size,
            isolated=True,
        )
        tier_before = oracle.bracket_for(inst.brackets, size * trigger).bracket
        remaining = size - event.quantity
        tier_after = (
            oracle.bracket_for(inst.brackets, remaining * trigger).bracket if remaining else 0
        )
        tiers.append((tier_before, tier_after))
        rows.append(
            [
                str(trigger),
                str(size),
                str(event.quantity),
                str(expected),
                str(tier_before),
                str(tier_after),
            ]
        )
        ctx.equal(
            f"step at {trigger:.2f}: closed vs the oracle's step",
            expected=expected,
            observed=event.quantity,
            tolerance=inst.step_size,
            unit=inst.base_asset,
        )
        mm = oracle.maintenance_margin(inst.brackets, size * trigger)
        ctx.at_most(
            f"step at {trigger:.2f}: equity - maintenance when it fired",
            limit=Decimal(0),
            observed=_equity(pos, pos.isolated_wallet, trigger) - mm,
            unit="USDT",
        )
    ctx.require(
        "tiers step down one at a time",
        all(after == before - 1 or after == 0 for before, after in tiers),
        expected="each remainder one tier lower (0 = flat)",
        observed=str(tiers),
    )
    late = [
        f.mark
        for i, f in enumerate(drive.frames)
        if not f.events
        and (p := f.positions["trader"]) is not None
        and _equity(p, p.isolated_wallet, f.mark)
        <= oracle.maintenance_margin(inst.brackets, abs(p.quantity) * f.mark)
    ]
    ctx.require(
        "no update left the position at or below maintenance without a step",
        not late,
        expected="none",
        observed=f"{len(late)} update(s), e.g. mark {late[:1]}",
    )
    ctx.add_evidence(
        "steps",
        {
            "type": "table",
            "title": "Steps",
            "columns": [
                "trigger",
                "size before",
                "closed",
                "oracle step",
                "tier before",
                "tier after",
            ],
            "rows": rows,
        },
    )


@check("PLQ-003", needs=NEEDS)
async def test_identical_accounts_identical_outcomes(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """Identical accounts liquidated in the same update get identical outcomes.

    Two accounts with the same position, entry, margin and leverage, liquidated together into a
    thin book, must close the same quantity at the same average price and pay the same fee —
    whatever their account or order ids.

    Source: perp-mechanics.md §13.9 order across accounts, §13.11 equal treatment
    """
    inst = await _partial_symbol(venue, LiquidationVariant.TIER_STEP_DOWN)
    symbol = inst.symbol
    mark = (await venue.mark(symbol)).mark_price
    qty = (inst.brackets[1].notional_floor * Decimal("1.05") / mark).quantize(inst.step_size)
    twin_a, twin_b = await _twins(venue, control, inst, qty, Decimal(50_000))
    pos_a, pos_b = await position_of(twin_a, symbol), await position_of(twin_b, symbol)

    def shown(pos: Position | None) -> str:
        if pos is None:
            return "no position"
        return f"{pos.quantity} @ {pos.entry_price}, margin {pos.isolated_wallet}"

    ctx.require(
        "the twins start identical (precondition)",
        pos_a is not None
        and pos_b is not None
        and (pos_a.quantity, pos_a.entry_price, pos_a.isolated_wallet)
        == (pos_b.quantity, pos_b.entry_price, pos_b.isolated_wallet),
        expected="same size, entry and margin",
        observed=f"A {shown(pos_a)} / B {shown(pos_b)}",
    )
    await control.set_depth_profile(symbol, "thin")
    accounts = {"A": twin_a, "B": twin_b}
    drive = await drive_index(
        venue,
        symbol,
        mark * Decimal("0.9"),
        updates=300,
        accounts=accounts,
        stop=lambda d: bool(d.events("A")) and bool(d.events("B")),
    )
    ctx.add_evidence("drive", _steps_chart(drive, "Twins driven into liquidation"))
    (ia, ea), (ib, eb) = drive.events("A")[0], drive.events("B")[0]
    ctx.require(
        "both were liquidated in the same update",
        ia == ib,
        expected="same update",
        observed=f"updates {ia} and {ib}",
    )
    for label, a, b in (
        ("closed quantity", ea.quantity, eb.quantity),
        ("quantity filled in the book", ea.filled_qty, eb.filled_qty),
        ("average fill price", ea.avg_price or Decimal(0), eb.avg_price or Decimal(0)),
        ("liquidation fee", ea.fee or Decimal(0), eb.fee or Decimal(0)),
    ):
        ctx.equal(f"{label}: B vs A", expected=a, observed=b)
    wallet_a = drive.frames[ia].balances["A"].wallet_balance
    wallet_b = drive.frames[ib].balances["B"].wallet_balance
    ctx.equal("wallet after the step: B vs A", expected=wallet_a, observed=wallet_b, unit="USDT")


@check("PLQ-004", needs=NEEDS)
async def test_more_collateral_never_liquidates_earlier_or_more(
    venue: Venue, control: VenueControl, oracle: ModuleType, ctx: CheckContext
) -> None:
    """More collateral never means an earlier or a larger liquidation.

    Two identical isolated positions, one with extra margin added: the better-collateralized one
    is first liquidated at a mark no better for the trader (for a long: no higher), and its
    first step closes no more (one step of tolerance).

    Source: perp-mechanics.md §6(d) LP monotone in wallet, §13.8 monotone risk
    """
    inst = await _partial_symbol(venue, LiquidationVariant.TIER_STEP_DOWN)
    symbol = inst.symbol
    mark = (await venue.mark(symbol)).mark_price
    # Deep into tier 2 (six times its floor): both liquidation prices stay in it, and each first
    # step leaves a wide margin before the next, so the first steps are partial for both.
    qty = (inst.brackets[1].notional_floor * 6 / mark).quantize(inst.step_size)
    poor, rich = await _twins(venue, control, inst, qty, Decimal(50_000), leverage=40)
    await rich.add_isolated_margin(symbol, Decimal(1_000))
    accounts = {"poor": poor, "rich": rich}
    bands = []
    for twin in (poor, rich):
        p = need(await position_of(twin, symbol), "a twin's position")
        bands.append(_band_marks(oracle, p, inst, p.isolated_wallet, isolated=True))
    drive = await _drive_through(
        venue,
        inst,
        bands,
        accounts,
        stop=lambda d: bool(d.events("poor")) and bool(d.events("rich")),
    )
    bands_of = dict(zip(accounts, bands, strict=True))
    ctx.add_evidence("drive", _steps_chart(drive, "Same position, more collateral", bands_of))
    first = {n: drive.events(n)[0] if drive.events(n) else None for n in accounts}
    ctx.require(
        "both positions were liquidated",
        all(first.values()),
        expected="a step each",
        observed=str({k: bool(v) for k, v in first.items()}),
    )
    if not all(first.values()):
        return
    (i_poor, e_poor), (i_rich, e_rich) = need(first["poor"], "poor"), need(first["rich"], "rich")
    ctx.at_most(
        "mark of the better-collateralized position's first step",
        limit=need(e_poor.trigger_mark, "trigger"),
        observed=need(e_rich.trigger_mark, "trigger"),
        unit="USDT",
    )
    ctx.at_most(
        "size of the better-collateralized position's first step",
        limit=e_poor.quantity,
        observed=e_rich.quantity,
        tolerance=inst.step_size,
        unit=inst.base_asset,
    )
    ctx.at_least("update of its first step", limit=Decimal(i_poor), observed=Decimal(i_rich))


@check("PLQ-005", needs=NEEDS | {Capability.READ_BAND})
async def test_band_equals_oracle_band(
    venue: Venue, control: VenueControl, oracle: ModuleType, ctx: CheckContext
) -> None:
    """The venue's liquidation band equals the oracle's, and the liquidation follows it.

    The band is the marks and step sizes from the first forced reduction to full closure, given
    the brackets, the collateral and the venue's rule; the venue's reported band must match the
    oracle's step by step (mark to the tick, size exactly), and driving the mark through it must
    produce those steps (size within one step, each at the first update beyond its mark).

    Source: perp-mechanics.md §13 (the band), §7(a), §6(a) liquidation price per remainder
    """
    inst = await _partial_symbol(venue, LiquidationVariant.TIER_STEP_DOWN)
    trader, pos = await _big_isolated(control, venue, inst)
    reported = need(await trader.liquidation_band(inst.symbol), "a liquidation band")
    expected = oracle.expected_band(
        position_input(pos, inst.brackets),
        wallet=pos.isolated_wallet,
        policy=inst.liquidation,
        step_size=inst.step_size,
        isolated=True,
        fee_rate=inst.liquidation_fee_rate or Decimal(0),
    )
    ctx.equal(
        "number of steps in the band",
        expected=Decimal(len(expected)),
        observed=Decimal(len(reported.steps)),
    )
    for k, (want, got) in enumerate(zip(expected, reported.steps, strict=False), start=1):
        ctx.equal(
            f"band step {k}: mark",
            expected=want.mark,
            observed=got.mark,
            tolerance=inst.tick_size,
            unit="USDT",
        )
        ctx.equal(
            f"band step {k}: closed quantity",
            expected=want.close_qty,
            observed=got.close_qty,
            unit=inst.base_asset,
        )
    drive = await _drive_to_close(venue, oracle, inst, trader, pos)
    realized = drive.events("trader")
    ctx.equal("realized steps", expected=Decimal(len(expected)), observed=Decimal(len(realized)))
    for k, (want, (frame_index, event)) in enumerate(
        zip(expected, realized, strict=False), start=1
    ):
        # The step fires at the first update beyond the band's mark, a little lower: there the
        # target tier holds a little more, so what remains may be that much larger.
        trigger = need(event.trigger_mark, "trigger")
        slack = inst.step_size + want.remaining_qty * max(want.mark - trigger, Decimal(0)) / trigger
        before = need(drive.before(frame_index).positions["trader"], "the position before")
        ctx.equal(
            f"realized step {k}: what remains vs the band",
            expected=want.remaining_qty,
            observed=abs(before.quantity) - event.quantity,
            tolerance=slack,
            unit=inst.base_asset,
        )
        ctx.at_most(
            f"realized step {k}: trigger mark at or beyond the band's",
            limit=want.mark,
            observed=need(event.trigger_mark, "trigger"),
            tolerance=inst.tick_size,
            unit="USDT",
        )
        ctx.at_least(
            f"realized step {k}: no later than the first update beyond the band's mark",
            limit=want.mark,
            observed=drive.before(frame_index).mark,
            tolerance=inst.tick_size,
            unit="USDT",
        )
    ctx.add_evidence(
        "band",
        _steps_chart(
            drive,
            "Realized steps against the oracle's band",
            hlines=[
                {"y": format(s.mark, "f"), "label": f"band step {k}"}
                for k, s in enumerate(expected, 1)
            ],
        ),
    )


@check("PLQ-006", needs=NEEDS)
async def test_cooldown_between_slices(
    venue: Venue, control: VenueControl, oracle: ModuleType, ctx: CheckContext
) -> None:
    """Fraction slices respect the cooldown: inside it, the next liquidation is the whole position.

    A position above the slice threshold is first reduced by one slice; if margin breaks again
    within the cooldown, the venue sends the entire position (Hyperliquid), so two slices are
    never closer than the cooldown.

    Source: perp-mechanics.md §7(a) Hyperliquid, §7(d) cooldown semantics, §13.10
    """
    inst = await _partial_symbol(venue, LiquidationVariant.FRACTION)
    policy = inst.liquidation
    symbol = inst.symbol
    mark = (await venue.mark(symbol)).mark_price
    # Twice the slice threshold: after one slice the rest is still above it, so only the
    # cooldown decides whether the next step is a slice or the whole position.
    qty = (policy.slice_min_notional * 2 / mark).quantize(inst.step_size)
    account = await control.create_account(qty * mark / 10, label="sliced long")
    await account.place_order(market(symbol, Side.BUY, qty))
    drive = await drive_index(
        venue,
        symbol,
        mark * Decimal("0.85"),
        updates=600,
        accounts={"trader": account},
        stop=lambda d: d.frames[-1].positions["trader"] is None,
    )
    triggers = [e.trigger_mark for _, e in drive.events("trader") if e.trigger_mark is not None]
    if triggers:
        drive.focus = (min(triggers) * Decimal("0.995"), max(triggers) * Decimal("1.005"))
    ctx.add_evidence("drive", _steps_chart(drive, "Slices and the cooldown"))
    events = drive.events("trader")
    ctx.require(
        "the position was liquidated",
        bool(events),
        expected="steps",
        observed=f"{len(events)} step(s)",
    )
    if not events:
        return
    frame_index, first = events[0]
    pos = need(drive.before(frame_index).positions["trader"], "the position before the first slice")
    trigger = need(first.trigger_mark, "trigger")
    slice_qty = oracle.step_close_quantity(
        position_input(pos, inst.brackets),
        price=trigger,
        equity=_equity(
            pos, drive.before(frame_index).balances["trader"].cross_wallet_balance, trigger
        ),
        policy=policy,
        step_size=inst.step_size,
        isolated=False,
    )
    ctx.equal(
        "first step is one slice", expected=slice_qty, observed=first.quantity, unit=inst.base_asset
    )
    last_slice = first.time_ms if first.partial else None
    for frame_index, event in events[1:]:
        size = abs(need(drive.before(frame_index).positions["trader"], "position").quantity)
        if last_slice is not None and event.time_ms - last_slice < policy.cooldown_ms:
            ctx.equal(
                f"step {event.time_ms - drive.start_ms} ms in, {event.time_ms - last_slice} ms "
                "after a slice: the whole position",
                expected=size,
                observed=event.quantity,
                unit=inst.base_asset,
            )
        elif event.partial:
            last_slice = event.time_ms


async def _gap(venue: Venue, control: VenueControl, symbol: str, factor: Decimal) -> None:
    """Thin the book and step the index by ``factor`` in one update (a gap)."""
    index = (await venue.mark(symbol)).index_price
    await control.set_depth_profile(symbol, "thin")
    await control.set_price_path(symbol, PricePath(points=((0, index * factor),), name="gap"))
    await control.advance(venue.rules.mark_update_interval_ms)


@check("PLQ-007", needs=NEEDS)
async def test_liquidation_never_fills_beyond_bankruptcy(
    venue: Venue, account: Account, control: VenueControl, oracle: ModuleType, ctx: CheckContext
) -> None:
    """Liquidation fills are never worse for the trader than the bankruptcy price.

    Liquidation orders carry the bankruptcy price as their limit; when the market gaps through
    it, whatever the book cannot take at that price is taken over at it (or deleveraged at it).

    Source: perp-mechanics.md §7(d) price bound, §8(d) user-facing price, §13.7
    """
    inst = (await venue.instruments())[BTC]
    pos = await open_isolated(account, BTC, Side.BUY, Decimal("0.05"), leverage=20)
    quote = oracle.isolated_liquidation(position_input(pos, inst.brackets), pos.isolated_wallet)
    bankruptcy = need(quote.bankruptcy_price, "an oracle bankruptcy price")
    since = venue.clock.now_ms()
    await _gap(venue, control, BTC, Decimal("0.88"))
    fills = [f for f in await account.fills(BTC, since_ms=since) if f.liquidation]
    ctx.require(
        "the gap liquidated the position",
        bool(fills) and await position_of(account, BTC) is None,
        expected="liquidation fills, flat",
        observed=f"{len(fills)} fill(s)",
    )
    if fills:
        ctx.at_least(
            "lowest liquidation fill price",
            limit=bankruptcy,
            observed=min(f.price for f in fills),
            tolerance=inst.tick_size,
            unit="USDT",
        )
        ctx.add_evidence(
            "fills",
            {
                "type": "table",
                "title": "Liquidation fills",
                "columns": ["price", "qty", "bankruptcy price"],
                "rows": [[str(f.price), str(f.qty), str(bankruptcy)] for f in fills],
            },
        )


@check("PLQ-008", needs=NEEDS | {Capability.READ_INSURANCE, Capability.CONTROL_INSURANCE})
async def test_insurance_fund_then_adl_in_ranking_order(
    venue: Venue, control: VenueControl, oracle: ModuleType, ctx: CheckContext
) -> None:
    """The insurance fund takes what the book cannot; only when it cannot does ADL run, by rank.

    With a funded insurance fund a gap through the bankruptcy price is absorbed by the fund (its
    balance moves by fee - shortfall) and nobody is deleveraged. With the fund empty, the
    remainder closes against opposite positions at the bankruptcy price, highest ADL rank first
    (PnL% x effective leverage), for exactly the liquidated quantity.

    Source: perp-mechanics.md §8(a), §9(a) ranking, §9(d) invariants, §13.7
    """
    inst = (await venue.instruments())[BTC]
    shorts = {}
    for name, leverage, qty in (
        ("short 5x", 5, "0.02"),
        ("short 20x", 20, "0.02"),
        ("short 10x", 10, "0.03"),
    ):
        acct = await control.create_account(Decimal(5_000), label=name)
        await open_isolated(acct, BTC, Side.SELL, Decimal(qty), leverage)
        shorts[name] = acct
    # Case A: a funded insurance fund absorbs a gap through a long's bankruptcy price.
    long_a = await control.create_account(Decimal(5_000), label="long, fund funded")
    await open_isolated(long_a, BTC, Side.BUY, Decimal("0.05"), leverage=20)
    fund_before = (await venue.insurance_fund()).balance
    await _gap(venue, control, BTC, Decimal("0.93"))
    ev_a = await long_a.liquidations(BTC)
    adl_a = await venue.adl_events(BTC)
    ctx.require(
        "case funded: the long was liquidated",
        bool(ev_a),
        expected="liquidated",
        observed=f"{len(ev_a)} step(s)",
    )
    ctx.require(
        "case funded: nobody was auto-deleveraged",
        not adl_a,
        expected="no ADL",
        observed=f"{len(adl_a)} ADL fill(s)",
    )
    fee = sum((e.fee or Decimal(0) for e in ev_a), Decimal(0))
    shortfall = sum((e.shortfall or Decimal(0) for e in ev_a), Decimal(0))
    ctx.at_least(
        "case funded: a shortfall was absorbed",
        limit=venue.rules.atomic_unit,
        observed=shortfall,
        unit="USDT",
    )
    ctx.equal(
        "case funded: fund change = fee - shortfall",
        expected=fee - shortfall,
        observed=(await venue.insurance_fund()).balance - fund_before,
        tolerance=venue.rules.atomic_unit,
        unit="USDT",
    )
    if adl_a:
        return  # the counterparties were already deleveraged: case B has nothing left to rank
    # Case B: the fund is empty; a new long gaps through its bankruptcy price.
    long_b = await control.create_account(Decimal(5_000), label="long, fund empty")
    pos_b = await open_isolated(long_b, BTC, Side.BUY, Decimal("0.05"), leverage=20)
    await control.set_insurance_fund(Decimal(0))
    before = {n: need(await position_of(a, BTC), f"{n}'s position") for n, a in shorts.items()}
    await _gap(venue, control, BTC, Decimal("0.85"))
    gap_mark = (await venue.mark(BTC)).mark_price

    def rank(p: Position) -> Decimal:
        upnl = p.quantity * (gap_mark - p.entry_price)
        rank_value: Decimal = oracle.adl_rank(
            upnl=upnl,
            entry_notional=abs(p.quantity) * p.entry_price,
            notional=abs(p.quantity) * gap_mark,
            equity=p.isolated_wallet + upnl,
        )
        return rank_value

    expected_order = sorted(before, key=lambda n: -rank(before[n]))
    ev_b = await long_b.liquidations(BTC)
    bankruptcy = need(ev_b[0].bankruptcy_price if ev_b else None, "long B's bankruptcy price")
    fills: list[tuple[int, str, Decimal, Decimal]] = []
    for name, acct in shorts.items():
        fills += [
            (f.trade_id, name, f.qty, f.price) for f in await acct.fills(BTC) if f.liquidation
        ]
    fills.sort()
    order = [name for _, name, _, _ in fills]
    ctx.require(
        "case empty fund: opposite positions deleveraged in ranking order",
        bool(order) and order == expected_order[: len(order)],
        expected=" > ".join(expected_order),
        observed=" > ".join(order) or "none",
    )
    ctx.equal(
        "case empty fund: deleveraged quantity = the liquidated position",
        expected=abs(pos_b.quantity),
        observed=sum((q for _, _, q, _ in fills), Decimal(0)),
        unit=inst.base_asset,
    )
    for _, name, _, price in fills:
        ctx.equal(
            f"case empty fund: {name} closed at the bankruptcy price",
            expected=bankruptcy,
            observed=price,
            tolerance=inst.tick_size,
            unit="USDT",
        )
    ctx.add_evidence(
        "adl",
        {
            "type": "table",
            "title": "Auto-deleveraging fills",
            "columns": ["trade id", "account", "qty", "price", "oracle rank"],
            "rows": [[str(t), n, str(q), str(p), f"{rank(before[n]):.6f}"] for t, n, q, p in fills],
        },
    )


@check("PLQ-009", needs=NEEDS | {Capability.READ_STREAMS})
async def test_each_partial_step_is_its_own_stream_event(
    venue: Venue, control: VenueControl, oracle: ModuleType, ctx: CheckContext
) -> None:
    """Each partial-liquidation step is observable on the streams as it happens, on its own.

    Through a tier step-down to full closure, every step of the venue's liquidation record is
    one ``forceOrder`` event with that step's side and quantity at that step's time (none merged,
    none held back), and the account's stream shows, after each step, the position the step
    left: the remaining size and so the band position (tier) it left the account in.

    Source: perp-mechanics.md §7(a) step-down, §7(d), §13.4; binance-usdm-surface.md
    (forceOrder, ACCOUNT_UPDATE)
    """
    inst = await _partial_symbol(venue, LiquidationVariant.TIER_STEP_DOWN)
    trader, start = await _big_isolated(control, venue, inst)
    stream = await venue.stream([inst.symbol], account=trader)
    try:
        await stream.drain()
        since = venue.clock.now_ms()
        drive = await _drive_to_close(venue, oracle, inst, trader, start)
        events = await stream.drain()
    finally:
        await stream.close()
    steps = await trader.liquidations(inst.symbol, since_ms=since)
    forced = select(events, LiquidationOrderEvent, lambda e: e.symbol == inst.symbol)
    ctx.require(
        "the position went through several steps (precondition)",
        len(steps) >= 3,
        expected=">= 3 steps",
        observed=f"{len(steps)} step(s)",
    )
    ctx.equal(
        "forceOrder events = liquidation steps",
        expected=Decimal(len(steps)),
        observed=Decimal(len(forced)),
    )
    size = abs(start.quantity)
    rows = []
    for i, step in enumerate(steps):
        size -= step.quantity
        seen = forced[i] if i < len(forced) else None
        # The account's position as its stream showed it after this step (and before the next).
        upto = steps[i + 1].time_ms if i + 1 < len(steps) else None
        shown = [
            abs(p.quantity)
            for e in select(events, AccountEvent)
            if e.time_ms >= step.time_ms and (upto is None or e.time_ms < upto)
            for p in e.positions
            if p.symbol == inst.symbol
        ]
        left = shown[-1] if shown else None
        mark = step.trigger_mark or Decimal(0)
        tier = oracle.bracket_for(inst.brackets, size * mark).bracket if size and mark else 0
        rows.append(
            [
                str(step.time_ms),
                str(step.quantity),
                str(seen.quantity) if seen else "missing",
                str(size),
                str(left) if left is not None else "not shown",
                str(tier),
            ]
        )
        ctx.require(
            f"step {i + 1}: its own forceOrder (quantity and time)",
            seen is not None and (seen.quantity, seen.time_ms) == (step.quantity, step.time_ms),
            expected=f"{step.quantity} at {step.time_ms}",
            observed=f"{seen.quantity} at {seen.time_ms}" if seen else "no event",
        )
        ctx.require(
            f"step {i + 1}: the account's stream shows the size it left (tier {tier})",
            left == size,
            expected=f"{size} {inst.base_asset}",
            observed=f"{left} {inst.base_asset}" if left is not None else "no ACCOUNT_UPDATE",
        )
    band = _band_marks(oracle, start, inst, start.isolated_wallet, isolated=True)
    ctx.add_evidence(
        "drive", _steps_chart(drive, "Tier step-down, watched on the streams", {"trader": band})
    )
    ctx.add_evidence(
        "steps on the streams",
        {
            "type": "table",
            "title": "Liquidation steps: the venue's record against the streams",
            "columns": ["time", "closed", "forceOrder qty", "left", "stream shows", "tier left"],
            "rows": rows,
        },
    )
