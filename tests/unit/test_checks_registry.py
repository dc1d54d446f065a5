"""The check registry refuses malformed declarations, naming the culprit and the fix."""

from __future__ import annotations

from decimal import Decimal

import pytest

from harness.checks import REGISTRY, CheckContext, CheckSpec, check
from harness.errors import CheckDefinitionError, CheckFailed


def _spec() -> CheckSpec:
    return CheckSpec(
        id="ORD-999",
        area="ORD",
        title="t",
        rule="t",
        source="s",
        needs=frozenset(),
        qualname="f",
        module="m",
    )


def test_malformed_ids_are_refused() -> None:
    with pytest.raises(CheckDefinitionError, match="must look like 'LIQ-001'"):
        check("LIQ-1")
    with pytest.raises(CheckDefinitionError, match="unknown area 'XYZ'"):
        check("XYZ-001")


def test_docstring_needs_a_source_line() -> None:
    with pytest.raises(CheckDefinitionError, match=r"Source: perp-mechanics\.md"):

        @check("ORD-990")
        async def no_source(ctx: CheckContext) -> None:
            """A rule without a source."""


def test_check_must_be_async_and_take_ctx() -> None:
    with pytest.raises(CheckDefinitionError, match="must be an 'async def'"):

        @check("ORD-991")  # type: ignore[arg-type]
        def not_async(ctx: CheckContext) -> None:
            """Rule.

            Source: §1
            """

    with pytest.raises(CheckDefinitionError, match="must take a 'ctx' parameter"):

        @check("ORD-992")
        async def no_ctx() -> None:
            """Rule.

            Source: §1
            """


def test_duplicate_ids_name_both_functions() -> None:
    @check("ORD-993")
    async def first(ctx: CheckContext) -> None:
        """Rule.

        Source: §1
        """

    with pytest.raises(
        CheckDefinitionError, match=r"ORD-993 is used twice: by .*first and by .*second"
    ):

        @check("ORD-993")
        async def second(ctx: CheckContext) -> None:
            """Rule.

            Source: §1
            """

    assert REGISTRY["ORD-993"].title == "Rule."
    assert REGISTRY["ORD-993"].source == "§1"


def test_context_records_each_comparison_kind() -> None:
    ctx = CheckContext(spec=_spec(), venue="sim", seed=1)
    assert ctx.equal(
        "eq", expected=Decimal("1.00"), observed=Decimal("1.05"), tolerance=Decimal("0.1")
    )
    assert not ctx.at_most("le", limit=Decimal(1), observed=Decimal(2))
    assert ctx.at_least("ge", limit=Decimal(1), observed=Decimal("0.95"), tolerance=Decimal("0.1"))
    assert not ctx.within("in", low=Decimal(1), high=Decimal(2), observed=Decimal(3))
    assert not ctx.equal("missing", expected=Decimal(1), observed=None)
    assert [m.passed for m in ctx.measurements] == [True, False, True, False, False]
    assert ctx.measurements[1].deviation == "1"
    assert ctx.measurements[3].expected == "[1, 2]"
    assert ctx.measurements[4].observed == "none reported"
    assert ctx.headline is ctx.measurements[1]
    with pytest.raises(CheckFailed, match=r"le: expected <= 1, observed 2 \(and 2 more\)") as info:
        ctx.finish()
    assert info.value.expected == "<= 1"
    assert info.value.observed == "2"


def test_long_decimals_are_shown_to_eight_places() -> None:
    ctx = CheckContext(spec=_spec(), venue="sim", seed=1)
    ctx.equal("x", expected=Decimal("57001.747409995333333"), observed=Decimal("60000.00000000"))
    assert ctx.measurements[0].expected == "57001.74741"
    assert ctx.measurements[0].observed == "60000"


def test_a_deviation_below_eight_places_keeps_its_size_and_zero_has_no_sign() -> None:
    ctx = CheckContext(spec=_spec(), venue="sim", seed=1)
    # A mark published to 8 places against the exact oracle value: not "-0".
    ctx.equal(
        "mark",
        expected=Decimal(180000820) / Decimal(3000),
        observed=Decimal("60000.27333333"),
        tolerance=Decimal("0.1"),
    )
    ctx.equal("same", expected=Decimal("-0"), observed=Decimal("0E-12"))
    mark, same = ctx.measurements
    assert mark.expected == mark.observed == "60000.27333333"
    assert mark.deviation == "-3.3E-9"
    assert (same.expected, same.observed, same.deviation) == ("0", "0", "0")


def test_headline_of_a_passed_check_skips_its_preconditions() -> None:
    ctx = CheckContext(spec=_spec(), venue="sim", seed=1)
    ctx.require("liquidated (precondition)", True, expected="yes", observed="yes")
    ctx.equal("the rule", expected=Decimal(1), observed=Decimal(1))
    assert ctx.headline is ctx.measurements[1]
    only = CheckContext(spec=_spec(), venue="sim", seed=1)
    only.require("a (precondition)", True, expected="yes", observed="yes")
    assert only.headline is only.measurements[0]
