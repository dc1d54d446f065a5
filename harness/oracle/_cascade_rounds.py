"""The cascade oracle's round-by-round scan (perp-mechanics.md §14; steps 1-5 of the prediction
described in :mod:`harness.oracle.cascade`): the pools (cross wallets and isolated positions),
the shocked mark model, the per-round liquidation plans, the book walk and the settlement of
each forced close. :func:`~harness.oracle.cascade.predict_cascade` runs it (``_run``).

Private to :mod:`harness.oracle.cascade`; independent of the simulator like the rest of the
oracle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from harness.cascade import AccountExposure
from harness.model import LiquidationVariant, MarginMode, Side
from harness.oracle.cascade_types import (
    CascadePrediction,
    CascadeRound,
    MarketInput,
    PredictedStep,
    Shock,
)
from harness.oracle.liquidation import PositionInput, PositionSide
from harness.oracle.partial import step_close_quantity
from harness.oracle.tiers import maintenance_margin

ZERO = Decimal(0)
_CROSS = ""  # the pool key's symbol part for an account's cross wallet


# ---------------------------------------------------------------------------------- prediction
@dataclass(slots=True)
class _Leg:
    qty: Decimal  # signed
    entry: Decimal


@dataclass(slots=True)
class _Pool:
    account_id: str
    symbol: str  # "" for the cross wallet
    wallet: Decimal
    legs: dict[str, _Leg]
    first_round: int | None = None
    generation: int = 0
    causes: frozenset[str] = frozenset()  # accounts whose forced flow crossed this pool

    @property
    def isolated(self) -> bool:
        return self.symbol != _CROSS

    @property
    def key(self) -> str:
        return f"{self.account_id}/{self.symbol or 'cross'}"


@dataclass(slots=True)
class _Symbol:
    market: MarketInput
    index: Decimal
    p1: Decimal
    p2: Decimal
    last: Decimal | None
    bids: list[list[Decimal]]
    asks: list[list[Decimal]]

    def mark(self) -> Decimal:
        low, high = min(self.p1, self.p2), max(self.p1, self.p2)
        if self.last is None:
            return low
        return min(max(self.last, low), high)


def _pools(population: Iterable[AccountExposure]) -> list[_Pool]:
    pools: list[_Pool] = []
    for acct in population:
        if acct.exempt:
            continue
        cross: dict[str, _Leg] = {}
        for pos in acct.positions:
            if pos.quantity == 0:
                continue
            leg = _Leg(qty=pos.quantity, entry=pos.entry_price)
            if pos.margin_mode is MarginMode.ISOLATED:
                pools.append(
                    _Pool(
                        account_id=acct.account_id,
                        symbol=pos.symbol,
                        wallet=pos.isolated_wallet,
                        legs={pos.symbol: leg},
                    )
                )
            else:
                cross[pos.symbol] = leg
        if cross:
            pools.append(
                _Pool(
                    account_id=acct.account_id,
                    symbol=_CROSS,
                    wallet=acct.cross_wallet_balance,
                    legs=cross,
                )
            )
    return pools


def _shocked(market: MarketInput, move: Decimal, basis_samples: int) -> _Symbol:
    snap, book = market.mark, market.book
    ratio = 1 + move
    index = snap.index_price * ratio
    tau = Decimal(max(snap.next_funding_time_ms - snap.time_ms, 0))
    p1 = index * (1 + snap.last_funding_rate * tau / Decimal(snap.funding_interval_ms))
    basis = (book.mid - snap.index_price) if book.mid is not None else ZERO
    ma = basis + (basis * ratio - basis) / Decimal(max(basis_samples, 1))
    return _Symbol(
        market=market,
        index=index,
        p1=p1,
        p2=index + ma,
        last=snap.last_price,
        bids=[[p * ratio, q] for p, q in book.bids],
        asks=[[p * ratio, q] for p, q in book.asks],
    )


def _equity_and_mm(
    pool: _Pool, marks: Mapping[str, Decimal], markets: Mapping[str, MarketInput]
) -> tuple[Decimal, Decimal]:
    equity, mm = pool.wallet, ZERO
    for symbol, leg in pool.legs.items():
        price = marks[symbol]
        equity += leg.qty * (price - leg.entry)
        mm += maintenance_margin(markets[symbol].instrument.brackets, abs(leg.qty) * price)
    return equity, mm


def _walk(levels: list[list[Decimal]], qty: Decimal) -> tuple[Decimal, Decimal, Decimal | None]:
    """Take ``qty`` off ``levels`` (best first, mutated): filled, notional, worst price."""
    filled, notional, worst = ZERO, ZERO, None
    while levels and filled < qty:
        price, available = levels[0]
        take = min(available, qty - filled)
        filled += take
        notional += take * price
        worst = price
        if take >= available:
            levels.pop(0)
        else:
            levels[0][1] = available - take
    return filled, notional, worst


@dataclass(slots=True)
class _Plan:
    pool: _Pool
    symbol: str
    qty: Decimal  # absolute, to close
    bankruptcy: Decimal
    mark: Decimal


def _plan(
    pool: _Pool,
    marks: Mapping[str, Decimal],
    markets: Mapping[str, MarketInput],
    sliced: set[str],
) -> _Plan:
    equity, mm = _equity_and_mm(pool, marks, markets)
    symbol = max(pool.legs, key=lambda s: (abs(pool.legs[s].qty) * marks[s], s))
    leg = pool.legs[symbol]
    inst = markets[symbol].instrument
    price = marks[symbol]
    size = abs(leg.qty)
    own_mm = maintenance_margin(inst.brackets, size * price)
    position = PositionInput(
        symbol=symbol,
        side=PositionSide.LONG if leg.qty > 0 else PositionSide.SHORT,
        quantity=size,
        entry_price=leg.entry,
        brackets=inst.brackets,
    )
    close = step_close_quantity(
        position,
        price=price,
        equity=equity,
        policy=inst.liquidation,
        step_size=inst.step_size,
        isolated=pool.isolated,
        others_mm=mm - own_mm,
        fee_rate=inst.liquidation_fee_rate or ZERO,
        cooling=pool.account_id in sliced,
    )
    collateral = pool.wallet + sum(
        (o.qty * (marks[s] - o.entry) for s, o in pool.legs.items() if s != symbol), ZERO
    )
    sign = 1 if leg.qty > 0 else -1
    return _Plan(
        pool=pool,
        symbol=symbol,
        qty=close,
        bankruptcy=leg.entry - collateral / (sign * size),
        mark=price,
    )


def _apply(
    plan: _Plan,
    price: Decimal | None,
    book_share: Decimal,
    fee_rate: Decimal,
    marks: Mapping[str, Decimal],
) -> Decimal:
    """Close ``plan`` (``book_share`` of it through the book at ``price``, the rest at its
    bankruptcy price); returns the shortfall the insurance fund covers."""
    pool = plan.pool
    leg = pool.legs[plan.symbol]
    sign = 1 if leg.qty > 0 else -1
    size = abs(leg.qty)
    booked = plan.qty * book_share
    taken = plan.qty - booked
    fill = price if price is not None else plan.bankruptcy
    realized = sign * booked * (fill - leg.entry) + sign * taken * (plan.bankruptcy - leg.entry)
    fee = booked * fill * fee_rate
    remaining = size - plan.qty
    shortfall = ZERO
    if pool.isolated:
        release = pool.wallet * plan.qty / size
        left = release + realized
        fee = min(fee, max(left, ZERO))
        shortfall = max(-(left - fee), ZERO)
        pool.wallet -= release
    else:
        pool.wallet += realized
        upnl = sum(
            (o.qty * (marks[s] - o.entry) for s, o in pool.legs.items() if s != plan.symbol), ZERO
        ) + (sign * remaining * (marks[plan.symbol] - leg.entry))
        fee = min(fee, max(pool.wallet + upnl, ZERO))
        pool.wallet -= fee
        if remaining == 0 and len(pool.legs) == 1 and pool.wallet < 0:
            shortfall = -pool.wallet
            pool.wallet = ZERO
    # The fund's takeover at the bankruptcy price is a loss only if it sells below it.
    if taken and price is not None and sign * (price - plan.bankruptcy) < 0:
        shortfall += taken * abs(price - plan.bankruptcy)
    if remaining == 0:
        del pool.legs[plan.symbol]
    else:
        leg.qty = sign * remaining
    return shortfall


def _run(
    population: Sequence[AccountExposure],
    markets: Mapping[str, MarketInput],
    shock: Shock,
    basis_samples: int,
    non_strict: bool,
) -> CascadePrediction:
    symbols = {s: _shocked(m, shock.moves.get(s, ZERO), basis_samples) for s, m in markets.items()}
    pools = _pools(population)
    for pool in pools:
        missing = sorted(set(pool.legs) - set(markets))
        if missing:
            msg = f"{pool.key}: no market given for {', '.join(missing)}"
            raise ValueError(msg)
    shocked = {s: st.mark() for s, st in symbols.items()}
    rounds: list[CascadeRound] = []
    sliced: set[str] = set()
    volume = dict.fromkeys(symbols, ZERO)
    shortfall = dict.fromkeys(symbols, ZERO)
    moved_by: dict[str, set[str]] = {}  # symbol -> accounts whose flow moved it last round
    while len(rounds) < 100:
        marks = {s: st.mark() for s, st in symbols.items()}
        number = len(rounds) + 1
        plans = []
        for pool in pools:
            if not pool.legs:
                continue
            equity, mm = _equity_and_mm(pool, marks, markets)
            if not (equity <= mm if non_strict else equity < mm):
                continue
            if pool.first_round is None:
                pool.first_round = number
                parents = [
                    p
                    for p in pools
                    if any(p.account_id in moved_by.get(s, ()) for s in pool.legs)
                    and p.account_id != pool.account_id
                ]
                pool.generation = 1 + max((p.generation for p in parents), default=0)
                pool.causes = frozenset(p.account_id for p in parents)
            plans.append(_plan(pool, marks, markets, sliced))
        if not plans:
            break
        flows: dict[tuple[str, Side], list[_Plan]] = {}
        for plan in plans:
            side = Side.SELL if plan.pool.legs[plan.symbol].qty > 0 else Side.BUY
            flows.setdefault((plan.symbol, side), []).append(plan)
        forced = dict.fromkeys(symbols, ZERO)
        moved_by = {}
        for (symbol, side), members in sorted(flows.items()):
            st = symbols[symbol]
            inst = st.market.instrument
            total = sum((m.qty for m in members), ZERO)
            levels = st.bids if side is Side.SELL else st.asks
            filled, notional, worst = _walk(levels, total)
            price = notional / filled if filled else None
            share = filled / total if total else ZERO
            for m in members:
                before = abs(m.pool.legs[symbol].qty)
                fee_rate = inst.liquidation_fee_rate or ZERO
                shortfall[symbol] += _apply(m, price, share, fee_rate, marks)
                if inst.liquidation.variant is LiquidationVariant.FRACTION and m.qty < before:
                    sliced.add(m.pool.account_id)  # a slice starts the account's cooldown
            forced[symbol] += total
            volume[symbol] += total
            if worst is not None:
                st.last = worst
                moved_by[symbol] = {m.pool.account_id for m in members}
        rounds.append(
            CascadeRound(
                number=number,
                marks=marks,
                steps=tuple(
                    PredictedStep(
                        account_id=p.pool.account_id,
                        pool=p.pool.symbol,
                        position_symbol=p.symbol,
                        close_qty=p.qty,
                        mark=p.mark,
                        round=number,
                        generation=p.pool.generation,
                        causes=p.pool.causes,
                    )
                    for p in plans
                ),
                forced_qty=forced,
                moved=frozenset(moved_by),
                last={s: st.last for s, st in symbols.items() if st.last is not None},
            )
        )
    first: dict[str, tuple[int, int]] = {}
    for pool in pools:
        if pool.first_round is not None:
            known = first.get(pool.account_id)
            here = (pool.first_round, pool.generation)
            first[pool.account_id] = here if known is None else min(known, here)
    order = sorted(first, key=lambda a: (first[a][0], a))
    return CascadePrediction(
        rounds=tuple(rounds),
        shocked_marks=shocked,
        final_marks={s: st.mark() for s, st in symbols.items()},
        liquidated=tuple(order),
        generation={a: first[a][1] for a in order},
        forced_volume=volume,
        shortfall=shortfall,
    )
