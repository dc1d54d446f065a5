"""JSON as Binance writes it: decimals as strings or exact numbers, errors as ``{code, msg}``.

binance-usdm-surface.md §2 (numeric values are JSON strings except ids, timestamps, leverage and
the ``leverageBracket`` figures, which are numbers) and §4 (every error is JSON
``{"code": <negative int>, "msg": "<text>"}`` with ``Content-Type: application/json``).
A :class:`~decimal.Decimal` left in a payload is written as an exact JSON **number**; call
:func:`s` where Binance sends a string. Floats never appear: :func:`dumps` refuses them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from aiohttp import web

__all__ = ["JSON", "LostAck", "Refused", "dumps", "error_response", "json_response", "s"]

JSON = "application/json"
_encode_str = json.encoder.encode_basestring_ascii


class Refused(Exception):  # noqa: N818 - the server's verdict, like harness Rejected
    """A refusal with its own HTTP status (control API 401/403, unknown route 404...)."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(f"{status} {code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg


class LostAck(Exception):  # noqa: N818 - names the fault, as PROTOCOL.md does
    """The request executed but its answer is to be lost: the connection closes unanswered."""


def s(value: Decimal | int) -> str:
    """A decimal as Binance sends it in a string: plain notation, never ``-0``."""
    if isinstance(value, int):
        return str(value)
    if not value:
        value = abs(value)
    text = str(value)  # plain notation unless it has an exponent; much cheaper than format()
    return format(value, "f") if "E" in text else text


def _dump(obj: Any, out: list[str]) -> None:
    """Append ``obj``'s JSON to ``out``; an exact ``dict`` or ``list`` and its scalars inline.

    The rules are the module docstring's; the fast paths only save the isinstance chain and
    a call per value for the types payloads are made of (a ``str`` subclass such as an enum
    member, or anything else, takes the general path, which writes it the same way). A list of
    rows of strings (book levels: ~120 calls a depth answer on the general path) is joined
    whole.
    """
    kind = type(obj)
    if kind is dict:
        parts: list[str] = []
        for key, value in obj.items():
            name = _KEYS.get(key) if type(key) is str else None
            if name is None:
                name = _key(key)
            vkind = type(value)
            if vkind is str:
                parts.append(name + _encode_str(value))
            elif vkind is int:
                parts.append(name + int.__repr__(value))
            elif vkind is bool:
                parts.append(name + ("true" if value else "false"))
            elif isinstance(value, str):  # a StrEnum member: its text, as _dump_any writes it
                parts.append(name + _encode_str(value))
            else:
                inner: list[str] = [name]
                _dump(value, inner)
                parts.append("".join(inner))
        out.append("{" + ",".join(parts) + "}")
    elif kind is list or kind is tuple:
        items: list[str] = []
        for value in obj:
            vkind = type(value)
            if vkind is str:
                items.append(_encode_str(value))
                continue
            if vkind is list or vkind is tuple:
                # A row of strings (a book level, a kline): _encode_str takes any str, a StrEnum
                # member included, as _dump_any writes it; anything else raises TypeError.
                try:
                    items.append("[" + ",".join(map(_encode_str, value)) + "]")
                    continue
                except TypeError:
                    pass
            nested: list[str] = []
            _dump(value, nested)
            items.append("".join(nested))
        out.append("[" + ",".join(items) + "]")
    else:  # everything else: the general path
        _dump_any(obj, out)


_KEYS: dict[str, str] = {}
_MAX_KEYS = 4096  # payload keys are the server's own names; the memo stays small anyway


def _key(key: object) -> str:
    """``"key":`` for a mapping key (memoised: payloads repeat the same few names)."""
    if type(key) is str:
        found = _KEYS.get(key)
        if found is None:
            found = _encode_str(key) + ":"
            if len(_KEYS) < _MAX_KEYS:
                _KEYS[key] = found
        return found
    return _encode_str(str(key)) + ":"


def _dump_any(obj: Any, out: list[str]) -> None:
    if isinstance(obj, str):
        out.append(_encode_str(obj))
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, int):
        out.append(str(obj))
    elif isinstance(obj, Decimal):
        if not obj.is_finite():
            msg = f"cannot write {obj} as JSON"
            raise ValueError(msg)
        out.append(s(obj))
    elif isinstance(obj, Mapping):
        out.append("{")
        for i, (key, value) in enumerate(obj.items()):
            if i:
                out.append(",")
            out.append(_key(key))
            _dump(value, out)
        out.append("}")
    elif isinstance(obj, list | tuple):
        out.append("[")
        for i, value in enumerate(obj):
            if i:
                out.append(",")
            _dump(value, out)
        out.append("]")
    else:
        msg = f"cannot write {type(obj).__name__} as JSON (money is Decimal, never float)"
        raise TypeError(msg)


def dumps(obj: Any) -> str:
    """Compact JSON; :class:`~decimal.Decimal` values become exact numbers."""
    out: list[str] = []
    _dump(obj, out)
    return "".join(out)


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(text=dumps(obj), status=status, content_type=JSON)


def error_response(code: int, msg: str, status: int = 400) -> web.Response:
    """A Binance error body ``{"code", "msg"}`` with its HTTP status (surface doc §4)."""
    return json_response({"code": code, "msg": msg}, status)
