"""RATE boundaries: a weight limit admits exactly its limit (binance-usdm-surface.md §4).

RATE-002 and RATE-003 provoke 429s far past a tightened limit. A limiter that refuses the
request which *reaches* the limit (``>=`` where the venue documents "exceed") passes those and
costs a client one request in every window; it shows only at the limit itself.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from harness.checks import CheckContext, check
from harness.errors import Banned, RateLimited
from harness.rate_probe import WeightLog, limit_answer, used_weight
from harness.venue import Capability, RateLimits, Venue, VenueControl
from suites.test_rate import LIMITS, SYMBOL

#: Calls made up to the limit (each of the cheapest documented weight).
CALLS = 5


@check("RATE-008", needs=LIMITS | {Capability.READ_RATE_LIMITS})
async def test_the_weight_limit_admits_exactly_its_limit(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """The request that reaches the weight limit is answered; the next is refused 429.

    The request that brings the minute's used weight exactly to the limit must be answered; the
    next one refused 429 (-1003) with a Retry-After, not banned. The limit is tightened to the
    used weight now plus five mark reads (premium index); the five are made at one virtual
    instant (no window can roll in between): each must be answered, the fifth publishing a used
    weight equal to the limit, and a sixth must be refused 429.

    Source: binance-usdm-surface.md §4 (REQUEST_WEIGHT per minute; exceed -> 429 -1003 +
    Retry-After; X-MBX-USED-WEIGHT-1M on every response)
    """
    weight = venue.rules.method_weights.get("mark", 1)
    if weight < 1:
        pytest.skip(f"{venue.name} documents no weight for a mark read: nothing to fill a limit")
    await venue.mark(SYMBOL)  # a response to read the window's weight from
    limit = used_weight(venue) + CALLS * weight
    await control.set_rate_limits(RateLimits(weight_per_minute=limit))
    log = WeightLog(venue)
    answered = reached = 0
    refused: RateLimited | None = None
    for _ in range(CALLS + 1):
        try:
            await venue.mark(SYMBOL)
        except RateLimited as exc:
            refused = exc
            log.after(answer=limit_answer(exc))
            break
        answered += 1
        log.after()
        if answered == CALLS:
            reached = used_weight(venue)
    await control.set_rate_limits(RateLimits())
    ctx.add_evidence(
        "weight",
        log.evidence(
            f"Used weight, mark read by mark read (weight {weight} each), up to the limit",
            [{"y": str(limit), "label": f"weight limit {limit} / min"}],
        ),
    )
    ctx.equal(
        f"reads answered before the first refusal (the limit is reached by read {CALLS})",
        expected=Decimal(CALLS),
        observed=Decimal(answered),
    )
    if answered >= CALLS:
        ctx.equal(
            "used weight published with the read that reaches the limit",
            expected=Decimal(limit),
            observed=Decimal(reached),
        )
    ctx.require(
        "the read past the limit is refused 429 -1003 with a Retry-After (not banned)",
        refused is not None
        and not isinstance(refused, Banned)
        and refused.code == -1003
        and refused.retry_after is not None
        and refused.retry_after > 0,
        expected="429 -1003, Retry-After > 0",
        observed="answered"
        if refused is None
        else f"{limit_answer(refused)} {refused.code}, Retry-After {refused.retry_after}",
    )
