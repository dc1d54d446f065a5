"""Engine state as the venue publishes it: positions and the balance, rounded for the wire.

One source for both front ends, the in-process venue (``SimAccount.positions`` / ``balance``)
and the HTTP server (``positionRisk``, ``account``, ``balance``): unrealized PnL, liquidation
price, notional and margins rounded half-even to the balance unit (1e-8 USDT); entry price, mark
and wallets as the engine holds them. ``tests/server/test_parity.py`` compares the two.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from adapters.sim.engine.accounts import AccountState, OrderRecord, PositionState
from adapters.sim.engine.exchange import Engine
from harness.model import Balance, MarginMode, Position, Side

__all__ = [
    "balance_view",
    "leverage_of",
    "margin_mode_of",
    "open_order_margin",
    "open_order_notional",
    "position_view",
]

ZERO = Decimal(0)


def position_view(engine: Engine, acct: AccountState, pos: PositionState) -> Position:
    """A position with its published figures (``SimAccount.positions``)."""
    ledger = engine.ledger
    fig = ledger.figures(pos)
    lp = ledger.liquidation_price(acct, pos)

    def wire(value: Decimal) -> Decimal:
        return engine.round_balance(value, ROUND_HALF_EVEN)

    return Position(
        symbol=pos.symbol,
        quantity=pos.qty,
        entry_price=pos.entry,
        mark_price=engine.mark(pos.symbol),
        unrealized_pnl=wire(fig.upnl),
        liquidation_price=None if lp is None else wire(lp),
        margin_mode=pos.margin_mode,
        isolated_wallet=pos.isolated_wallet,
        leverage=pos.leverage,
        notional=wire(fig.notional),
        maint_margin=wire(fig.maint_margin),
        initial_margin=wire(fig.initial_margin),
    )


def balance_view(engine: Engine, acct: AccountState) -> Balance:
    """The margin asset's balance (``SimAccount.balance``)."""
    ledger = engine.ledger
    upnl = ZERO
    mm = ZERO
    im = ledger.open_order_margin(acct)
    for pos in acct.open_positions():
        fig = ledger.figures(pos)
        upnl += fig.upnl
        mm += fig.maint_margin
        im += fig.initial_margin
    wallet = acct.wallet_total()
    return Balance(
        asset="USDT",
        wallet_balance=wallet,
        cross_wallet_balance=acct.cross_wallet,
        unrealized_pnl=engine.round_balance(upnl),
        margin_balance=engine.round_balance(wallet + upnl),
        available_balance=engine.round_balance(ledger.available_balance(acct)),
        initial_margin=engine.round_balance(im),
        maint_margin=engine.round_balance(mm),
    )


def leverage_of(engine: Engine, acct: AccountState, symbol: str) -> int:
    pos = acct.positions.get(symbol)
    if pos is not None:
        return pos.leverage
    return acct.leverages.get(symbol, engine.config.default_leverage)


def margin_mode_of(acct: AccountState, symbol: str) -> MarginMode:
    pos = acct.positions.get(symbol)
    if pos is not None:
        return pos.margin_mode
    return acct.margin_modes.get(symbol, MarginMode.CROSS)


def _open_orders(acct: AccountState, symbol: str) -> list[OrderRecord]:
    return [
        r
        for r in acct.orders.values()
        if r.symbol == symbol and r.status in ("NEW", "PARTIALLY_FILLED") and r.price
    ]


def open_order_margin(engine: Engine, acct: AccountState, symbol: str) -> Decimal:
    """Initial margin the symbol's open orders hold (reduce-only orders hold none)."""
    notional = sum(
        (
            (r.orig_qty - r.executed_qty) * (r.price or ZERO)
            for r in _open_orders(acct, symbol)
            if not r.reduce_only
        ),
        ZERO,
    )
    return engine.round_balance(notional / leverage_of(engine, acct, symbol))


def open_order_notional(acct: AccountState, symbol: str, side: Side) -> Decimal:
    """Notional of the symbol's open orders on ``side`` (``bidNotional``/``askNotional``)."""
    return sum(
        (
            (r.orig_qty - r.executed_qty) * (r.price or ZERO)
            for r in _open_orders(acct, symbol)
            if r.side == side.value
        ),
        ZERO,
    )
