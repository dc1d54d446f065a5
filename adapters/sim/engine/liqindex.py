"""Which accounts a liquidation scan (or the cascade early warning) must look at.

The scan's rule is per account (engine/liquidation.py): each isolated position, then the cross
bucket, at the trigger price. Evaluating every account at every scan makes a mark update cost
O(accounts); this index keeps, per symbol, the prices at which an account *could* need a look, so
a scan evaluates only the accounts whose prices the mark has reached. The evaluation itself is the
scan's own code, run over the candidates in account-table order, so the steps (their set, order
and sizes) are those of the linear scan: the index only has to be *sound*, never leave out an
account the linear scan would step. tests/sim/test_liquidation_index.py checks that against the
linear scan on random populations.

Keys (decimals, widened by a relative 1e-9 so that no rounding can hide a crossing):

* **Isolated position** of quantity ``q``, entry ``E``, wallet ``W``: in tier ``k`` (notional
  ``[cap_{k-1}, cap_k)``) a long is at or below maintenance where
  ``W + q(P - E) <= q P mmr_k - cum_k``, i.e. ``P <= (qE - W - cum_k) / (q(1 - mmr_k))``. The key
  is the highest price of that set over all tiers (with tiers from the cum recurrence the set is
  one interval and the first tier holding its end gives it): above it the long is not at
  maintenance, whatever the mark, until the position or its wallet changes. A short mirrors it.
* **Cross bucket**: its slack ``s = equity - maintenance`` at the current marks ``P0``. A move of
  symbol ``j``'s mark by ``d`` changes the bucket's PnL by at most ``q_j |d|`` and its
  maintenance by at most ``q_j mmr_max |d| + J`` (``J``: the sum of the jumps of the tier table,
  0 for tables from the cum recurrence). While every mark stays within
  ``b_j = (0.999 s' / n - J) / (q_j (1 + mmr_max))`` of ``P0_j`` (``n`` symbols, ``s'`` the
  slack less the reserve below), the slack stays positive. The band edges are the keys (with
  continuous tiers only the adverse one: a long's slack grows with its mark). A scan that finds
  a mark outside re-evaluates the account, and the band is rebuilt around the new marks; a bucket
  at or below maintenance is a candidate at every scan.
* **Reserve**: a key is built for its wallet less a quarter of the slack at the current mark, so
  that wallet *decreases* up to that reserve (funding payments, fees) leave it valid; the state
  objects count the decreases and only report the account once they exceed it (accounts.Watch).
  Wallet increases only move an account away from maintenance.

Keys live in two heaps per symbol (the highest "look at or below" key on top of one, the lowest
"look at or above" key on top of the other), with lazy deletion: re-keying an account bumps its
version, which makes its old entries stale, and pushes the new ones; a query pops the entries
the mark has reached. So a re-key costs a push, a scan costs the candidates it finds. An entry is
one integer: the key in units of 1e-8 rounded *down* (a heap pops at or below a bound, so a
smaller key pops no later: still sound), then the account's ordinal and the version, packed in
that order below it (so entries order by key first); a third of the memory of a tuple holding a
decimal. Stale entries are compacted away once they are an eighth of the live ones.

Every change of a position, an exemption, or a wallet past its reserve reaches the index through
the state objects' watchers (engine/accounts.py): the account is re-keyed before the next query.
A change of a symbol's tier table (dynamic parameters) rebuilds everything. The index is off (the
engine scans linearly) under the defects that change the trigger rule (``liquidate-on-last``,
``maintenance-halved-in-trigger``, ``cascade-ignores-shared-collateral``), for tier tables it
cannot bound (caps not ascending, a rate of 1 or more) and when :attr:`Engine.reference` asks for
the reference algorithms.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from math import floor as _floor
from typing import TYPE_CHECKING

from adapters.sim.engine.accounts import AccountState, PositionState, Watch
from harness.model import Bracket, MarginMode

if TYPE_CHECKING:
    from adapters.sim.engine.exchange import Engine

__all__ = ["DISQUALIFYING_DEFECTS", "TriggerIndex"]

#: Defects under which the scan's rule is not the one the keys bound.
DISQUALIFYING_DEFECTS = frozenset(
    {"liquidate-on-last", "maintenance-halved-in-trigger", "cascade-ignores-shared-collateral"}
)
_REL = Decimal("1e-9")  # relative widening of every key
_ROUNDING = Decimal("1e-20")  # allowance for roundings, relative to the magnitude of the terms
_BUDGET = Decimal("0.999")  # share of a cross bucket's slack its bands may use
_QUARTER = Decimal("0.25")  # share of a slack kept as the reserve for wallet decreases
_INF = Decimal("Infinity")
ZERO = Decimal(0)
ONE = Decimal(1)
ISOLATED = MarginMode.ISOLATED

# Heap entries: ints, (key << _LOW) | (ordinal << _BITS) | version, with the key in units of
# 10**-_UNITS rounded down (_pack); the "falls" heap stores -key (a max-heap).
_Entry = int
_UNITS = 8
_BITS = 40  # ordinals and versions stay below 2**40
_LOW = 2 * _BITS
_MASK = (1 << _BITS) - 1
_LOW_MASK = (1 << _LOW) - 1
_FAR = 1 << 200  # stands for an infinite key (beyond any mark in units)
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)  # scaling never rounds


def _units(value: Decimal) -> int:
    """``value`` in integer units of 1e-8, rounded down (infinities far beyond any price)."""
    try:
        return _floor(value.scaleb(_UNITS, _EXACT))  # floor of a Decimal: an int, exactly
    except OverflowError:  # an infinity (a NaN raises ValueError: never a key)
        return _FAR if value > 0 else -_FAR


def _pack(key: Decimal, ordinal: int, version: int) -> _Entry:
    if ordinal > _MASK or version > _MASK:
        msg = f"ordinal {ordinal} or version {version} beyond 2**{_BITS}"
        raise OverflowError(msg)
    return (_units(key) << _LOW) | (ordinal << _BITS) | version


class _Table:
    """A symbol's tier table as ``(low, high, mmr, cum)`` rows, with the constants the keys
    need."""

    __slots__ = ("brackets", "jumps", "lipschitz", "regular", "tiers", "usable")

    def __init__(self, brackets: tuple[Bracket, ...]) -> None:
        self.brackets = brackets
        tiers: list[tuple[Decimal, Decimal, Decimal, Decimal]] = []
        low = ZERO
        usable = bool(brackets)
        jumps = ZERO
        for i, b in enumerate(brackets):
            mmr, cum = b.maint_margin_ratio, b.cum
            high = _INF if i == len(brackets) - 1 else b.notional_cap
            if not 0 <= mmr < 1 or high <= low:
                usable = False
            tiers.append((low, high, mmr, cum))
            if i:
                prev = brackets[i - 1]
                cap = prev.notional_cap
                jumps += abs(
                    (cap * b.maint_margin_ratio - b.cum)
                    - (cap * prev.maint_margin_ratio - prev.cum)
                )
            low = high
        self.tiers = tiers
        self.usable = usable
        # Continuous maintenance (the cum recurrence): equity - maintenance is monotone in the
        # price, so a position's set of prices at maintenance is one interval.
        self.regular = jumps == 0
        self.jumps = jumps * (1 + _REL) + (_REL if jumps else ZERO)
        self.lipschitz = 1 + max((t[2] for t in tiers), default=ZERO)

    def maint(self, notional: Decimal) -> Decimal:
        for _, high, mmr, cum in self.tiers:
            if notional < high:
                return notional * mmr - cum
        return _INF  # unreachable: the last tier is unbounded


def _isolated_key(
    table: _Table, pos: PositionState, mark: Decimal
) -> tuple[bool, Decimal | None, Decimal]:
    """``(falls, key, reserve)`` of an isolated position.

    A long needs a look at a price <= key, a short at >= key (None: never). The key is built for
    the wallet less ``reserve`` (a quarter of the position's slack at ``mark``), so that wallet
    decreases up to the reserve leave it valid (accounts.Watch).
    """
    qty, wallet, entry = pos._qty, pos._iso, pos._entry
    q = abs(qty)
    notional = q * entry
    maint = table.maint(q * mark)
    slack = wallet + qty * (mark - entry) - maint - table.jumps
    slack -= _ROUNDING * (abs(wallet) + q * (mark + entry) + abs(maint))
    reserve = _QUARTER * slack if slack > 0 else ZERO
    wallet -= reserve
    if qty > 0:
        base = notional - wallet
        best = -_INF
        denom = q
        for low, high, mmr, cum in table.tiers:
            denom = q * (1 - mmr)
            lp = (base - cum) / denom
            if table.regular:
                if lp < high / q:
                    best = lp
                    break
            elif lp >= low / q * (1 - _REL) - _REL:
                best = max(best, min(lp, high / q))
        if best == -_INF:
            return True, None, reserve
        scale = (notional + abs(wallet) + abs(base)) / denom
        return True, best + _REL * (abs(best) + scale) + _REL, reserve
    base = wallet + notional
    best = _INF
    denom = q
    for low, high, mmr, cum in table.tiers:
        denom = q * (1 + mmr)
        up = (base + cum) / denom
        if table.regular:
            if up < high / q:
                best = max(up, low / q)
                break
        elif up <= high / q * (1 + _REL) + _REL:
            best = min(best, max(up, low / q))
    if best == _INF:
        return False, None, reserve
    scale = (notional + abs(wallet) + abs(base)) / denom
    return False, best - _REL * (abs(best) + scale) - _REL, reserve


class TriggerIndex:
    """Candidate accounts for the liquidation scan and the cascade early warning."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: Where wallets and positions report changes (accounts.Watch).
        self.watch = Watch()
        self.dirty = self.watch.dirty
        self.pending: list[AccountState] = []  # created by the engine, not yet registered
        self._accounts: list[AccountState] = []  # by ordinal
        self._version: list[int] = []  # by ordinal: entries of older versions are stale
        self._live = 0  # entries of current versions, over all heaps
        self._counts: list[int] = []  # by ordinal: its entries of the current version
        self._rebase: set[AccountState] = set()
        self._falls: dict[str, list[_Entry]] = {}
        self._rises: dict[str, list[_Entry]] = {}
        self._always: set[int] = set()
        self._tables: dict[str, _Table] = {}
        self._built = False
        self._pushes = 0  # entries pushed since the heaps were last measured
        self._fixed_off = bool(engine.defects & DISQUALIFYING_DEFECTS)
        self._seen: object = None  # the instruments table the tables were checked against
        self._seen_version: int | None = None
        self._usable = False

    # ------------------------------------------------------------------ state
    @property
    def registered(self) -> int:
        """Accounts whose changes are watched."""
        return len(self._accounts)

    @property
    def active(self) -> bool:
        """Whether scans use the index (else they go over every account)."""
        if self._fixed_off:
            return False
        engine = self.engine
        if engine.reference:
            self._built = False  # changes go unseen meanwhile: rebuild when back
            return False
        instruments = engine.instruments
        version = getattr(instruments, "version", None)
        if version is None or instruments is not self._seen or version != self._seen_version:
            self._usable = self._tables_usable()
            self._seen, self._seen_version = instruments, version
        return self._usable

    def _tables_usable(self) -> bool:
        usable = True
        for symbol, inst in self.engine.instruments.items():
            table = self._tables.get(symbol)
            if table is None or table.brackets is not inst.brackets:
                table = self._tables[symbol] = _Table(inst.brackets)
                self._built = False
            usable = usable and table.usable
        return usable

    def _register(self) -> None:
        accounts = self.engine.accounts
        known = len(self._accounts)
        if len(accounts) == known + len(self.pending) and all(
            accounts.get(a.account_id) is a for a in self.pending
        ):
            fresh: Iterable[AccountState] = self.pending
        else:  # accounts put into the table directly: register in table order
            seen = {id(a) for a in self._accounts}
            fresh = [a for a in accounts.values() if id(a) not in seen]
        for acct in fresh:
            acct.ordinal = len(self._accounts)
            self._accounts.append(acct)
            self._version.append(0)
            self._counts.append(0)
            acct.watch(self.watch)
            self.dirty.add(acct)
        self.pending = []

    def sync(self) -> None:
        """Fold in new accounts and every change since the last call (the index must be active)."""
        if not self.active:
            msg = "the trigger index is off (reference, a defect or tier tables it cannot bound)"
            raise RuntimeError(msg)
        if self.pending or len(self.engine.accounts) != len(self._accounts):
            self._register()
        if not self._built:
            self._falls = {s: [] for s in self.engine.instruments}
            self._rises = {s: [] for s in self.engine.instruments}
            self._always.clear()
            self._rebase.clear()
            self._live = 0
            self._counts = [0] * len(self._accounts)
            self.dirty.update(self._accounts)
            self._built = True
        dirty = self.dirty
        if dirty:
            for acct in dirty:
                self._rekey(acct)
            dirty.clear()
        if self._rebase:
            for acct in self._rebase:
                self._rekey(acct)
            self._rebase.clear()
        if self._pushes > 1024:  # look at the stale entries now and then
            self._pushes = 0
            size = sum(map(len, self._falls.values())) + sum(map(len, self._rises.values()))
            if self._live + self._live // 8 + 256 < size:
                self._compact()

    def rebase(self, accounts: Iterable[AccountState]) -> None:
        """Rebuild these accounts' cross bands around the marks of the next query."""
        self._rebase.update(accounts)

    def _compact(self) -> None:
        version = self._version
        for heaps in (self._falls, self._rises):
            for symbol, heap in heaps.items():
                kept = [e for e in heap if version[(e >> _BITS) & _MASK] == e & _MASK]
                heapq.heapify(kept)
                heaps[symbol] = kept

    # ------------------------------------------------------------------ keys
    def _rekey(self, acct: AccountState) -> None:
        ordinal = acct.ordinal
        version = self._version[ordinal] + 1
        self._version[ordinal] = version
        self._live -= self._counts[ordinal]
        self._always.discard(ordinal)
        acct._drain = ZERO
        acct._reserve = _INF  # no cross bucket: cross wallet decreases cannot matter
        count = 0
        if acct._exempt:
            for pos in acct.positions.values():
                pos._drain, pos._reserve = ZERO, _INF
        else:
            prices = self.engine.prices
            cross: list[PositionState] = []
            for pos in acct.positions.values():
                pos._drain = ZERO
                if pos._qty == 0:
                    pos._reserve = _INF
                    continue
                if pos._mode is not ISOLATED:
                    pos._reserve = _INF
                    cross.append(pos)
                    continue
                mark = prices[pos.symbol].mark
                falls, key, reserve = _isolated_key(self._tables[pos.symbol], pos, mark)
                pos._reserve = reserve * (1 - _REL)
                if key is not None:
                    if falls:
                        heapq.heappush(self._falls[pos.symbol], _pack(-key, ordinal, version))
                    else:
                        heapq.heappush(self._rises[pos.symbol], _pack(key, ordinal, version))
                    count += 1
            if cross:
                added = self._bands(acct, cross, version)
                if added is None:
                    acct._reserve = ZERO
                    self._always.add(ordinal)
                else:
                    count += added
        self._counts[ordinal] = count
        self._live += count
        self._pushes += count

    def _bands(self, acct: AccountState, cross: list[PositionState], version: int) -> int | None:
        """Push the bucket's bands; how many entries (None: look at it every scan).

        A quarter of the bucket's slack is kept as the reserve for cross wallet decreases, the
        bands share the rest.
        """
        prices = self.engine.prices
        tables = self._tables
        equity = acct._cross
        magnitude = abs(equity)
        mm = ZERO
        rows: list[tuple[Decimal, Decimal, _Table, list[_Entry], list[_Entry]]] = []
        for pos in cross:
            symbol = pos.symbol
            table = tables[symbol]
            qty, mark = pos._qty, prices[symbol].mark
            q = abs(qty)
            equity += qty * (mark - pos._entry)
            maint = table.maint(q * mark)
            mm += maint + table.jumps  # a tier boundary within rounding: take the jump too
            magnitude += q * (mark + abs(pos._entry)) + abs(maint)
            rows.append((qty, mark, table, self._falls[symbol], self._rises[symbol]))
        slack = equity - mm - _ROUNDING * magnitude
        if not slack > 0:
            return None
        reserve = _QUARTER * slack
        budget = _BUDGET * (slack - reserve) / len(cross)
        ordinal = acct.ordinal
        pushes: list[tuple[list[_Entry], _Entry]] = []
        for qty, mark, table, falls, rises in rows:
            band = (budget - table.jumps) / (abs(qty) * table.lipschitz)
            if not band > _REL * mark:
                return None
            widen = _REL * mark + _REL
            # With continuous maintenance a long's slack only falls with its mark (a short's
            # only rises): one edge is enough. Otherwise both.
            if qty > 0 or not table.regular:
                pushes.append((falls, _pack(-(mark - band + widen), ordinal, version)))
            if qty < 0 or not table.regular:
                pushes.append((rises, _pack(mark + band - widen, ordinal, version)))
        for heap, entry in pushes:
            heapq.heappush(heap, entry)
        acct._reserve = reserve * (1 - _REL)
        return len(pushes)

    # ------------------------------------------------------------------ queries
    def candidates(self, shift: Decimal = ZERO) -> list[AccountState]:
        """Accounts to evaluate, in account-table order.

        ``shift`` 0: for the liquidation scan at the current marks; the caller evaluates each
        candidate and must then :meth:`rebase` them all. ``shift`` > 0: for the cascade early
        warning, which moves each position's mark by that fraction against it (the index is
        left as it was).
        """
        self.sync()
        found = set(self._always)
        prices = self.engine.prices
        version = self._version
        keep = bool(shift)
        for symbol, falls in self._falls.items():
            mark = prices[symbol].mark
            low = mark * (1 - shift) * (1 - _REL) if shift else mark
            high = mark * (1 + shift) * (1 + _REL) if shift else mark
            found.update(_pop_reached(falls, -low, version, keep))
            found.update(_pop_reached(self._rises[symbol], high, version, keep))
        accounts = self._accounts
        return [accounts[i] for i in sorted(found)]


def _pop_reached(heap: list[_Entry], bound: Decimal, version: list[int], keep: bool) -> list[int]:
    """Ordinals of the current entries with key <= ``bound``, popped (pushed back if ``keep``).

    An entry's key is in units rounded down (:func:`_pack`): ``key <= bound`` exactly when it is
    at most the bound's units rounded down, i.e. when the entry is at most ``top``.
    """
    top = (_units(bound) << _LOW) | _LOW_MASK
    out: list[int] = []
    live: list[_Entry] = []
    while heap and heap[0] <= top:
        entry = heapq.heappop(heap)
        ordinal = (entry >> _BITS) & _MASK
        if version[ordinal] == entry & _MASK:
            out.append(ordinal)
            live.append(entry)
    if keep:
        for entry in live:
            heapq.heappush(heap, entry)
    return out
