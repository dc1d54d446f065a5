"""Tiered maintenance margin and the leverageBracket decoder (perp-mechanics.md §4)."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from pathlib import Path

import pytest

from harness.errors import ConfigError, NoSolution
from harness.model import Bracket
from harness.oracle import (
    bracket_for,
    brackets_from_binance,
    check_cum,
    initial_margin,
    maintenance_margin,
    parse_binance_brackets,
    require_contiguous,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# BTCUSDT and ETHUSDT, Binance API data committed in freqtrade (binance_leverage_tiers.json,
# 2024 snapshot); BTCUSDT is the table of perp-mechanics.md §4(c).
TABLES_2024 = parse_binance_brackets((FIXTURES / "binance_brackets_btcusdt.json").read_bytes())
# BTCUSDT from Binance's announcement "Updates to Leverage and Margin Tiers of Binance Futures
# Contracts (2021-03-18)" — the table the liquidation-price FAQ examples were written against.
TABLES_2021 = parse_binance_brackets(
    (FIXTURES / "binance_brackets_2021_faq_example.json").read_bytes()
)
BTC = TABLES_2024["BTCUSDT"]
D = Decimal

# §4(c): tier, floor, mmr, max leverage, cum
REFERENCE_BTCUSDT = [
    (1, "0", "0.004", 125, "0"),
    (2, "50000", "0.005", 100, "50"),
    (3, "600000", "0.0065", 75, "950"),
    (4, "3000000", "0.01", 50, "11450"),
    (5, "12000000", "0.02", 25, "131450"),
    (6, "70000000", "0.025", 20, "481450"),
    (7, "100000000", "0.05", 10, "2981450"),
    (8, "230000000", "0.10", 5, "14481450"),
    (9, "480000000", "0.125", 4, "26481450"),
    (10, "600000000", "0.15", 3, "41481450"),
    (11, "800000000", "0.25", 2, "121481450"),
    (12, "1200000000", "0.50", 1, "421481450"),
]


def test_btcusdt_fixture_is_the_reference_table() -> None:
    got = [
        (b.bracket, b.notional_floor, b.maint_margin_ratio, b.initial_leverage, b.cum) for b in BTC
    ]
    want = [(t, D(f), D(m), lev, D(c)) for t, f, m, lev, c in REFERENCE_BTCUSDT]
    assert got == want
    assert BTC[-1].notional_cap == D(1_800_000_000)


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT"])
def test_every_cum_of_the_2024_tables_follows_the_recurrence(symbol: str) -> None:
    brackets = TABLES_2024[symbol]
    cum, mmr = D(0), D(0)
    for b in brackets:
        cum += b.notional_floor * (b.maint_margin_ratio - mmr)
        mmr = b.maint_margin_ratio
        assert b.cum == cum, f"{symbol} bracket {b.bracket}"
    assert check_cum(brackets) == []


@pytest.mark.parametrize(
    ("table", "symbol"),
    [
        (TABLES_2024, "BTCUSDT"),
        (TABLES_2024, "ETHUSDT"),
        (TABLES_2021, "BTCUSDT"),
        (TABLES_2021, "ETHUSDT"),
    ],
)
def test_maintenance_is_continuous_at_every_floor(
    table: dict[str, tuple[Bracket, ...]], symbol: str
) -> None:
    for lower, upper in itertools.pairwise(table[symbol]):
        floor = upper.notional_floor
        from_below = floor * lower.maint_margin_ratio - lower.cum
        assert maintenance_margin(table[symbol], floor) == from_below


def test_maintenance_at_600000_is_2950_from_both_sides() -> None:
    # §4(c): 600 000×0.5 % − 50 = 2 950 = 600 000×0.65 % − 950
    assert maintenance_margin(BTC, D(600_000)) == D(2950)
    assert D(600_000) * D("0.005") - 50 == D(2950)


def test_binance_faq_maintenance_amount_of_level_3_is_1300() -> None:
    # Binance FAQ b3c689c1…: "Maintenance Amount on Level 3 = 250,000 × (1 % − 0.5 %) + 50 = 1,300"
    btc_2021 = TABLES_2021["BTCUSDT"]
    assert check_cum(btc_2021) == []
    level_3 = btc_2021[2]
    assert level_3.cum == D(250_000) * (D("0.01") - D("0.005")) + 50 == D(1300)
    # "if the position ... is 264,000 USDT, then the maintenance margin rate would be 1 %"
    assert bracket_for(btc_2021, D(264_000)).maint_margin_ratio == D("0.01")
    # "if the position ... is 500,000 USDT, then the maintenance amount would be 1,300 USDT"
    assert bracket_for(btc_2021, D(500_000)).cum == D(1300)


def test_bracket_lookup_uses_half_open_intervals() -> None:
    assert bracket_for(BTC, D(0)).bracket == 1
    assert bracket_for(BTC, D("49999.99")).bracket == 1
    assert bracket_for(BTC, D(50_000)).bracket == 2
    assert bracket_for(BTC, D("1799999999.99")).bracket == 12


def test_notional_at_or_beyond_the_last_cap_has_no_bracket() -> None:
    with pytest.raises(NoSolution, match="beyond the last bracket's cap 1800000000"):
        bracket_for(BTC, D(1_800_000_000))


def test_negative_notional_is_refused() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        bracket_for(BTC, D(-1))


def test_initial_margin_is_notional_over_leverage() -> None:
    assert initial_margin(D(20_000), 50) == D(400)
    assert initial_margin(D(100), D(3)) == D("33.333333333333333333333333333333333333333333333333")
    with pytest.raises(ValueError, match="must be > 0"):
        initial_margin(D(100), 0)


def test_check_cum_reports_both_jumps_of_a_wrong_cum() -> None:
    broken = list(BTC)
    broken[2] = Bracket(
        bracket=3,
        initial_leverage=75,
        notional_floor=D(600_000),
        notional_cap=D(3_000_000),
        maint_margin_ratio=D("0.0065"),
        cum=D(951),
    )
    assert check_cum(broken) == [
        "bracket 3: cum=951 but the recurrence gives 950 (= 50 + 600000×(0.0065 − 0.005)); "
        "MM jumps by -1 at notional 600000",
        "bracket 4: cum=11450 but the recurrence gives 11451 (= 951 + 3000000×(0.01 − 0.0065)); "
        "MM jumps by 1 at notional 3000000",
    ]


def test_check_cum_reports_a_gap_between_brackets() -> None:
    gap = [
        Bracket(
            bracket=1,
            initial_leverage=10,
            notional_floor=D(0),
            notional_cap=D(100),
            maint_margin_ratio=D("0.01"),
            cum=D(0),
        ),
        Bracket(
            bracket=2,
            initial_leverage=5,
            notional_floor=D(200),
            notional_cap=D(300),
            maint_margin_ratio=D("0.02"),
            cum=D(2),
        ),
    ]
    assert any("gap" in p for p in check_cum(gap))
    with pytest.raises(ValueError, match="ends at 100 but bracket 2 starts at 200"):
        require_contiguous(gap)


def _row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "bracket": 1,
        "initialLeverage": 20,
        "notionalCap": 5000,
        "notionalFloor": 0,
        "maintMarginRatio": "0.025",
        "cum": "0.0",
    }
    row.update(overrides)
    return row


def test_decoder_accepts_string_numbers_and_the_single_object_form() -> None:
    # ccxt's "info" rows carry strings; GET /fapi/v1/leverageBracket?symbol=X returns one object.
    got = brackets_from_binance({"symbol": "ADAUSDT", "brackets": [_row()]})
    assert got["ADAUSDT"][0].maint_margin_ratio == D("0.025")
    assert got["ADAUSDT"][0].cum == 0


def test_decoder_refuses_binary_floats() -> None:
    with pytest.raises(
        ConfigError, match=r"'ADAUSDT' bracket #1 field 'maintMarginRatio'.*parse_float=Decimal"
    ):
        brackets_from_binance([{"symbol": "ADAUSDT", "brackets": [_row(maintMarginRatio=0.025)]}])


def _body(symbol: str = "BTCUSDT", **overrides: object) -> str:
    # Test bodies are written with Python floats on purpose: the parser must turn them into
    # Decimal (parse_float=Decimal) before any value is built.
    return json.dumps([{"symbol": symbol, "brackets": [_row(**overrides)]}])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[]", "holds no symbol"),
        ('"x"', "expected the JSON body of GET /fapi/v1/leverageBracket"),
        ('[{"brackets": []}]', "field 'symbol' must be a non-empty string"),
        ('[{"symbol": "BTCUSDT", "brackets": []}]', "'BTCUSDT': field 'brackets' must be"),
        ('[{"symbol": "BTCUSDT", "brackets": [{"bracket": 1}]}]', "bracket #1: missing field"),
        (_body(notionalCap="x"), "field 'notionalCap': 'x' is not a number"),
        (_body(bracket=1.5), "field 'bracket': Decimal('1.5') must be an integer"),
        (_body(maintMarginRatio=1.5), "'BTCUSDT' bracket #1: self.maint_margin_ratio"),
        (_body(notionalFloor=5), "'BTCUSDT': the first bracket starts at 5"),
        (_body(maintMarginRatio=True), "'maintMarginRatio': expected a number, got True"),
        (_body(notionalCap=float("nan")), "not valid JSON"),
        ("{not json", "not valid JSON"),
    ],
)
def test_decoder_names_the_culprit_of_a_malformed_body(body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_binance_brackets(body)


def test_decoder_refuses_a_symbol_given_twice() -> None:
    entry = {"symbol": "BTCUSDT", "brackets": [_row()]}
    with pytest.raises(ConfigError, match="'BTCUSDT' appears twice"):
        brackets_from_binance([entry, entry])


def test_fixture_is_in_binance_wire_shape() -> None:
    raw = json.loads((FIXTURES / "binance_brackets_btcusdt.json").read_text())
    first = raw[0]["brackets"][0]
    assert first == {
        "bracket": 1,
        "initialLeverage": 125,
        "notionalCap": 50000,
        "notionalFloor": 0,
        "maintMarginRatio": 0.004,
        "cum": 0.0,
    }
