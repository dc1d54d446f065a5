"""The server's hot-path parsers and encoders keep the semantics of the slow ones they replace.

* :func:`~adapters.sim.server.params.parse_query` reads a query string or form body as
  ``urllib.parse.parse_qsl(..., keep_blank_values=True)`` does (``+`` a space, ``%XX`` a byte,
  a piece without ``=`` an empty value), with Binance's refusals: strict UTF-8 (-1100), more
  than 100 pieces or a duplicate name (-1101); its plain-ASCII fast path and the general path
  agree on every input, refusals included.
* :func:`~adapters.sim.server.auth.sign_fast` (memoised padded keys) is HMAC-SHA256.
* :func:`~adapters.sim.server.wire.dumps` and :func:`~adapters.sim.server.wire.s` write what the
  previous, general-only encoder wrote.
* The gateway's weight rules read only ASCII digits as numbers (``"²".isdigit()`` is true).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.sim.engine.gateway import ENDPOINTS
from adapters.sim.server.auth import sign, sign_fast
from adapters.sim.server.params import MAX_FIELDS, _pairs, _unique, parse_query
from adapters.sim.server.wire import dumps, s
from harness.errors import Rejected
from harness.model import Side

# Binance parameter names and values: what clients send, plus the characters that need quoting.
SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-~"
TEXT = st.text(alphabet=st.sampled_from(SAFE + " +&=%/:?#é€²٥\x00\n"), max_size=12)
NAMES = st.text(alphabet=st.sampled_from(SAFE + " +&=%é"), min_size=1, max_size=10)
QUOTERS: list[Callable[[str], str]] = [
    lambda t: quote_plus(t, safe=""),
    lambda t: quote(t, safe=""),
    lambda t: quote(t, safe="") if any(c not in SAFE for c in t) else t,
]


def outcome(fn: Any, raw: bytes) -> object:
    """The parsed dict, or the refusal's code and message."""
    try:
        return fn(raw)
    except Rejected as exc:
        return (exc.code, exc.msg)


@settings(max_examples=300, deadline=None)
@given(
    params=st.dictionaries(NAMES, TEXT, max_size=8),
    quoter=st.sampled_from(range(len(QUOTERS))),
    empties=st.integers(0, 2),
)
def test_encoded_parameters_read_back_as_parse_qsl_reads_them(
    params: dict[str, str], quoter: int, empties: int
) -> None:
    enc = QUOTERS[quoter]
    text = "&".join(f"{enc(k)}={enc(v)}" for k, v in params.items()) + "&" * empties
    raw = text.encode("ascii")
    assert parse_query(raw) == params
    assert parse_query(raw) == dict(parse_qsl(text, keep_blank_values=True))


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(SAFE + "&=+%é \x7f"), max_size=40))
def test_any_text_reads_as_parse_qsl_reads_it_when_it_is_taken(text: str) -> None:
    raw = text.encode("utf-8")
    expected = parse_qsl(text, keep_blank_values=True)  # errors="replace": U+FFFD for bad bytes
    names = [k for k, _ in expected]
    got = outcome(parse_query, raw)
    if isinstance(got, dict):
        assert got == dict(expected)
        assert len(set(names)) == len(names)
    else:
        assert isinstance(got, tuple)
        bad_utf8 = any("\ufffd" in k + v for k, v in expected)
        assert got[0] == (-1100 if bad_utf8 else -1101)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=60) | st.text(max_size=40).map(lambda t: t.encode("utf-8")))
def test_the_fast_path_and_the_general_path_agree_on_any_bytes(raw: bytes) -> None:
    assert outcome(parse_query, raw) == outcome(lambda r: _unique(_pairs(r)), raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", {}),
        (b"a=1&b=2", {"a": "1", "b": "2"}),
        (b"a=1&&b=&c", {"a": "1", "b": "", "c": ""}),
        (b"a=x=y", {"a": "x=y"}),
        (b"a=%3A+x", {"a": ": x"}),
        (b"q=%C3%A9&r=\xc3\xa9", {"q": "é", "r": "é"}),
        (b"price=1%2E5", {"price": "1.5"}),
    ],
)
def test_examples(raw: bytes, expected: dict[str, str]) -> None:
    assert parse_query(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code", "needle"),
    [
        (b"a=1&a=2", -1101, "Duplicate"),
        (b"a=1&b=%ff", -1100, "parameter 'b'"),
        (b"a=\xff", -1100, "parameter 'a'"),
        (b"&" * MAX_FIELDS, -1101, f"received {MAX_FIELDS + 1}"),
        (b"&".join(b"k%d=1" % i for i in range(MAX_FIELDS + 1)), -1101, "Too many"),
    ],
)
def test_refusals(raw: bytes, code: int, needle: str) -> None:
    with pytest.raises(Rejected) as info:
        parse_query(raw)
    assert info.value.code == code
    assert needle in info.value.msg


def test_exactly_max_fields_pieces_are_taken() -> None:
    raw = b"&".join(b"k%d=1" % i for i in range(MAX_FIELDS))
    assert len(parse_query(raw)) == MAX_FIELDS


@settings(max_examples=200, deadline=None)
@given(secret=st.text(min_size=1, max_size=150), payload=st.binary(max_size=300))
def test_sign_fast_is_hmac_sha256(secret: str, payload: bytes) -> None:
    expected = hmac.new(secret.encode("utf-8"), payload, "sha256").hexdigest()
    assert sign_fast(secret, payload) == expected
    assert sign(secret, payload) == expected


# ---------------------------------------------------------------------- wire
def _reference_s(value: Decimal | int) -> str:
    if isinstance(value, int):
        return str(value)
    return format(value if value else abs(value), "f")


DECIMALS = st.decimals(allow_nan=False, allow_infinity=False, places=None) | st.sampled_from(
    [Decimal("-0"), Decimal("-0.000"), Decimal("1E+3"), Decimal("1E-7"), Decimal("12.3400")]
)


@settings(max_examples=500, deadline=None)
@given(DECIMALS)
def test_s_writes_plain_notation_as_format_f(value: Decimal) -> None:
    assert s(value) == _reference_s(value)
    assert "E" not in s(value)


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8), DECIMALS)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6) | st.integers(0, 9), inner, max_size=4)
    ),
    max_leaves=20,
)


def _reference_dump(obj: Any) -> str:
    """The general-only encoder the fast one replaced (one isinstance chain for every value)."""
    if isinstance(obj, str):
        return json.dumps(obj)
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, int):
        return str(obj)
    if isinstance(obj, Decimal):
        return _reference_s(obj)
    if isinstance(obj, dict):
        return (
            "{"
            + ",".join(f"{json.dumps(str(k))}:{_reference_dump(v)}" for k, v in obj.items())
            + "}"
        )
    return "[" + ",".join(_reference_dump(v) for v in obj) + "]"


@settings(max_examples=300, deadline=None)
@given(JSONISH)
def test_dumps_is_compact_json_with_exact_decimals(obj: Any) -> None:
    written = dumps(obj)
    assert written == _reference_dump(obj)
    json.loads(written, parse_float=Decimal)  # and it is JSON


def test_dumps_writes_enum_members_and_nested_values_as_before() -> None:
    obj = {
        "side": Side.BUY,
        "sides": [Side.SELL, "x"],
        "n": {"q": Decimal("1.50"), "z": Decimal("-0"), "ok": True, "none": None},
        7: (1, False),
    }
    written = dumps(obj)
    assert written == _reference_dump(obj)
    assert written == (
        '{"side":"BUY","sides":["SELL","x"],"n":{"q":1.50,"z":0,"ok":true,"none":null},'
        '"7":[1,false]}'
    )


ROWS = st.lists(
    st.lists(st.text(max_size=6) | st.sampled_from(list(Side)), max_size=3)
    | st.tuples(st.text(max_size=6), SCALARS),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(ROWS)
def test_dumps_writes_rows_of_strings_as_the_general_encoder(rows: list[Any]) -> None:
    """Book levels and the like (a list of rows of strings) take a joined fast path: the same
    text as the general encoder, a row with anything but strings in it included."""
    for obj in (rows, {"bids": rows}, tuple(rows)):
        assert dumps(obj) == _reference_dump(obj)


def test_dumps_refuses_floats_and_non_finite_decimals() -> None:
    with pytest.raises(TypeError, match="never float"):
        dumps({"price": 1.5})
    with pytest.raises(TypeError, match="never float"):  # inside a row of the fast path
        dumps({"bids": [["60000.1", "0.5"], ["60000.0", 0.5]]})
    with pytest.raises(ValueError, match="cannot write"):
        dumps([Decimal("NaN")])


# ---------------------------------------------------------------------- gateway weights
@pytest.mark.parametrize("limit", ["²", "٥", "５", "١٢", "5\n", "-5", "1e3", ""])
def test_weight_rules_read_only_ascii_digits(limit: str) -> None:
    depth = ENDPOINTS[("GET", "/fapi/v1/depth")]
    klines = ENDPOINTS[("GET", "/fapi/v1/klines")]
    assert depth.cost({"symbol": "BTCUSDT", "limit": limit}).weight == 10  # default 500
    assert klines.cost({"symbol": "BTCUSDT", "limit": limit}).weight == 5  # default 500


@pytest.mark.parametrize(("limit", "weight"), [("5", 2), ("100", 5), ("1000", 20)])
def test_weight_rules_read_ascii_limits(limit: str, weight: int) -> None:
    assert ENDPOINTS[("GET", "/fapi/v1/depth")].cost({"limit": limit}).weight == weight
