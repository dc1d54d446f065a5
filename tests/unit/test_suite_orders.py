"""ORD checks where the rule they probe does not exist on a venue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from harness.model import Instrument
from harness.venue import VenueConfig, open_venue
from suites.test_orders import test_min_notional_boundary as ord_001


@pytest.mark.asyncio
async def test_ord_001_is_skipped_with_the_reason_where_no_minimum_notional_is_published() -> None:
    venue = await open_venue("sim", VenueConfig(seed=1))
    try:
        published = await venue.instruments()
        zero = {s: replace(i, min_notional=Decimal(0)) for s, i in published.items()}

        async def instruments() -> Mapping[str, Instrument]:
            return zero  # as OKX publishes them: sizes limited, notionals not

        venue.instruments = instruments  # type: ignore[method-assign]
        none: Any = None  # the check ends before it needs an account or a context
        with pytest.raises(pytest.skip.Exception, match="publishes no minimum notional"):
            await ord_001(venue=venue, account=none, ctx=none)
    finally:
        await venue.close()
