"""Liquidation and bankruptcy prices against worked and published numbers (perp-mechanics.md §6).

Published Binance USDⓈ-M example (cross and isolated), reproduced to 0.01:
* Binance FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts"
  (binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93; its worked example survives in
  the scraped copy midiamania.com/summer-of-lkfkp/binance-futures-liquidation-formula):
  WB 1 535 443.01, long 109.488 BTCUSDT @ 32 481.98 (mark 31 967.27, mmr 2.5 %, cum 16 300),
  long 3 683.979 ETHUSDT @ 1 456.84 (mark 1 335.18, mmr 10 %, cum 135 365).
* freqtrade tests/exchange/test_binance.py::test_liquidation_price_binance encodes the same
  example: isolated 1 114.78 (ETH) and 18 778.73 (BTC numbers), cross 1 153.26 (ETH) and
  26 316.89 (BTC).

Bracket tables (tests/fixtures/binance_brackets_2021_faq_example.json): BTCUSDT is the table of
Binance's announcement "Updates to Leverage and Margin Tiers of Binance Futures Contracts
(2021-03-18)" (cum by the §4 recurrence; it reproduces the FAQ's 1 300 and 16 300). ETHUSDT is a
reconstruction [REC]: floors and rates recalled for that period, not found in a stored source;
its recurrence lands exactly on the example's published cum 135 365 at 2 M–5 M (mmr 10 %), the
only bracket the example touches, so only that row is evidenced.
"""

from __future__ import annotations

import ast
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest

from harness.errors import NoSolution
from harness.model import Bracket
from harness.oracle import (
    PositionInput,
    PositionSide,
    cross_liquidation,
    equity_at,
    isolated_liquidation,
    liquidation_price_at_tier,
    maintenance_at,
    maintenance_margin,
    parse_binance_brackets,
)

D = Decimal
CENT = D("0.01")
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TABLES_2021 = parse_binance_brackets(
    (FIXTURES / "binance_brackets_2021_faq_example.json").read_bytes()
)
TABLES_2024 = parse_binance_brackets((FIXTURES / "binance_brackets_btcusdt.json").read_bytes())
LONG, SHORT = PositionSide.LONG, PositionSide.SHORT

FAQ_WALLET = D("1535443.01")
FAQ_BTC = PositionInput(
    symbol="BTCUSDT",
    side=LONG,
    quantity=D("109.488"),
    entry_price=D("32481.98"),
    brackets=TABLES_2021["BTCUSDT"],
    mark_price=D("31967.27"),
)
FAQ_ETH = PositionInput(
    symbol="ETHUSDT",
    side=LONG,
    quantity=D("3683.979"),
    entry_price=D("1456.84"),
    brackets=TABLES_2021["ETHUSDT"],
    mark_price=D("1335.18"),
)


def _one(bracket_rows: list[tuple[str, str, str, str]]) -> tuple[Bracket, ...]:
    """Brackets from (floor, cap, mmr, cum) rows, leverage 1/(2·mmr) rounded down."""
    return tuple(
        Bracket(
            bracket=i + 1,
            initial_leverage=max(1, int(1 / (2 * D(mmr))) if D(mmr) else 125),
            notional_floor=D(floor),
            notional_cap=D(cap),
            maint_margin_ratio=D(mmr),
            cum=D(cum),
        )
        for i, (floor, cap, mmr, cum) in enumerate(bracket_rows)
    )


def _near(value: Decimal | None, published: str) -> bool:
    """Within 0.01 of a published two-decimal figure (venues round or truncate to the cent)."""
    return value is not None and abs(value - D(published)) < CENT


def _same(value: Decimal | None, expected: Decimal) -> bool:
    """Equal to 40 decimal places: the oracle divides in a 50-digit context, the test in 28."""
    return value is not None and abs(value - expected) < D("1e-20")


def test_binance_faq_cross_example_btc_is_26316_89() -> None:
    btc, eth = cross_liquidation([FAQ_BTC, FAQ_ETH], FAQ_WALLET)
    assert _near(btc.liquidation_price, "26316.89")
    assert btc.maint_margin_ratio == D("0.025")
    assert btc.cum == D(16_300)
    assert _near(eth.liquidation_price, "1153.26")
    assert eth.maint_margin_ratio == D("0.1")
    assert eth.cum == D(135_365)


def test_binance_faq_cross_example_other_contract_terms() -> None:
    # the FAQ page prints TMM₁ for each leg: "Maintenance Margin of BTCUSDT = 71200.81144
    # (3500032.458 × 2.50 % − 16300)" and "Maintenance Margin of ETHUSDT = 356,512.508
    # (4918775.081 × 10.00 % − 135365)"
    btc_mm = maintenance_margin(FAQ_BTC.brackets, FAQ_BTC.quantity * D("31967.27"))
    eth_mm = maintenance_margin(FAQ_ETH.brackets, FAQ_ETH.quantity * D("1335.18"))
    assert abs(btc_mm - D("71200.81144")) < D("0.0001")
    assert abs(eth_mm - D("356512.508")) < D("0.001")


def test_binance_faq_printed_upnl_explains_its_26310_23_variant() -> None:
    # The FAQ prints UPNL₁ = −447 482.100 for the ETH leg, but 3 683.979 × (1 335.18 − 1 456.84)
    # = −448 192.88514. The printed value gives 26 310.23; the arithmetic of the page's own
    # inputs gives 26 316.89 (what freqtrade pins and what the oracle computes). We pin both and
    # treat −447 482.100 as a typo on the page (perp-mechanics.md §15.4).
    computed_upnl = FAQ_ETH.quantity * (D("1335.18") - FAQ_ETH.entry_price)
    assert computed_upnl == D("-448192.88514")
    printed = liquidation_price_at_tier(
        LONG,
        FAQ_BTC.quantity,
        FAQ_BTC.entry_price,
        FAQ_WALLET,
        D("0.025"),
        D(16_300),
        other_maintenance=D("356512.508"),
        other_upnl=D("-447482.100"),
    )
    assert _near(printed, "26310.23")
    consistent = liquidation_price_at_tier(
        LONG,
        FAQ_BTC.quantity,
        FAQ_BTC.entry_price,
        FAQ_WALLET,
        D("0.025"),
        D(16_300),
        other_maintenance=D("356512.508"),
        other_upnl=computed_upnl,
    )
    assert _near(consistent, "26316.89")


@pytest.mark.parametrize(
    ("position", "published", "bracket"),
    [(FAQ_ETH, "1114.78", 6), (FAQ_BTC, "18778.73", 4)],
    ids=["eth-1114.78", "btc-18778.73"],
)
def test_binance_faq_isolated_examples(
    position: PositionInput, published: str, bracket: int
) -> None:
    # freqtrade test_liquidation_price_binance, isolated rows: the whole wallet is the margin
    quote = isolated_liquidation(position, FAQ_WALLET)
    assert _near(quote.liquidation_price, published)
    assert quote.bracket is not None
    assert quote.bracket.bracket == bracket


def test_freqtrade_rows_with_stated_tiers_match_the_one_way_formula() -> None:
    # freqtrade passes mm_ratio/maintenance_amt explicitly; the plain formula gives its numbers
    eth = liquidation_price_at_tier(
        LONG, D("3683.979"), D("1456.84"), FAQ_WALLET, D("0.10"), D("135365")
    )
    btc = liquidation_price_at_tier(
        LONG, D("109.488"), D("32481.98"), FAQ_WALLET, D("0.025"), D("16300")
    )
    assert _near(eth, "1114.78")
    assert _near(btc, "18778.73")


def test_isolated_liquidation_price_uses_tier_at_liquidation_notional() -> None:
    # Long 10 BTC @ 62 000 (notional 620 000, tier 3 at entry) with 30 000 margin: the price falls,
    # so the notional at LP is below 600 000 and tier 2 applies (§4(d), §6(d) "tier fixed point").
    btc = TABLES_2024["BTCUSDT"]
    position = PositionInput(
        symbol="BTCUSDT", side=LONG, quantity=D(10), entry_price=D(62_000), brackets=btc
    )
    quote = isolated_liquidation(position, D(30_000))
    assert quote.bracket is not None
    assert quote.bracket.bracket == 2
    assert quote.liquidation_price is not None
    assert btc[1].contains(D(10) * quote.liquidation_price)
    # (30 000 + 50 − 620 000)/(10 × 0.005 − 10) = 59 291.457…, notional 592 914.57 < 600 000
    assert _near(quote.liquidation_price, "59291.46")
    entry_tier = liquidation_price_at_tier(LONG, D(10), D(62_000), D(30_000), D("0.0065"), D(950))
    # the entry tier (the §12 bug) gives 59 290.39, whose own notional is not in tier 3
    assert _near(entry_tier, "59290.39")
    assert not btc[2].contains(10 * entry_tier)


def test_cross_liquidation_price_uses_tier_at_liquidation_notional() -> None:
    # Short 10 BTC @ 58 000 (tier 2 at entry, 580 000): the price rises, the notional at LP
    # crosses 600 000 and tier 3 applies; an ETH long at its mark contributes to the cross wallet.
    btc, eth = TABLES_2024["BTCUSDT"], TABLES_2024["ETHUSDT"]
    short = PositionInput(
        symbol="BTCUSDT", side=SHORT, quantity=D(10), entry_price=D(58_000), brackets=btc
    )
    other = PositionInput(
        symbol="ETHUSDT",
        side=LONG,
        quantity=D(10),
        entry_price=D(3000),
        brackets=eth,
        mark_price=D(2900),
    )
    quote, _ = cross_liquidation([short, other], D(40_000))
    assert quote.bracket is not None
    assert quote.bracket.bracket == 3
    assert quote.liquidation_price is not None
    assert quote.liquidation_price * 10 >= 600_000
    # WB − TMM₁ + UPNL₁ = 40 000 − 29 000 × 0.4 % + 10 × (−100) = 38 884
    expected = (D(38_884) + 950 + 580_000) / (D(10) * D("0.0065") + 10)
    assert _same(quote.liquidation_price, expected)


def test_a_liquidation_price_exactly_on_a_floor_belongs_to_the_upper_bracket() -> None:
    # Long 10 @ 65 000 with WB = 10 × 5 000 + 600 000 × 0.65 % − 950 = 52 950 has its root exactly
    # at 60 000, i.e. notional 600 000 = floor of tier 3 = cap of tier 2. Both lines meet there
    # (MM is continuous); [floor, cap) puts it in tier 3 and only there.
    btc = TABLES_2024["BTCUSDT"]
    position = PositionInput(
        symbol="BTCUSDT", side=LONG, quantity=D(10), entry_price=D(65_000), brackets=btc
    )
    quote = isolated_liquidation(position, D(52_950))
    assert quote.liquidation_price == D(60_000)
    assert quote.bracket is not None
    assert quote.bracket.bracket == 3


def test_equity_equals_maintenance_at_the_faq_liquidation_prices() -> None:
    quotes = cross_liquidation([FAQ_BTC, FAQ_ETH], FAQ_WALLET)
    for quote in quotes:
        assert quote.liquidation_price is not None
        prices = {quote.symbol: quote.liquidation_price}
        gap = equity_at([FAQ_BTC, FAQ_ETH], FAQ_WALLET, prices) - maintenance_at(
            [FAQ_BTC, FAQ_ETH], prices
        )
        assert abs(gap) < D("1e-35")


def test_a_long_that_survives_price_zero_has_no_liquidation_price() -> None:
    # Binance shows "--" when LP ≤ 0: a 1× long with margin = notional never hits maintenance.
    btc = TABLES_2024["BTCUSDT"]
    position = PositionInput(
        symbol="BTCUSDT", side=LONG, quantity=D(1), entry_price=D(60_000), brackets=btc
    )
    quote = isolated_liquidation(position, D(60_000))
    assert quote.liquidation_price is None
    assert quote.bracket is None
    assert quote.maint_margin_ratio is None
    assert quote.bankruptcy_price is None  # EP − WB/Q = 0 is not a price


def test_a_short_whose_liquidation_notional_exceeds_the_last_cap_has_no_solution() -> None:
    btc = TABLES_2024["BTCUSDT"]
    position = PositionInput(
        symbol="BTCUSDT", side=SHORT, quantity=D(1000), entry_price=D(60_000), brackets=btc
    )
    with pytest.raises(
        NoSolution, match=r"^BTCUSDT: the liquidation price lies where the notional"
    ):
        isolated_liquidation(position, D(10_000_000_000))


def test_a_cum_column_that_skips_the_root_has_no_solution() -> None:
    # cum 40 instead of 0 at tier 2 makes MM drop by 40 at notional 100: a long @ 200 with WB 130
    # has g(100−) = −20 and g(100) = +20, so no price makes equity equal maintenance.
    brackets = _one([("0", "100", "0.5", "0"), ("100", "1000", "0.5", "40")])
    position = PositionInput(
        symbol="X", side=LONG, quantity=D(1), entry_price=D(200), brackets=brackets
    )
    with pytest.raises(NoSolution, match=r"^X: no bracket is consistent .*\(see check_cum\)"):
        isolated_liquidation(position, D(130))


def test_an_inconsistent_cum_column_yields_the_first_price_reached() -> None:
    # cum 0 at tier 2 instead of 49 makes MM jump at notional 100: a long @ 200 with WB 120 has
    # roots at 80.81 (tier 1) and 160 (tier 2). Falling from 200 the mark meets 160 first.
    brackets = _one([("0", "100", "0.01", "0"), ("100", "1000", "0.5", "0")])
    position = PositionInput(
        symbol="X", side=LONG, quantity=D(1), entry_price=D(200), brackets=brackets
    )
    quote = isolated_liquidation(position, D(120))
    assert quote.liquidation_price == D(160)


def test_hyperliquid_cross_example_is_reproduced_by_the_one_way_formula() -> None:
    # §6(c) [INF from Hyperliquid liquidations.md]: long 1 BTC, mark 100 000, account value
    # 10 000, l = 1/80 ⇒ LP = 100 000 − 8 750/(1 − 0.0125) = 91 139.24. Hyperliquid prices from
    # the mark with margin_available = AV − MM; the Binance form from the entry with the wallet.
    # Both solve E(P) = P·Q·mmr (no deduction), so with EP := mark and WB := account value they
    # agree exactly.
    brackets = _one([("0", "1000000000", "0.0125", "0")])
    position = PositionInput(
        symbol="BTC", side=LONG, quantity=D(1), entry_price=D(100_000), brackets=brackets
    )
    quote = isolated_liquidation(position, D(10_000))
    assert _near(quote.liquidation_price, "91139.24")
    assert _same(quote.liquidation_price, D(100_000) - D(8750) / (1 - D("0.0125")))


def test_bitmex_example_liquidation_99_50_and_bankruptcy_99_00() -> None:
    # §6(c) BitMEX liquidationExamples: long 1 @ 100.00 at 100× (margin 1.00), maintenance 0.5 %:
    # LP 99.50, BP 99.00. The one-way formula gives 99/0.995 = 99.497…, i.e. 99.50 to the cent.
    brackets = _one([("0", "1000000", "0.005", "0")])
    position = PositionInput(
        symbol="XBT", side=LONG, quantity=D(1), entry_price=D(100), brackets=brackets
    )
    quote = isolated_liquidation(position, D(1))
    assert _near(quote.liquidation_price, "99.50")
    assert quote.bankruptcy_price == D(99)


def test_bybit_bankruptcy_prices_are_reproduced() -> None:
    # §6(c) [DOC-2 mobie.io quoting Bybit]: long 1 BTC @ 10 000, 50× ⇒
    # BP = 10 000 × (1 − 2 %) = 9 800; a short is mirrored: EP × (1 + IMR).
    brackets = _one([("0", "1000000", "0.005", "0")])
    long_ = PositionInput(
        symbol="BTCUSDT", side=LONG, quantity=D(1), entry_price=D(10_000), brackets=brackets
    )
    short = PositionInput(
        symbol="BTCUSDT", side=SHORT, quantity=D(1), entry_price=D(8000), brackets=brackets
    )
    assert isolated_liquidation(long_, D(200)).bankruptcy_price == D(9800)
    assert isolated_liquidation(short, D(200)).bankruptcy_price == D(8200)  # 8 000 × (1 + 2.5 %)


@pytest.mark.parametrize(
    ("side", "entry", "leverage", "bybit", "ours"),
    [
        (LONG, "20000", 50, "19700", "19698.49"),  # IM 400, MM 100 ⇒ 20 000 − 300
        (LONG, "10000", 50, "9850", "9849.25"),  # older form EP × (1 − 2 % + 0.5 %)
        (SHORT, "8000", 40, "8160", "8159.20"),  # older form EP × (1 + 2.5 % − 0.5 %)
    ],
)
def test_bybit_isolated_examples_use_maintenance_at_entry_not_at_the_liquidation_price(
    side: PositionSide, entry: str, leverage: int, bybit: str, ours: str
) -> None:
    # §6(c) Bybit "Liquidation Price (USDT Contract)", 1 BTC, MMR 0.5 %, margin = IM = PV/lev:
    # Bybit computes MM = PV × MMR with PV = size × EP, i.e. at the *entry* price, so
    # LP = EP ∓ (IM − MM_entry)/size. The Binance formula (this oracle) evaluates MM at the
    # liquidation price: LP = (IM ∓ EP)/(mmr ∓ 1). The two differ by Q·mmr·|EP − LP|/(1 ∓ mmr)
    # (1.51, 0.75, 0.80 here). Not reproducible by design; both values are pinned.
    brackets = _one([("0", "1000000", "0.005", "0")])
    ep = D(entry)
    position = PositionInput(
        symbol="BTCUSDT", side=side, quantity=D(1), entry_price=ep, brackets=brackets
    )
    margin = ep / leverage
    quote = isolated_liquidation(position, margin)
    assert _near(quote.liquidation_price, ours)
    assert ep - side.sign * (margin - ep * D("0.005")) == D(bybit)


def test_gate_user_example_1349_70_is_the_formula_with_taker_fee_in_the_rate() -> None:
    # §6(c) freqtrade#7294 (Gate, maintainer-confirmed): (1680.05 − 182.81/0.5423) /
    # (1 − (0.005 + 7.5e−06)) = 1 349.70. Gate folds the taker fee into the rate; the one-way
    # formula with cum 0 and mmr := mmr + taker is algebraically the same expression. The exact
    # value is 1 349.7074…: the published 1 349.70 is truncated (rounding would say 1 349.71).
    brackets = _one([("0", "100000000", "0.0050075", "0")])
    position = PositionInput(
        symbol="ETH_USDT",
        side=LONG,
        quantity=D("0.5423"),
        entry_price=D("1680.05"),
        brackets=brackets,
    )
    quote = isolated_liquidation(position, D("182.81"))
    assert _near(quote.liquidation_price, "1349.70")
    assert quote.liquidation_price is not None
    assert quote.liquidation_price.quantize(CENT, rounding=ROUND_DOWN) == D("1349.70")


def test_isolated_price_ignores_marks_and_equals_a_lone_cross_position() -> None:
    # §6(d) cross coupling: isolated LP must not depend on any mark; a lone cross position with
    # the same wallet is the isolated case.
    moved = PositionInput(
        symbol=FAQ_BTC.symbol,
        side=FAQ_BTC.side,
        quantity=FAQ_BTC.quantity,
        entry_price=FAQ_BTC.entry_price,
        brackets=FAQ_BTC.brackets,
        mark_price=D(20_000),
    )
    assert isolated_liquidation(moved, D(500_000)) == isolated_liquidation(FAQ_BTC, D(500_000))
    assert cross_liquidation([FAQ_BTC], D(500_000)) == [isolated_liquidation(FAQ_BTC, D(500_000))]


def test_cross_bankruptcy_price_zeroes_equity_with_others_at_their_marks() -> None:
    btc, _ = cross_liquidation([FAQ_BTC, FAQ_ETH], FAQ_WALLET)
    assert btc.bankruptcy_price is not None
    equity = equity_at([FAQ_BTC, FAQ_ETH], FAQ_WALLET, {"BTCUSDT": btc.bankruptcy_price})
    assert abs(equity) < D("1e-40")


def test_oracle_imports_nothing_from_the_simulator() -> None:
    # the oracle is the independent reference the simulator is judged against (DESIGN.md)
    oracle = Path(__file__).resolve().parents[2] / "harness" / "oracle"
    for source in oracle.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not [n for n in names if n.split(".")[0] in ("adapters", "ccxt")], source


def test_position_input_validates_and_parses_its_side() -> None:
    btc = TABLES_2024["BTCUSDT"]
    parsed = PositionInput(
        symbol="BTCUSDT",
        side=PositionSide.parse("SHORT"),
        quantity=D(1),
        entry_price=D(1),
        brackets=btc,
    )
    assert parsed.side is SHORT
    assert PositionSide.parse(1) is LONG
    with pytest.raises(ValueError, match="quantity=0 must be > 0"):
        PositionInput(symbol="BTCUSDT", side=LONG, quantity=D(0), entry_price=D(1), brackets=btc)
    with pytest.raises(ValueError, match="side='up'"):
        PositionSide.parse("up")
    with pytest.raises(ValueError, match="several for BTCUSDT"):
        cross_liquidation([parsed, parsed], D(1))
