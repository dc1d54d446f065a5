"""Safety: mainnet refusal, notional caps, run-prefixed client ids, cleanup, redaction."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest

from adapters.sim.venue import open_sim_venue
from harness.errors import ConfigError
from harness.model import ClientOrderId, OrderRequest, OrderType, Side, TimeInForce
from harness.safety import (
    MainnetRefused,
    NotionalGuard,
    Redactor,
    SafeAccount,
    SafetyRefused,
    check_url,
    run_prefix,
)
from harness.streams import OrderEvent, as_account_sees, select
from harness.venue import Account, Venue, VenueConfig

D = Decimal


async def _safe_on_sim() -> tuple[Venue, Account, SafeAccount]:
    """A sim venue, its account, and that account behind a SafeAccount with prefix ``pcT1-``."""
    venue = await open_sim_venue(VenueConfig(seed=1))
    inner = venue.account()

    async def mark_of(symbol: str) -> Decimal:
        return (await venue.mark(symbol)).mark_price

    return venue, inner, SafeAccount(inner, prefix="pcT1-", guard=NotionalGuard(), mark_of=mark_of)


def test_production_urls_are_refused_without_allow_mainnet() -> None:
    for url in ("https://fapi.binance.com/fapi/v1", "https://api.bybit.com", "https://www.okx.com"):
        with pytest.raises(MainnetRefused, match="production endpoint"):
            check_url(url)
        check_url(url, allow_mainnet=True)
    assert issubclass(MainnetRefused, ConfigError)
    check_url("https://demo-fapi.binance.com/fapi/v1")
    check_url("https://api-testnet.bybit.com")
    check_url("https://www.okx.com", demo=True)  # OKX demo shares the host, selected by a header
    check_url("http://127.0.0.1:8080/fapi/v1")


def _limit(qty: str, price: str, *, reduce_only: bool = False) -> OrderRequest:
    return OrderRequest(
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=D(qty),
        price=D(price),
        time_in_force=TimeInForce.GTC,
        reduce_only=reduce_only,
    )


def test_notional_caps_refuse_before_sending_and_spare_reduce_only() -> None:
    guard = NotionalGuard(per_order=D(5000), per_run=D(8000))
    guard.admit(_limit("0.05", "60000"), D(60000))  # 3000
    with pytest.raises(SafetyRefused, match="per-order cap 5000"):
        guard.admit(_limit("0.1", "60000"), D(60000))  # 6000
    guard.admit(_limit("0.08", "60000"), D(60000))  # 3000 + 4800 = 7800
    with pytest.raises(SafetyRefused, match="per-run cap 8000"):
        guard.admit(_limit("0.005", "60000"), D(60000))  # 7800 + 300 > 8000
    guard.admit(_limit("1", "60000", reduce_only=True), D(60000))  # reduce-only: never refused
    assert guard.used == D(7800)


def test_run_prefix_is_short_and_venue_safe() -> None:
    prefix = run_prefix("20261125T101500Z-sim-s42")
    assert prefix == "pc0Zsims42-"  # the last 8 alphanumerics of the run id
    assert len(prefix) <= 11
    assert all(c.isalnum() or c == "-" for c in prefix)


def test_safe_account_prefixes_ids_both_ways_and_cleans_up_what_the_run_opened() -> None:
    async def scenario() -> None:
        venue, inner, safe = await _safe_on_sim()
        order = await safe.place_order(
            OrderRequest(
                symbol="BTCUSDT",
                side=Side.BUY,
                type=OrderType.LIMIT,
                quantity=D("0.01"),
                price=D(50000),
                client_order_id=ClientOrderId("mine"),
            )
        )
        assert order.client_order_id == "mine"
        (raw,) = await inner.open_orders("BTCUSDT")
        assert raw.client_order_id == "pcT1-mine"
        assert (
            await safe.get_order("BTCUSDT", client_order_id=ClientOrderId("mine"))
        ).order_id == raw.order_id
        await safe.place_order(
            OrderRequest(symbol="BTCUSDT", side=Side.BUY, type=OrderType.MARKET, quantity=D("0.01"))
        )
        report = await safe.cleanup()
        assert report.cancelled == ["pcT1-mine"]
        assert report.flattened == [("BTCUSDT", "0.01")]
        assert await inner.open_orders("BTCUSDT") == []
        assert await inner.positions() == []
        await venue.close()

    asyncio.run(scenario())


def test_redactor_scrubs_registered_secrets_signatures_and_key_headers() -> None:
    redact = Redactor()
    redact.register("my-api-key-123", "s3cr3t-value", None, "")
    text = (
        "GET /fapi/v3/account?timestamp=1&signature=3c661234138461fcc7a7d8746c6558c9842d4e10 "
        "headers {'X-MBX-APIKEY': 'my-api-key-123'} secret=s3cr3t-value"
    )
    clean = redact(text)
    assert "my-api-key-123" not in clean
    assert "s3cr3t-value" not in clean
    assert "3c661234138461fc" not in clean
    assert "signature=[redacted]" in clean


def test_redacting_log_filter(caplog: pytest.LogCaptureFixture) -> None:
    redact = Redactor()
    redact.register("supersecretkey")
    logger = logging.getLogger("perpcheck.test.redaction")
    logger.addFilter(redact.logging_filter())
    with caplog.at_level(logging.INFO, logger="perpcheck.test.redaction"):
        logger.info("using key %s", "supersecretkey")
    assert "supersecretkey" not in caplog.text
    assert "[redacted]" in caplog.text


def test_a_stream_opened_for_the_safe_account_shows_the_checks_own_client_ids() -> None:
    async def scenario() -> None:
        venue, inner, safe = await _safe_on_sim()
        raw_stream = await venue.stream(["BTCUSDT"], account=inner)
        own_stream = await venue.stream(["BTCUSDT"], account=safe)
        assert as_account_sees(raw_stream, inner) is raw_stream  # nothing to translate
        await safe.place_order(
            OrderRequest(
                symbol="BTCUSDT",
                side=Side.BUY,
                type=OrderType.LIMIT,
                quantity=D("0.01"),
                price=D(50000),
                time_in_force=TimeInForce.GTC,
                client_order_id=ClientOrderId("mine"),
            )
        )
        own = [e.client_order_id for e in select(await own_stream.drain(), OrderEvent)]
        raw = [e.client_order_id for e in select(await raw_stream.drain(), OrderEvent)]
        assert (own, raw) == (["mine"], ["pcT1-mine"])
        assert own_stream.reconnects == raw_stream.reconnects == 0
        await own_stream.close()
        await raw_stream.close()
        await venue.close()

    asyncio.run(scenario())
