"""The predicted liquidation cascade of a shock (perp-mechanics.md §14; DESIGN.md guide point 9).

Independent of the simulator: it reads only what a venue reports (every account's wallets and
positions, books, marks, instruments) and the published rules (§2 mark, §4 tiers, §6 trigger,
§7 step sizes). :mod:`harness.oracle.exposure` builds the graphs around it; latency is in
:mod:`harness.oracle.latency`.

**Prediction** (:func:`predict_cascade`), in rounds like a venue's liquidation scan:

1. The shock moves each symbol's index: ``I' = I·(1 + move)``. The book is assumed to move with
   it (every level's price scaled by ``I'/I``: the venue's makers requote around the index).
2. The mark follows the venue's published rule (§2 V1): ``median(P1, P2, last)`` with
   ``P1 = I'·(1 + F·τ/T)``, and ``P2 = I' + MA(basis)`` where the moving average of
   ``basis_samples`` samples had held ``mid − I`` before the shock (a settled market) and takes
   one new sample from the moved book. ``last`` stays at its pre-shock value until forced flow
   trades.
3. Each round, every pool (an account's cross wallet with its cross positions, or one isolated
   position) at or below maintenance at the current marks (non-strict, §6) takes one step sized
   by the symbol's published rule (§7, :func:`~harness.oracle.partial.step_close_quantity`); a
   cross pool reduces its largest position first. Shared cross collateral is what makes a fall
   of one symbol liquidate positions in another.
4. The round's forced closes, summed per symbol and side, walk the (remaining) book; the last
   price becomes the worst level reached, which moves the mark within ``[P1, P2]``. The part the
   book fills is realized at the walk's average price, the rest at each pool's bankruptcy price
   (the insurance fund's takeover), less the liquidation fee.
5. Rounds repeat until no pool crosses. An account's **generation** is 1 if the shock alone
   crossed it, else one more than the highest generation among the accounts whose forced flow,
   in the round before, moved a symbol it holds; the cascade's **depth** is the highest
   generation.

Margins near the line are fragile to any error in the mark model, so :func:`predict_cascade`
also runs the prediction with the post-shock index ``tolerance_bps`` higher and lower: an
account liquidated in some of the three runs but not all is ``borderline``.

:func:`move_for_mark` inverts the mark model: the index move that puts the post-shock mark at a
given price (to aim a shock just past a liquidation price).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from harness.cascade import AccountExposure
from harness.model import (
    BookSnapshot,
    Instrument,
    LiquidationVariant,
    MarginMode,
    MarkSnapshot,
    Position,
    Side,
)
from harness.oracle._exact import exact, require_finite
from harness.oracle.liquidation import PositionInput, PositionSide
from harness.oracle.partial import step_close_quantity
from harness.oracle.tiers import maintenance_margin

__all__ = [
    "CascadePrediction",
    "CascadeRound",
    "MarketInput",
    "PredictedStep",
    "Shock",
    "move_for_mark",
    "positions_of",
    "predict_cascade",
]

ZERO = Decimal(0)
_BPS = Decimal(10_000)
_CROSS = ""  # the pool key's symbol part for an account's cross wallet


@dataclass(frozen=True, slots=True, kw_only=True)
class Shock:
    """Relative index moves per symbol (``-0.05``: the index falls 5 %), applied at once."""

    moves: Mapping[str, Decimal]

    def __post_init__(self) -> None:
        for symbol, move in self.moves.items():
            if require_finite(f"moves[{symbol}]", move) <= -1:
                msg = f"moves[{symbol}]={move} must be > -1 (a price stays positive)"
                raise ValueError(msg)

    @classmethod
    def correlated(
        cls, leader: str, move: Decimal, betas: Mapping[str, Decimal] | None = None
    ) -> Shock:
        """``leader`` moves by ``move``, each follower by ``beta × move``."""
        moves = {leader: move}
        for symbol, beta in (betas or {}).items():
            moves[symbol] = beta * move
        return cls(moves=moves)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketInput:
    """One symbol as the venue shows it before the shock."""

    instrument: Instrument
    book: BookSnapshot
    mark: MarkSnapshot

    @property
    def symbol(self) -> str:
        return self.instrument.symbol


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictedStep:
    """One liquidation step: pool ``(account_id, symbol)`` (symbol ``""``: the cross wallet)
    closes ``close_qty`` of ``position_symbol`` at trigger mark ``mark``."""

    account_id: str
    pool: str
    position_symbol: str
    close_qty: Decimal
    mark: Decimal
    round: int
    generation: int
    causes: frozenset[str] = frozenset()  # whose forced flow, the round before, crossed it


@dataclass(frozen=True, slots=True, kw_only=True)
class CascadeRound:
    """One scan: the marks it ran at, its steps, the forced flow, the symbols whose last price
    that flow moved and where it left ``last``."""

    number: int
    marks: Mapping[str, Decimal]
    steps: tuple[PredictedStep, ...]
    forced_qty: Mapping[str, Decimal]
    moved: frozenset[str]  # symbols whose last price the round's flow moved
    last: Mapping[str, Decimal]


@dataclass(frozen=True, slots=True, kw_only=True)
class CascadePrediction:
    """The predicted cascade of one shock.

    ``liquidated`` lists accounts in the order they are first liquidated (by round; within a
    round by account id); ``borderline`` those whose fate changes within the tolerance;
    ``generation`` maps each liquidated account to its generation; ``shortfall`` is what the
    book and the collateral did not cover (the insurance fund's expected usage), per symbol.
    """

    rounds: tuple[CascadeRound, ...]
    shocked_marks: Mapping[str, Decimal]
    final_marks: Mapping[str, Decimal]
    liquidated: tuple[str, ...]
    generation: Mapping[str, int]
    borderline: frozenset[str] = frozenset()
    forced_volume: Mapping[str, Decimal] = field(default_factory=dict)
    shortfall: Mapping[str, Decimal] = field(default_factory=dict)

    @property
    def depth(self) -> int:
        """The highest generation (0: nobody liquidated)."""
        return max(self.generation.values(), default=0)

    @property
    def certain(self) -> frozenset[str]:
        """Liquidated accounts that are not borderline."""
        return frozenset(self.liquidated) - self.borderline


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


@exact
def predict_cascade(
    population: Sequence[AccountExposure],
    markets: Mapping[str, MarketInput],
    shock: Shock,
    *,
    basis_samples: int = 30,
    non_strict: bool = True,
    tolerance_bps: Decimal = Decimal(5),
) -> CascadePrediction:
    """Predict which accounts ``shock`` liquidates, in which order and generation.

    Args:
        population: every account that could be liquidated, as the venue reports it (exempt
            accounts are skipped).
        markets: each symbol the population holds: instrument, book and mark before the shock.
        shock: the index moves.
        basis_samples: the venue's mark basis window (``VenueRules.mark_basis_samples``).
        non_strict: liquidation at ``equity <= maintenance`` (else ``<``), as the venue rules.
        tolerance_bps: accounts whose fate differs with the post-shock index this much higher
            or lower are reported ``borderline``.

    Returns:
        The prediction at the shock as given, with ``borderline`` filled in.
    """
    if require_finite("tolerance_bps", tolerance_bps) < 0:
        msg = f"tolerance_bps={tolerance_bps} must be >= 0"
        raise ValueError(msg)
    main = _run(population, markets, shock, basis_samples, non_strict)
    if tolerance_bps == 0:
        return main
    fates = [frozenset(main.liquidated)]
    for sign in (1, -1):
        nudged = Shock(
            moves={
                s: (1 + shock.moves.get(s, ZERO)) * (1 + sign * tolerance_bps / _BPS) - 1
                for s in markets
            }
        )
        fates.append(
            frozenset(_run(population, markets, nudged, basis_samples, non_strict).liquidated)
        )
    every = frozenset.intersection(*fates)
    some = frozenset.union(*fates)
    return CascadePrediction(
        rounds=main.rounds,
        shocked_marks=main.shocked_marks,
        final_marks=main.final_marks,
        liquidated=main.liquidated,
        generation=main.generation,
        borderline=some - every,
        forced_volume=main.forced_volume,
        shortfall=main.shortfall,
    )


@exact
def move_for_mark(market: MarketInput, target: Decimal, *, basis_samples: int = 30) -> Decimal:
    """The index move after which the mark (before any forced flow) is ``target``, by the same
    mark model as :func:`predict_cascade` (bisection; the mark rises with the index)."""
    if require_finite("target", target) <= 0:
        msg = f"target={target} must be > 0"
        raise ValueError(msg)
    low, high = Decimal("-0.99"), Decimal(10)
    for _ in range(200):
        mid = (low + high) / 2
        if _shocked(market, mid, basis_samples).mark() < target:
            low = mid
        else:
            high = mid
    return high


def positions_of(population: Iterable[AccountExposure]) -> list[Position]:
    """Every position of ``population`` (to sum open interest from)."""
    return [p for acct in population for p in acct.positions]
