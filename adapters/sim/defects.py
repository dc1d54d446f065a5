"""Named, realistic venue bugs the simulator can be run with (DESIGN.md "Check power").

A check that cannot fail proves nothing: ``perpcheck run --defect NAME`` runs the suites against
a simulator with the bug switched on, and the test suite proves each defect makes the checks in
``EXPECTED_FAILURES`` fail while the clean simulator passes them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.errors import ConfigError

__all__ = ["DEFECTS", "Defect", "catalog", "validate_defects"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Defect:
    name: str
    description: str
    breaks: tuple[str, ...]  # check IDs that must fail under this defect


DEFECTS: dict[str, Defect] = {
    d.name: d
    for d in (
        Defect(
            name="min-notional-off-by-one",
            description="rejects orders whose notional equals the minimum (<= instead of <)",
            breaks=("ORD-001",),
        ),
        Defect(
            name="price-rounded-to-tick",
            description="silently rounds an off-tick price to the tick instead of rejecting it",
            breaks=("ORD-002",),
        ),
        Defect(
            name="qty-rounded-to-step",
            description="silently rounds an off-step quantity to the step instead of rejecting it",
            breaks=("ORD-003",),
        ),
        Defect(
            name="post-only-takes",
            description="a post-only (GTX) order that would cross executes as a taker",
            breaks=("ORD-004",),
        ),
        Defect(
            name="ioc-remainder-rests",
            description="the unfilled part of an IOC order rests on the book like GTC",
            breaks=("ORD-005",),
        ),
        Defect(
            name="reduce-only-ignored",
            description="the reduce-only flag is ignored: such orders can grow or flip a position",
            breaks=("ORD-006",),
        ),
        Defect(
            name="duplicate-client-id-accepted",
            description="a second order with an existing client order id is accepted",
            breaks=("ORD-007",),
        ),
        Defect(
            name="maker-charged-taker-fee",
            description="maker fills are charged the taker rate",
            breaks=("ORD-008",),
        ),
        Defect(
            name="fee-on-mark-price",
            description="trading fees are computed on the mark price, not on each fill's price",
            breaks=("ORD-008", "ORD-009"),
        ),
        Defect(
            name="mark-is-last",
            description="the mark price is the last traded price instead of the median rule",
            breaks=("MARK-001", "MARK-002", "MARK-003", "LIQ-003", "MARK-006"),
        ),
        Defect(
            name="mark-lags-index",
            description="the mark is recomputed only every fifth update, lagging the index",
            breaks=("MARK-003",),
        ),
        Defect(
            name="upnl-on-last",
            description="unrealized PnL and margin are computed on the last price, not the mark",
            breaks=("MARK-004", "MARK-006"),
        ),
        Defect(
            name="realized-pnl-on-mark",
            description="a closing fill's realized PnL is booked at the mark, not its own price",
            breaks=("MARK-007",),
        ),
        Defect(
            name="entry-tier-for-liquidation",
            description="the liquidation price uses the bracket at the entry notional",
            breaks=("LIQ-001",),
        ),
        Defect(
            name="cross-ignores-other-positions",
            description="cross liquidation prices ignore the other positions' PnL and maintenance",
            breaks=("LIQ-002",),
        ),
        Defect(
            name="liquidate-on-last",
            description="the liquidation trigger is evaluated on the last price, not the mark",
            breaks=("LIQ-003",),
        ),
        Defect(
            name="maintenance-halved-in-trigger",
            description=(
                "the liquidation trigger compares the margin balance with half the maintenance "
                "margin (a rate mix-up), so liquidations come late"
            ),
            breaks=("LIQ-004",),
        ),
        Defect(
            name="double-liquidation-fee",
            description="the liquidation fee is charged twice",
            breaks=("LIQ-005", "LIQ-008"),
        ),
        Defect(
            name="close-whole-position",
            description="a partial liquidation closes the whole position instead of a step",
            breaks=("PLQ-001", "PLQ-005"),
        ),
        Defect(
            name="step-down-skips-tiers",
            description=(
                "tier step-down jumps to the lowest tier that restores margin instead of the "
                "next one down"
            ),
            breaks=("PLQ-002",),
        ),
        Defect(
            name="liquidate-by-account-id-order",
            description=(
                "simultaneous liquidations go to the book one by one in account-id order, so "
                "earlier accounts get better prices"
            ),
            breaks=("PLQ-003",),
        ),
        Defect(
            name="sizing-ignores-added-margin",
            description=(
                "the partial step is sized from the initial margin, ignoring margin added to an "
                "isolated position, so more collateral can mean a larger liquidation"
            ),
            breaks=("PLQ-004",),
        ),
        Defect(
            name="no-cooldown",
            description="fraction slices ignore the cooldown: a slice can follow a slice at once",
            breaks=("PLQ-006",),
        ),
        Defect(
            name="liquidation-without-price-limit",
            description="liquidation orders are sent without the bankruptcy-price limit",
            breaks=("PLQ-007",),
        ),
        Defect(
            name="adl-before-insurance",
            description="auto-deleveraging runs even while the insurance fund could take over",
            breaks=("PLQ-008",),
        ),
        Defect(
            name="depth-overstated",
            description="the published order book shows twice the resting quantity",
            breaks=("LIQ-007",),
        ),
        Defect(
            name="no-insurance-cover",
            description=(
                "liquidations are sent without the bankruptcy-price limit and a deficit is "
                "charged to the trader's other funds instead of the insurance fund"
            ),
            breaks=("LIQ-006",),
        ),
        Defect(
            name="funding-sign-flipped",
            description="funding is paid the wrong way round: with F > 0 shorts pay longs",
            breaks=("FUND-002", "FUND-004"),
        ),
        Defect(
            name="funding-paid-to-late-joiner",
            description=(
                "funding is settled on the positions held 60 s after the funding time, so a "
                "position opened just after it pays for an interval it never held"
            ),
            breaks=("FUND-002", "FUND-004"),
        ),
        Defect(
            name="funding-interest-clamp-ignored",
            description="the rate is P̄ + r, without clamping r − P̄ to ±0.05 %",
            breaks=("FUND-001",),
        ),
        Defect(
            name="funding-on-entry-notional",
            description="funding is paid on the entry notional (Q x entry) instead of Q x mark",
            breaks=("FUND-002", "FUND-003", "FUND-004"),
        ),
        Defect(
            name="funding-interval-switch-early",
            description=(
                "a funding-interval change applies from its announcement instead of its "
                "announced funding time"
            ),
            breaks=("FUND-005",),
        ),
        # Rate limits and faults (engine/gateway.py).
        Defect(
            name="weights-undercounted",
            description="every request counts 1 on the used weight, whatever its documented weight",
            breaks=("RATE-001",),
        ),
        Defect(
            name="429-without-retry-after",
            description="a 429 answer carries no Retry-After",
            breaks=("RATE-002",),
        ),
        Defect(
            name="no-ban",
            description="a client that keeps sending inside Retry-After gets 429 again, never 418",
            breaks=("RATE-003",),
        ),
        Defect(
            name="weight-limit-reached-refused",
            description=(
                "the request that brings the used weight exactly to the limit is refused "
                "(>= instead of >): one request fewer in every window"
            ),
            breaks=("RATE-008",),
        ),
        Defect(
            name="order-windows-ignored",
            description="the order-count windows (10 s, 1 min) are not enforced",
            breaks=("RATE-004",),
        ),
        Defect(
            name="lost-ack-id-not-indexed",
            description=(
                "an order whose acknowledgement was lost is not found by its client order id, "
                "so a careful resend creates a second order"
            ),
            breaks=("RATE-005",),
        ),
        Defect(
            name="maintenance-executes-orders",
            description=(
                "during maintenance an order placement still executes; only the answer is 503"
            ),
            breaks=("RATE-006",),
        ),
        Defect(
            name="transact-time-at-receipt",
            description=(
                "an order reports the time it was received, not when it executed, hiding latency"
            ),
            breaks=("RATE-007",),
        ),
        Defect(
            name="mark-stream-stale",
            description="the mark-price stream publishes the previous update's mark",
            breaks=("MARK-005",),
        ),
        Defect(
            name="mark-stream-gaps",
            description="every fifth mark update (by virtual second) is never published",
            breaks=("MARK-005",),
        ),
        Defect(
            name="liquidation-not-streamed",
            description="liquidation orders never appear on the forceOrder streams",
            breaks=("LIQ-009",),
        ),
        Defect(
            name="liquidation-fill-unreported",
            description="the user stream omits the execution reports of liquidation orders",
            breaks=("LIQ-009",),
        ),
        Defect(
            name="partial-steps-merged-on-stream",
            description=(
                "a partial-liquidation step is held back and published merged with the next step"
            ),
            breaks=("PLQ-009",),
        ),
        Defect(
            name="funding-update-wrong-reason",
            description="funding payments reach the user stream as ACCOUNT_UPDATE reason ORDER",
            breaks=("FUND-006",),
        ),
        Defect(
            name="depth-sequence-gap",
            description="one diff-depth update in 40 is never sent (its update ids are skipped)",
            breaks=("STRM-001",),
        ),
        Defect(
            name="depth-diff-level-dropped",
            description="diff-depth updates omit removed levels (quantity 0)",
            breaks=("STRM-001",),
        ),
        Defect(
            name="depth-pu-wrong",
            description=(
                "diff-depth pu is the previous diff the client received, hiding missed updates"
            ),
            breaks=("STRM-002",),
        ),
        Defect(
            name="param-trigger-ignored",
            description="the parameter controller changes a parameter whatever its trigger signal",
            breaks=("PARAM-001", "PARAM-007"),
        ),
        Defect(
            name="param-trigger-strict",
            description=(
                "parameter triggers compare strictly: a signal exactly at its tightening "
                "(relaxing) threshold does not act (> and < instead of >= and <=)"
            ),
            breaks=("PARAM-007",),
        ),
        Defect(
            name="no-announcement-lead",
            description="a parameter change takes effect when it is announced, without the lead",
            breaks=("PARAM-001",),
        ),
        Defect(
            name="no-cooldown-on-params",
            description="parameter changes ignore the cooling period (one per decision)",
            breaks=("PARAM-002", "PARAM-007"),
        ),
        Defect(
            name="no-hysteresis",
            description=(
                "parameter triggers use one threshold for tightening and relaxing (and the "
                "funding interval reverts after one calm settlement), so a signal near it flaps"
            ),
            breaks=("PARAM-003", "PARAM-007"),
        ),
        Defect(
            name="advisor-unclamped",
            description="an advisor's output is applied without the bounds and the maximum step",
            breaks=("PARAM-004", "PARAM-007"),
        ),
        Defect(
            name="audit-log-wrong-applied",
            description="the audit log records the advisor's raw output as the applied value",
            breaks=("PARAM-005",),
        ),
        Defect(
            name="audit-log-omits-verdicts",
            description="the audit log keeps only failed guardrail verdicts",
            breaks=("PARAM-005",),
        ),
        Defect(
            name="tightening-without-grace",
            description=(
                "a tightened margin requirement is used by the liquidation engine from its "
                "announcement, before its announced effective time"
            ),
            breaks=("PARAM-006",),
        ),
        Defect(
            name="concentration-thresholds-off",
            description=(
                "concentration levels use thresholds 20 % above the documented ones, so warnings "
                "come late"
            ),
            breaks=("CONC-001",),
        ),
        Defect(
            name="size-advice-ignores-depth",
            description=(
                "size advice looks at the top of the book only, as if the whole closing side "
                "rested at the best price"
            ),
            breaks=("CONC-002",),
        ),
        Defect(
            name="cascade-ignores-shared-collateral",
            description=(
                "a cross account is liquidated only when one position's loss alone eats the "
                "wallet: each symbol's equity ignores the other positions' losses"
            ),
            breaks=("CASC-001",),
        ),
        Defect(
            name="liquidations-bypass-book",
            description=(
                "forced closes never reach the book: the insurance fund takes each at the "
                "bankruptcy price and keeps it, so forced flow moves no price"
            ),
            breaks=("CASC-002",),
        ),
        Defect(
            name="latency-ignored",
            description="the configured liquidation-engine latency is accepted but never applied",
            breaks=("CASC-003",),
        ),
        Defect(
            name="monitor-blind-to-cancels",
            description="the anomaly monitor never sees cancels: a cancel burst raises no alert",
            breaks=("ANOM-001",),
        ),
        Defect(
            name="leverage-window-too-short",
            description=(
                "the leverage-cluster window of 60 s is read as 60 ms: raises a few seconds "
                "apart never cluster"
            ),
            breaks=("ANOM-002",),
        ),
        Defect(
            name="thin-book-counts-new-orders",
            description=(
                "the thin-book test counts the clustering orders' own notional as depth, so a "
                "large enough cluster makes the book look deep and raises no alert"
            ),
            breaks=("ANOM-003",),
        ),
        Defect(
            name="early-warning-late",
            description=(
                "the cascade early warning sums liquidations that already happened instead of "
                "positions a small move would liquidate: it fires after the cascade has begun"
            ),
            breaks=("ANOM-004",),
        ),
    )
}


def validate_defects(names: Iterable[str]) -> frozenset[str]:
    """The set of defect names; a :class:`ConfigError` listing the valid ones otherwise."""
    chosen = frozenset(names)
    unknown = sorted(chosen - DEFECTS.keys())
    if unknown:
        msg = f"unknown defect(s) {', '.join(unknown)}; choose from: {', '.join(sorted(DEFECTS))}"
        raise ConfigError(msg)
    return chosen


def catalog() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Name -> (description, check IDs it breaks); entry point ``perpcheck.defects``."""
    return {d.name: (d.description, d.breaks) for d in DEFECTS.values()}
