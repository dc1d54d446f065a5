"""``GET /control/alerts``: the anomaly monitor's alerts over the control API (PROTOCOL.md
"Alerts").

What :meth:`adapters.sim.venue.SimVenue.alerts` returns in process, as JSON: decimals as strings,
``evidence`` an object of strings. Query ``since_ms`` (alerts fired at or after it) and
``symbol`` filter as on ``GET /control/liquidations``; a malformed ``since_ms`` is 400 ``-1130``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from adapters.sim.server.control import _query_int, _reply
from adapters.sim.server.state import ENGINE
from adapters.sim.server.wire import s
from harness.alerts import Alert
from harness.errors import VenueError

__all__ = ["alert_from_json", "alert_json", "alerts"]


def alert_json(alert: Alert) -> dict[str, Any]:
    """One alert as the control API writes it."""
    return {
        "seq": alert.seq,
        "time_ms": alert.time_ms,
        "detector": alert.detector,
        "symbol": alert.symbol,
        "account_id": alert.account_id,
        "statistic": s(alert.statistic),
        "threshold": s(alert.threshold),
        "evidence": dict(alert.evidence),
    }


def alert_from_json(row: Mapping[str, Any]) -> Alert:
    """The inverse of :func:`alert_json` (the ``sim-http`` venue reads alerts with it).

    Raises:
        VenueError: the row is not an alert as this module writes it.
    """
    try:
        account = row.get("account_id")
        return Alert(
            seq=int(row["seq"]),
            time_ms=int(row["time_ms"]),
            detector=str(row["detector"]),
            symbol=str(row["symbol"]),
            account_id=None if account is None else str(account),
            statistic=Decimal(str(row["statistic"])),
            threshold=Decimal(str(row["threshold"])),
            evidence={str(k): str(v) for k, v in dict(row.get("evidence") or {}).items()},
        )
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        msg = f"malformed alert from GET /control/alerts: {row!r} ({exc})"
        raise VenueError(msg) from None


async def alerts(request: web.Request) -> web.Response:
    """``GET /control/alerts[?since_ms=][&symbol=]``: alerts oldest first."""
    since = _query_int(request, "since_ms")  # read first: refused even when nothing matches
    wanted = request.query.get("symbol") or None
    rows = [
        alert_json(a)
        for a in request.app[ENGINE].monitor.since(since)
        if wanted in (None, a.symbol)
    ]
    return _reply(request, alerts=rows)
