"""Bad values for the fuzz cases: malformed numbers, values outside a parameter's set, keys
that are no API key (tests/fuzz/cases.py)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from hypothesis import strategies as st

from adapters.sim.server.params import DECIMAL_PATTERN, INTEGER_PATTERN
from adapters.sim.server.surface import Kind, Param

__all__ = ["TEXT", "malformed", "malformed_key", "outside"]

TEXT = st.text(max_size=12)


def malformed(p: Param) -> st.SearchStrategy[str]:
    """Text that is no integer (64-bit, ASCII digits, whole) or no decimal in Binance's range."""
    if p.kind is Kind.INTEGER:
        samples = st.sampled_from(
            ["abc", "1.5", "1e3", "+1", "0x10", " 1", "1 ", "5\n", "--1", "²", "٥", "５"]
        )
        longer = st.one_of(st.integers(2**63, 10**30), st.integers(-(10**30), -(2**63) - 1)).map(
            str
        )
        fancy = TEXT.filter(lambda t: t != "" and not INTEGER_PATTERN.fullmatch(t))
        return st.one_of(samples, longer, fancy)
    samples = st.sampled_from(
        ["abc", "-1", "1e5", "1,5", ".5", "1.", "+1", "NaN", "Infinity", "1_000", "١", "5\n"]
    )
    longer = st.just("1" * 21) | st.just("0." + "1" * 21)
    fancy = TEXT.filter(lambda t: t != "" and not DECIMAL_PATTERN.fullmatch(t))
    return st.one_of(samples, longer, fancy)


def outside(p: Param, symbols: Sequence[str]) -> st.SearchStrategy[str]:
    """Text that is not one of ``p``'s values (case-insensitively where it reads any case)."""
    if p.kind is Kind.SYMBOL:
        taken = set(symbols)
        return st.one_of(
            st.sampled_from([s.lower() for s in symbols] + ["BTCUSD", "BTCUSDT\n", "BTC-USDT"]),
            TEXT,
        ).filter(lambda t: t != "" and t not in taken)
    if p.kind is Kind.BOOLEAN:
        values = {"true", "false"}
        return st.one_of(st.sampled_from(["1", "0", "yes", "TRUEE"]), TEXT).filter(
            lambda t: t != "" and t.lower() not in values
        )
    values = set(p.values) | {v for v, _ in p.refused}
    folded = {v.upper() for v in values}

    def outside(t: str) -> bool:
        return t != "" and t not in values and not (p.any_case and t.upper() in folded)

    return st.one_of(st.sampled_from([v.lower() for v in p.values] + ["X"]), TEXT).filter(outside)


def malformed_key(value: bytes) -> bool:
    """Not a key, yet a header value HTTP carries as it is (no controls, no outer spaces)."""
    printable = all(c >= 0x20 and c != 0x7F for c in value)
    return printable and value.strip() == value and not re.fullmatch(rb"[A-Za-z0-9]+", value)
