"""Everything an engine holds, as plain data: two engines that differ in nothing compare equal.

For the equivalence tests of the engine's fast paths (``Engine.reference``): after the same
operations, an engine on the fast paths and one on the reference algorithms must have the same
digest. Decimals are kept as strings, so a different representation of an equal value (``1.50``
against ``1.5``) is a difference too.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import random
from collections import deque
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.order_record import ORDER_FIELDS

__all__ = ["digest", "first_difference"]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return ("D", str(value))
    if isinstance(value, enum.Enum):
        return ("E", str(value.value))
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict | MappingProxyType):
        return {"dict": [(_plain(k), _plain(v)) for k, v in value.items()]}
    if isinstance(value, list | tuple | deque):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return {"set": sorted(repr(_plain(v)) for v in value)}
    if isinstance(value, random.Random):
        return hashlib.sha256(repr(value.getstate()).encode()).hexdigest()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name not in _SKIP
        }
    slots = [s for cls in type(value).__mro__ for s in getattr(cls, "__slots__", ())]
    if slots:
        return {
            s.lstrip("_"): _plain(getattr(value, s))
            for s in slots
            if s not in _SKIP and hasattr(value, s)
        }
    if callable(value):
        return ("callable", getattr(value, "__qualname__", type(value).__name__))
    msg = f"digest does not know {type(value).__name__}"
    raise TypeError(msg)


# Bookkeeping of the fast paths themselves (links between objects, reserves of the trigger
# index), not venue state.
_SKIP = frozenset(
    {"_owner", "_watch", "_acct", "_drain", "_reserve", "ordinal", "ma_cache", "noise_cache"}
)


def digest(engine: Engine) -> dict[str, Any]:
    """The engine's state (accounts, books, prices, funding, liquidations, monitor...)."""
    mm = engine.market_maker
    monitor = engine.monitor
    return {
        "clock": engine.clock.now_ms(),
        "last_update": engine._last_update_ms,
        "update_count": engine._update_count,
        "order_seq": engine._order_seq,
        "trade_seq": _plain(engine._trade_seq),
        "events": [(at, seq) for at, seq, _ in sorted(engine._events, key=lambda e: e[:2])],
        "accounts": {
            a.account_id: {
                "label": a.label,
                "cross_wallet": _plain(a.cross_wallet),
                "exempt": a.exempt,
                "positions": _plain(a.positions),
                "margin_modes": _plain(a.margin_modes),
                "leverages": _plain(a.leverages),
                "orders": {
                    i: {f: _plain(getattr(r, f)) for f in ORDER_FIELDS} for i, r in a.orders.items()
                },
                "client_ids": _plain(a.client_ids),
                "fills": _plain(a.fills),
                "income": _plain(a.income),
                "update_ms": a.update_ms,
            }
            for a in engine.accounts.values()
        },
        "books": {
            s: {
                "update_id": b.update_id,
                "orders": [
                    (o.order_id, o.account_id, o.side.value, str(o.price), str(o.remaining))
                    for side in (b._bids, b._asks)
                    for queue in side.values()
                    for o in queue
                ],
            }
            for s, b in engine.books.items()
        },
        "tape": _plain({s: list(t) for s, t in engine.tape.items()}),
        "prices": _plain(engine.prices),
        "instruments": _plain(engine.instruments),
        "funding": {
            "symbols": _plain(engine.funding._symbols),
            "settlements": _plain(engine.funding.settlements),
        },
        "liquidations": _plain(engine.liquidator.records),
        "adl": _plain(engine.liquidator.adl_records),
        "slices": _plain(engine.liquidator._last_slice_ms),
        "market_maker": {
            "stale": sorted(mm._stale),
            "centre": _plain(mm._centre),
            "skew": _plain(mm.skew_bps),
            "rng": _plain(mm._rng),
            "profiles": _plain(mm.profiles),
        },
        "monitor": {
            "alerts": _plain(monitor.alerts),
            "disarmed": sorted(monitor._disarmed),
            "cascade_fired": sorted(monitor._cascade_fired),
            "cascade_at": monitor._cascade_at,
            "cancels": {k: list(t) for k, t in monitor._cancels.times.items()},
            "adds": {k: list(t) for k, t in monitor._adds.times.items()},
        },
        "latency": dict(engine.liquidation_latency._due),
        "dirty": sorted(engine._dirty),
    }


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two digests first differ (None: equal)."""
    if type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                return f"{path}/{key}: only in one"
            found = first_difference(a[key], b[key], f"{path}/{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"
