"""Alerts a venue's anomaly monitor raises over its order flow (``READ_ALERTS``).

DESIGN.md guide item 10: early-warning anomalies beat late incident response. A venue that runs
streaming detectors over its order flow publishes each firing as an :class:`Alert`: when (virtual
time), which detector, on what symbol and account, the statistic it measured against its
threshold, and the evidence behind it (the window's counts). Alerts are venue-neutral records;
the detector names and reference thresholds below are those of the reference simulator
(``adapters/sim/engine/monitor.py``, PROTOCOL.md "Alerts"), which the ANOM checks judge by.

A venue with ``READ_ALERTS`` implements :class:`AlertSource` (``alerts(since_ms)``) next to the
:class:`~harness.venue.Venue` protocol; it is a protocol of its own so that venues without a
monitor (the testnets) need not implement it. Checks read alerts with :func:`read_alerts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol, runtime_checkable

from harness.errors import Missing

__all__ = [
    "CANCEL_BURST",
    "CASCADE_RISK",
    "DETECTORS",
    "LEVERAGE_CLUSTER",
    "THIN_BOOK_CLUSTER",
    "Alert",
    "AlertSource",
    "MonitorRules",
    "read_alerts",
]

#: Cancels of one account on one symbol in a sliding window of virtual time.
CANCEL_BURST = "cancel-burst"
#: Distinct accounts raising their leverage on one symbol in a sliding window.
LEVERAGE_CLUSTER = "leverage-cluster"
#: New resting orders owning most of a thin book's depth near the mark.
THIN_BOOK_CLUSTER = "thin-book-cluster"
#: Positions a small mark move would liquidate, against the book depth that must absorb them.
CASCADE_RISK = "cascade-risk"
DETECTORS = (CANCEL_BURST, LEVERAGE_CLUSTER, THIN_BOOK_CLUSTER, CASCADE_RISK)


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One firing of one detector.

    ``statistic`` is what the detector measured when it fired and ``threshold`` what it compares
    against (a detector fires when ``statistic >= threshold``); ``evidence`` holds the window's
    figures as strings (decimals in plain notation), e.g. ``{"cancels": "20", "adds": "21"}``.
    ``seq`` numbers the venue's alerts from 1 in the order they fired.
    """

    seq: int
    time_ms: int
    detector: str
    symbol: str
    account_id: str | None
    statistic: Decimal
    threshold: Decimal
    evidence: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.seq < 1:
            msg = f"{self.seq=} must be >= 1"
            raise ValueError(msg)
        if not self.detector:
            msg = "an alert needs a detector name"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorRules:
    """The documented statistics and thresholds of the reference monitor (PROTOCOL.md "Alerts").

    Checks drive order flow just above and just below these to see each detector fire at the
    crossing and stay silent below it.
    """

    # cancel-burst: cancels by one account on one symbol within (t - window, t].
    cancel_window_ms: int = 10_000
    cancel_burst: int = 20
    # leverage-cluster: distinct accounts that raised leverage on one symbol within the window.
    leverage_window_ms: int = 60_000
    leverage_cluster: int = 5
    # thin-book-cluster: share of one side's depth within band_bps of the mark owned by orders
    # placed within the window, when the rest of that depth is below thin_depth (USDT notional).
    cluster_band_bps: Decimal = Decimal(50)
    cluster_window_ms: int = 60_000
    thin_depth: Decimal = Decimal(20_000)
    cluster_share: Decimal = Decimal("0.75")
    # cascade-risk: notional of positions a move of band_bps against them would liquidate,
    # divided by the opposite book's notional within band_bps of the mark.
    # Evaluated at an update at least cascade_every_ms after the previous evaluation.
    cascade_band_bps: Decimal = Decimal(200)
    cascade_ratio: Decimal = Decimal(1)
    cascade_every_ms: int = 5_000

    def __post_init__(self) -> None:
        for name in ("cancel_window_ms", "cancel_burst", "leverage_window_ms", "leverage_cluster"):
            if getattr(self, name) < 1:
                msg = f"{name}={getattr(self, name)} must be >= 1"
                raise ValueError(msg)
        if not Decimal(0) < self.cluster_share <= 1:
            msg = f"{self.cluster_share=} must be in (0, 1]"
            raise ValueError(msg)


@runtime_checkable
class AlertSource(Protocol):
    """A venue that publishes its anomaly monitor's alerts (``READ_ALERTS``)."""

    async def alerts(self, since_ms: int | None = None) -> list[Alert]:
        """Alerts fired at or after ``since_ms`` (all when None), oldest first."""
        ...


async def read_alerts(venue: object, since_ms: int | None = None) -> list[Alert]:
    """``venue.alerts(since_ms)``.

    Raises:
        Missing: the venue publishes no alerts (it is not an :class:`AlertSource`).
    """
    if not isinstance(venue, AlertSource):
        msg = f"{getattr(venue, 'name', venue)} does not publish anomaly alerts (READ_ALERTS)"
        raise Missing(msg)
    return await venue.alerts(since_ms)
