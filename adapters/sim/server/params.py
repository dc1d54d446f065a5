"""Request parameters as Binance reads them: query string and form body merged, query wins.

binance-usdm-surface.md §5 "Server-side implications": parameters may come in the query string,
an ``application/x-www-form-urlencoded`` body, or both ("if a parameter is sent in both, the
query string parameter will be used"); the body is never JSON (the connector sends
``Content-Type: application/json`` with an empty body); booleans are case-insensitive; numbers
are decimals parsed from their text, never floats. Errors use the codes of §4 (-1100, -1101,
-1102, -1130).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import NoReturn
from urllib.parse import unquote_to_bytes

from aiohttp import web

from harness.errors import Rejected

__all__ = [
    "MAX_FIELDS",
    "UNREADABLE",
    "Params",
    "RawRequest",
    "invalid",
    "mandatory",
    "parse_query",
    "read_request",
]

MAX_FIELDS = 100
# Binance's legal range for quantities and prices (the -1100 message quotes it).
DECIMAL_PATTERN = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
INTEGER_PATTERN = re.compile(r"^-?[0-9]{1,19}$")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_BOOLEANS = {"true": True, "false": False}
UNREADABLE = web.RequestKey("unreadable_body", bool)


def mandatory(name: str) -> Rejected:
    """-1102 for a parameter that was not sent, was empty or malformed."""
    return Rejected(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def invalid(name: str) -> NoReturn:
    """Refuse with -1130: the parameter's value is outside what the endpoint takes."""
    raise Rejected(-1130, f"Data sent for parameter '{name}' is not valid.")


def _too_many(count: int) -> Rejected:
    msg = f"Too many parameters; expected at most {MAX_FIELDS} and received {count}."
    return Rejected(-1101, msg)


def _pairs(raw: bytes) -> list[tuple[str, str]]:
    """``raw`` as ``parse_qsl(..., keep_blank_values=True)`` reads it, but strict UTF-8 (-1100).

    Pieces are separated by ``&`` (more than :data:`MAX_FIELDS` pieces, empty ones included:
    -1101), empty pieces are skipped, a piece without ``=`` is a name with an empty value,
    ``+`` is a space and ``%XX`` a byte; the bytes must be UTF-8 (-1100 names the parameter).
    """
    if not raw:
        return []
    pieces = raw.split(b"&")
    if len(pieces) > MAX_FIELDS:
        raise _too_many(len(pieces))
    out: list[tuple[str, str]] = []
    for piece in pieces:
        if not piece:
            continue
        name, _, value = piece.partition(b"=")
        try:
            key = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8")
            text = unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            shown = name.decode("ascii", "replace")
            msg = f"Illegal characters found in parameter '{shown}'; legal range is 'UTF-8'."
            raise Rejected(-1100, msg) from None
        out.append((key, text))
    return out


def _unique(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in out:
            raise Rejected(-1101, "Duplicate values for a parameter detected.")
        out[key] = value
    return out


def parse_query(raw: bytes) -> dict[str, str]:
    """The parameters of one query string or form body: ``_unique(_pairs(raw))``, faster.

    What clients send is almost always plain ASCII without ``%`` or ``+`` (ccxt and the
    connectors percent-encode only what needs it): then nothing is decoded and the pieces are
    read straight off the text, which is several times cheaper than ``parse_qsl``. Anything
    else takes :func:`_pairs`. Both give the same parameters and the same refusals: in plain
    ASCII no piece can fail to decode, so the only refusals left are the piece count (checked
    first, as :func:`_pairs` does) and a duplicate name.
    """
    if not raw:
        return {}
    if raw.isascii() and b"%" not in raw and b"+" not in raw:
        pieces = raw.decode("ascii").split("&")
        if len(pieces) > MAX_FIELDS:
            raise _too_many(len(pieces))
        out: dict[str, str] = {}
        for piece in pieces:
            if piece:
                key, _, value = piece.partition("=")
                if key in out:
                    raise Rejected(-1101, "Duplicate values for a parameter detected.")
                out[key] = value
        return out
    return _unique(_pairs(raw))


class Params(Mapping[str, str]):
    """The merged parameters (``signature`` excluded) with typed, Binance-coded getters."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def text(self, name: str, *, required: bool = False) -> str | None:
        """The value, or ``None`` when absent or empty (Binance treats both as "not sent")."""
        value = self._values.get(name)
        if value:
            return value
        if required:
            raise mandatory(name)
        return None

    def require(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None  # noqa: S101 - text(required=True) raised otherwise
        return value

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        """A non-negative decimal in Binance's legal range ``^([0-9]{1,20})(\\.[0-9]{1,20})?$``."""
        value = self.text(name, required=required)
        if value is None:
            return None
        if not DECIMAL_PATTERN.fullmatch(value):
            msg = (
                f"Illegal characters found in parameter '{name}'; legal range is "
                f"'{DECIMAL_PATTERN.pattern}'."
            )
            raise Rejected(-1100, msg)
        return Decimal(value)

    def integer(
        self,
        name: str,
        *,
        required: bool = False,
        default: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        value = self.text(name, required=required)
        if value is None:
            return default
        if value.isascii() and value.isdigit() and len(value) < 19:
            number = int(value)  # the common case, well inside a long: no pattern needed
        elif not INTEGER_PATTERN.fullmatch(value):
            raise mandatory(name)
        else:
            number = int(value)
            if not INT64_MIN <= number <= INT64_MAX:  # not a long: as malformed as 20 digits
                raise mandatory(name)
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            invalid(name)
        return number

    def limit(self, default: int, maximum: int, name: str = "limit") -> int:
        value = self.integer(name, default=default, minimum=1, maximum=maximum)
        assert value is not None  # noqa: S101 - a default was given
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        """``true``/``false`` in any case (the connectors send what the caller passed)."""
        value = self.text(name)
        if value is None:
            return default
        found = _BOOLEANS.get(value.lower())
        if found is None:
            invalid(name)
        return found


@dataclass(frozen=True, slots=True)
class RawRequest:
    """The request as signed: raw query and body bytes, and the merged parameters."""

    query: bytes
    body: bytes
    params: Params
    signature: str | None


async def read_request(request: web.Request) -> RawRequest:
    """Read and merge the parameters of ``request`` (malformed input: a coded Rejected)."""
    query = request.raw_path.partition("?")[2].encode("utf-8", "surrogateescape")
    try:
        body = await request.read()
    except web.RequestPayloadError:  # e.g. a Content-Encoding the body is not in
        request[UNREADABLE] = True  # the rest of the stream is lost: the answer closes it
        msg = "Illegal characters found in the request body; it could not be decoded."
        raise Rejected(-1100, msg) from None
    from_query = parse_query(query)
    merged = parse_query(body) if body else {}
    merged.update(from_query)
    signature = merged.pop("signature", None)
    return RawRequest(query=query, body=body, params=Params(merged), signature=signature)
