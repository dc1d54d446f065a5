"""The testnet venues without keys (skipped with the reason), with keys (pointed at the test
environment, never at production), and their mainnet refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.ccxt_venue._wire import Wire
from adapters.ccxt_venue.clients import binance_client, real_urls
from adapters.ccxt_venue.testnets import env_credentials
from harness.errors import ConfigError, VenueUnavailable
from harness.safety import MainnetRefused
from harness.venue import (
    REFERENCE_REJECT_CODES,
    REJECT_REASONS,
    VenueConfig,
    VenueRules,
    open_venue,
)

TESTNETS = {
    "binanceusdm-demo": ("PERPCHECK_BINANCEUSDM_DEMO_API_KEY", "PERPCHECK_BINANCEUSDM_DEMO_SECRET"),
    "bybit-testnet": ("PERPCHECK_BYBIT_TESTNET_API_KEY", "PERPCHECK_BYBIT_TESTNET_SECRET"),
    "okx-demo": (
        "PERPCHECK_OKX_DEMO_API_KEY",
        "PERPCHECK_OKX_DEMO_SECRET",
        "PERPCHECK_OKX_DEMO_PASSWORD",
    ),
}


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for names in TESTNETS.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)


@pytest.mark.asyncio
@pytest.mark.parametrize("venue", sorted(TESTNETS))
async def test_without_keys_the_venue_is_unavailable_naming_the_variables(venue: str) -> None:
    with pytest.raises(VenueUnavailable) as caught:
        await open_venue(venue, VenueConfig())
    for name in TESTNETS[venue]:
        assert name in str(caught.value)
    assert isinstance(caught.value, ConfigError)


def test_a_partial_set_of_keys_names_only_what_is_missing() -> None:
    env = {"PERPCHECK_OKX_DEMO_API_KEY": "k", "PERPCHECK_OKX_DEMO_SECRET": "s"}
    with pytest.raises(VenueUnavailable, match="PERPCHECK_OKX_DEMO_PASSWORD") as caught:
        env_credentials("okx-demo", password=True, environ=env)
    assert "API_KEY" not in str(caught.value)
    assert env_credentials("okx-demo", environ=env) == ("k", "s", None)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("venue", "hosts"),
    [
        ("binanceusdm-demo", {"demo-fapi.binance.com", "demo-api.binance.com"}),
        ("bybit-testnet", {"api-testnet.bybit.com"}),
        ("okx-demo", {"www.okx.com"}),
    ],
)
async def test_with_keys_every_url_is_the_test_environment(
    venue: str, hosts: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in TESTNETS[venue]:
        monkeypatch.setenv(name, "fake-credential")
    opened = await open_venue(venue, VenueConfig())
    try:
        exchange = opened.exchange  # type: ignore[attr-defined]
        used = {
            u.split("/")[2]
            for u in real_urls(exchange)
            if "fapi" in u or "bybit" in u or "okx" in u
        }
        assert used <= hosts
        if venue == "okx-demo":
            assert exchange.headers["x-simulated-trading"] == "1"
        assert opened.control is None
        assert not {c for c in opened.capabilities if c.value.startswith("CONTROL_")}
    finally:
        await opened.close()


def test_a_production_binance_client_is_refused_without_allow_mainnet() -> None:
    with pytest.raises(MainnetRefused):
        binance_client(api_key="k" * 10, secret="s" * 10, wire=Wire())


@pytest.mark.asyncio
async def test_unknown_venue_options_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TESTNETS["bybit-testnet"]:
        monkeypatch.setenv(name, "fake-credential")
    with pytest.raises(ConfigError, match="balance"):
        await open_venue("bybit-testnet", VenueConfig(options={"balance": "1"}))


def test_checks_on_a_venue_without_keys_are_skipped_with_the_reason(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_keys='''
from harness.checks import check
from harness.venue import Capability


@check("ORD-951", needs={Capability.TRADE})
async def test_needs_a_venue(venue, ctx):
    """A check that needs the venue.

    Source: none §0
    """
'''
    )
    out = pytester.path / "out"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--venue", "bybit-testnet", "--report-dir", str(out), "-rs"
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*PERPCHECK_BYBIT_TESTNET_API_KEY*"])
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    (row,) = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert row["status"] == "skipped"
    assert "PERPCHECK_BYBIT_TESTNET_SECRET" in str(row["message"])
    assert Path(run_dir / "run.json").exists()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("venue", "known"),
    [("binanceusdm-demo", True), ("bybit-testnet", False), ("okx-demo", False)],
)
async def test_order_refusal_codes_are_the_references_or_left_unjudged(
    venue: str, known: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ORD checks judge a refusal's code only where the venue's code table is known: the
    reference dialect's (Binance's) on binanceusdm-demo; none (any refusal counts, its code
    shown) on Bybit and OKX, whose codes for these refusals are not confirmed against them."""
    for name in TESTNETS[venue]:
        monkeypatch.setenv(name, "fake-credential")
    opened = await open_venue(venue, VenueConfig())
    try:
        codes = opened.rules.reject_codes
        assert codes == (REFERENCE_REJECT_CODES if known else {})
    finally:
        await opened.close()


def test_the_reference_refusal_codes_cover_every_reason_the_checks_name() -> None:
    assert set(REFERENCE_REJECT_CODES) == set(REJECT_REASONS)
    assert VenueRules().reject_codes == REFERENCE_REJECT_CODES  # the simulator's dialect
