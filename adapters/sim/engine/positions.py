"""A position's state and the watcher its changes report to (perp-mechanics.md §4, §6).

:class:`PositionState` is one symbol's signed position of one account (one-way mode);
:class:`Watch` is where positions and accounts report the changes the liquidation trigger
index (engine/liqindex.py) must see. Positions are created by ``AccountState.position``
(engine/accounts.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from harness.model import MarginMode

if TYPE_CHECKING:
    from adapters.sim.engine.accounts import AccountState

__all__ = ["PositionState", "Watch"]

ZERO = Decimal(0)


class Watch:
    """Where the state objects report changes (engine/liqindex.py reads it).

    ``version`` counts every change of a watched field. ``dirty`` collects the accounts whose
    change may matter to the liquidation trigger: any change of a position's quantity, entry or
    margin mode or of an account's exemption, and a wallet *decrease* once the decreases since the
    account was last keyed exceed the reserve its keys were built with (``_reserve``; a wallet
    increase only moves an account away from maintenance).
    """

    __slots__ = ("dirty", "version")

    def __init__(self) -> None:
        self.dirty: set[AccountState] = set()
        self.version = 0


class PositionState:
    """One symbol's position of one account (signed ``qty``; one-way mode).

    ``qty``, ``entry``, ``isolated_wallet`` and ``margin_mode`` are watched: setting one tells the
    owning account's watcher (the liquidation trigger index, engine/liqindex.py), so any change
    made anywhere reaches the index. Positions are created by :meth:`AccountState.position`.
    """

    __slots__ = (
        "_drain",
        "_entry",
        "_iso",
        "_mode",
        "_owner",
        "_qty",
        "_reserve",
        "leverage",
        "symbol",
        "update_ms",
    )

    def __init__(
        self,
        symbol: str,
        margin_mode: MarginMode,
        leverage: int,
        qty: Decimal = ZERO,
        entry: Decimal = ZERO,
        isolated_wallet: Decimal = ZERO,
        update_ms: int = 0,
        *,
        owner: AccountState | None = None,
    ) -> None:
        self.symbol = symbol
        self._mode = margin_mode
        self.leverage = leverage
        self._qty = qty
        self._entry = entry
        self._iso = isolated_wallet
        self.update_ms = update_ms
        self._owner = owner
        self._drain = ZERO  # isolated wallet decreases since keyed (see Watch)
        self._reserve = ZERO

    def _touched(self) -> None:
        owner = self._owner
        if owner is not None:
            watch = owner._watch
            if watch is not None:
                watch.version += 1
                watch.dirty.add(owner)

    @property
    def qty(self) -> Decimal:
        return self._qty

    @qty.setter
    def qty(self, value: Decimal) -> None:
        self._qty = value
        self._touched()

    @property
    def entry(self) -> Decimal:
        return self._entry

    @entry.setter
    def entry(self, value: Decimal) -> None:
        self._entry = value
        self._touched()

    @property
    def isolated_wallet(self) -> Decimal:
        return self._iso

    @isolated_wallet.setter
    def isolated_wallet(self, value: Decimal) -> None:
        old = self._iso
        self._iso = value
        owner = self._owner
        if owner is not None:
            watch = owner._watch
            if watch is not None:
                watch.version += 1
                if value < old:
                    self._drain += old - value
                    if self._drain > self._reserve:
                        watch.dirty.add(owner)

    @property
    def margin_mode(self) -> MarginMode:
        return self._mode

    @margin_mode.setter
    def margin_mode(self, value: MarginMode) -> None:
        self._mode = value
        self._touched()

    @property
    def sign(self) -> int:
        qty = self._qty
        return 1 if qty > 0 else -1 if qty < 0 else 0

    def upnl(self, price: Decimal) -> Decimal:
        return self._qty * (price - self._entry)

    def _key(self) -> tuple[object, ...]:
        return (
            self.symbol,
            self._mode,
            self.leverage,
            self._qty,
            self._entry,
            self._iso,
            self.update_ms,
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, PositionState)  # noqa: S101 - narrowed by the class check
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value (like a dataclass)

    def __repr__(self) -> str:
        return (
            f"PositionState(symbol={self.symbol!r}, margin_mode={self._mode!r}, "
            f"leverage={self.leverage!r}, qty={self._qty!r}, entry={self._entry!r}, "
            f"isolated_wallet={self._iso!r}, update_ms={self.update_ms!r})"
        )
