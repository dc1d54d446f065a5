"""The engine's reported liquidation price equals the independent oracle's (Ledger vs oracle).

Source: perp-mechanics.md §6(a), Binance one-way formula with the tier at the LP notional.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from adapters.sim.engine.accounts import AccountState, PositionState, bracket_at
from harness.model import MarginMode
from harness.oracle import (
    PositionInput,
    PositionSide,
    cross_liquidation,
    isolated_liquidation,
)
from tests.sim.simkit import BTC, ETH, make_engine

D = Decimal
TOLERANCE = D("1e-6")
ENGINE = make_engine(seed=11)
BTC_BRACKETS = ENGINE.instruments[BTC].brackets
ETH_BRACKETS = ENGINE.instruments[ETH].brackets


def _dec(lo: str, hi: str, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=D(lo), max_value=D(hi), places=places, allow_nan=False, allow_infinity=False
    )


def _close(engine_lp: Decimal | None, oracle_lp: Decimal | None) -> bool:
    if engine_lp is None or oracle_lp is None:
        return engine_lp is oracle_lp
    return abs(engine_lp - oracle_lp) <= TOLERANCE


def _input(symbol: str, pos: PositionState, mark: Decimal | None = None) -> PositionInput:
    return PositionInput(
        symbol=symbol,
        side=PositionSide.LONG if pos.qty > 0 else PositionSide.SHORT,
        quantity=abs(pos.qty),
        entry_price=pos.entry,
        brackets=BTC_BRACKETS if symbol == BTC else ETH_BRACKETS,
        mark_price=mark,
    )


def _account(wallet: Decimal, *positions: PositionState) -> AccountState:
    acct = AccountState(account_id="probe", label="probe", cross_wallet=wallet)
    for pos in positions:
        acct.positions[pos.symbol] = pos
    return acct


@given(
    qty=_dec("0.001", "2", 3),
    entry=_dec("20000", "100000", 1),
    long=st.booleans(),
    leverage=st.integers(min_value=1, max_value=100),
    extra=_dec("0", "5000", 8),
)
@example(qty=D("0.85"), entry=D(60000), long=True, leverage=20, extra=D(0))  # tier 2 -> 1
@example(qty=D("0.8"), entry=D(60000), long=False, leverage=20, extra=D(0))  # tier 1 -> 2
@example(qty=D(2), entry=D(30000), long=True, leverage=1, extra=D(0))  # no LP above 0
def test_isolated_liquidation_price_equals_the_oracle(
    qty: Decimal, entry: Decimal, long: bool, leverage: int, extra: Decimal
) -> None:
    notional = qty * entry
    margin = (notional / leverage).quantize(D("0.00000001"), rounding=ROUND_CEILING) + extra
    pos = PositionState(
        symbol=BTC,
        margin_mode=MarginMode.ISOLATED,
        leverage=leverage,
        qty=qty if long else -qty,
        entry=entry,
        isolated_wallet=margin,
    )
    engine_lp = ENGINE.ledger.liquidation_price(_account(D(0), pos), pos)
    quote = isolated_liquidation(_input(BTC, pos), margin)
    assert _close(engine_lp, quote.liquidation_price), (engine_lp, quote)


def test_the_examples_cross_a_tier_between_entry_and_liquidation() -> None:
    for qty, long, entry_tier, lp_tier in ((D("0.85"), True, 2, 1), (D("0.8"), False, 1, 2)):
        pos = PositionState(
            symbol=BTC,
            margin_mode=MarginMode.ISOLATED,
            leverage=20,
            qty=qty if long else -qty,
            entry=D(60000),
            isolated_wallet=qty * 3000,
        )
        lp = ENGINE.ledger.liquidation_price(_account(D(0), pos), pos)
        assert lp is not None
        assert bracket_at(BTC_BRACKETS, qty * D(60000)).bracket == entry_tier
        assert bracket_at(BTC_BRACKETS, qty * lp).bracket == lp_tier


@given(
    btc_qty=_dec("0.001", "2", 3),
    btc_entry=_dec("40000", "80000", 1),
    btc_long=st.booleans(),
    eth_qty=_dec("0.001", "20", 3),
    eth_offset=_dec("-300", "300", 2),
    eth_long=st.booleans(),
    wallet=_dec("0", "30000", 8),
)
@example(
    btc_qty=D("0.85"),
    btc_entry=D(60000),
    btc_long=True,
    eth_qty=D(2),
    eth_offset=D(-150),
    eth_long=False,
    wallet=D(3000),
)
def test_cross_liquidation_prices_with_a_second_symbol_equal_the_oracle(
    btc_qty: Decimal,
    btc_entry: Decimal,
    btc_long: bool,
    eth_qty: Decimal,
    eth_offset: Decimal,
    eth_long: bool,
    wallet: Decimal,
) -> None:
    btc_mark, eth_mark = ENGINE.mark(BTC), ENGINE.mark(ETH)
    btc = PositionState(
        symbol=BTC,
        margin_mode=MarginMode.CROSS,
        leverage=20,
        qty=btc_qty if btc_long else -btc_qty,
        entry=btc_entry,
    )
    eth = PositionState(
        symbol=ETH,
        margin_mode=MarginMode.CROSS,
        leverage=20,
        qty=eth_qty if eth_long else -eth_qty,
        entry=eth_mark + eth_offset,
    )
    acct = _account(wallet, btc, eth)
    quotes = cross_liquidation([_input(BTC, btc, btc_mark), _input(ETH, eth, eth_mark)], wallet)
    for pos, quote in zip((btc, eth), quotes, strict=True):
        engine_lp = ENGINE.ledger.liquidation_price(acct, pos)
        assert _close(engine_lp, quote.liquidation_price), (pos.symbol, engine_lp, quote)


def test_an_isolated_position_ignores_the_accounts_other_positions() -> None:
    iso = PositionState(
        symbol=BTC,
        margin_mode=MarginMode.ISOLATED,
        leverage=10,
        qty=D("0.5"),
        entry=D(60000),
        isolated_wallet=D(3000),
    )
    eth = PositionState(
        symbol=ETH, margin_mode=MarginMode.CROSS, leverage=20, qty=D(-5), entry=D(2000)
    )
    alone = ENGINE.ledger.liquidation_price(_account(D(0), iso), iso)
    together = ENGINE.ledger.liquidation_price(_account(D(50), iso, eth), iso)
    assert alone == together
