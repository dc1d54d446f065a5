"""Venues ``binanceusdm-demo``, ``bybit-testnet`` and ``okx-demo``: real test environments.

Keys come from the environment, ``PERPCHECK_<VENUE>_API_KEY`` / ``_SECRET`` / ``_PASSWORD``
(venue name upper-cased, ``-`` → ``_``). Without them the factory raises
:class:`~harness.errors.VenueUnavailable`, which the plugin turns into skipped checks carrying
the message. Opening a venue sends nothing: the first request is the first check's.

``binanceusdm-demo`` has event streams (``READ_STREAMS``) at :data:`BINANCE_DEMO_STREAMS`; with
no barrier on a real venue, a drain reads for ``stream_drain_ms`` of wall time (venue option,
default 500) and returns what has arrived. Bybit and OKX streams are not implemented.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType

from adapters.ccxt_venue._wire import Wire
from adapters.ccxt_venue.binance import DEMO_WEIGHTS, BinanceAccount, BinanceVenue
from adapters.ccxt_venue.bybit import BybitAccount, BybitVenue
from adapters.ccxt_venue.bybit_wire import bybit_dialect
from adapters.ccxt_venue.clients import binance_client, bybit_client, okx_client
from adapters.ccxt_venue.okx import OkxAccount, OkxVenue
from adapters.ccxt_venue.okx_wire import DEFAULT_SYMBOLS, Contracts, okx_dialect
from adapters.ccxt_venue.streams import StreamSettings
from harness.clock import WallClock
from harness.errors import ConfigError, VenueUnavailable
from harness.safety import check_url
from harness.venue import Capability, VenueConfig, VenueRules

__all__ = [
    "BINANCE_CAPABILITIES",
    "BINANCE_DEMO_STREAMS",
    "BYBIT_CAPABILITIES",
    "OKX_CAPABILITIES",
    "env_credentials",
    "open_binanceusdm_demo",
    "open_bybit_testnet",
    "open_okx_demo",
]

C = Capability
BINANCE_CAPABILITIES = frozenset(
    {
        C.TRADE,
        C.READ_BRACKETS,
        C.READ_FUNDING,
        C.READ_RATE_LIMITS,
        C.READ_LIQUIDATIONS,
        C.READ_STREAMS,
    }
)
BYBIT_CAPABILITIES = frozenset({C.TRADE, C.READ_BRACKETS, C.READ_FUNDING})
OKX_CAPABILITIES = frozenset({C.TRADE, C.READ_FUNDING})  # tiers are by size: see okx.py
# Bybit's and OKX's codes for the ORD checks' refusals (min notional, tick, step, post-only,
# FOK, duplicate client id) have not been confirmed against those venues: with no table, any
# refusal counts and the report shows the venue's own code (harness.venue.REJECT_REASONS).
UNKNOWN_REJECT_CODES: Mapping[str, frozenset[int]] = MappingProxyType({})

#: Binance USDⓈ-M demo trading's WebSocket streams (ccxt.pro ``urls['demo']['ws']['linear']``).
BINANCE_DEMO_STREAMS = "wss://fstream.binancefuture.com"
DRAIN_OPTION = "stream_drain_ms"


def env_credentials(
    venue: str, *, password: bool = False, environ: Mapping[str, str] | None = None
) -> tuple[str, str, str | None]:
    """``(api key, secret, password)`` for ``venue`` from the environment.

    Raises:
        VenueUnavailable: a variable is missing or empty (the message names each one).
    """
    env = os.environ if environ is None else environ
    prefix = "PERPCHECK_" + venue.upper().replace("-", "_")
    names = [f"{prefix}_API_KEY", f"{prefix}_SECRET"] + ([f"{prefix}_PASSWORD"] if password else [])
    missing = [n for n in names if not env.get(n)]
    if missing:
        msg = (
            f"{venue}: no API credentials; set {' and '.join(missing)} to run the checks "
            "against its test environment"
        )
        raise VenueUnavailable(msg)
    return env[names[0]], env[names[1]], env[names[2]] if password else None


def _no_options(name: str, config: VenueConfig, known: tuple[str, ...] = ()) -> None:
    unknown = sorted(set(config.options) - set(known))
    if unknown:
        msg = f"unknown venue option(s) {', '.join(unknown)} for {name}; known: {known or 'none'}"
        raise ConfigError(msg)


def _drain_ms(name: str, raw: str) -> int:
    if not raw.strip().isdigit():
        msg = f"{name}: {DRAIN_OPTION}={raw!r} must be a whole number of milliseconds, e.g. 500"
        raise ConfigError(msg)
    return int(raw)


async def open_binanceusdm_demo(config: VenueConfig) -> BinanceVenue:
    """Factory of venue ``binanceusdm-demo`` (Binance USDⓈ-M demo trading)."""
    name = "binanceusdm-demo"
    _no_options(name, config, (DRAIN_OPTION,))
    drain_ms = _drain_ms(name, config.options.get(DRAIN_OPTION, "500"))
    check_url(BINANCE_DEMO_STREAMS, allow_mainnet=config.allow_mainnet)
    key, secret, _ = env_credentials(name)
    wire = Wire()
    ex = binance_client(
        api_key=key, secret=secret, wire=wire, demo=True, allow_mainnet=config.allow_mainnet
    )
    account = BinanceAccount(ex, account_id=name, venue_name=name)
    return BinanceVenue(
        name=name,
        account=account,
        wire=wire,
        clock=WallClock(),
        capabilities=BINANCE_CAPABILITIES,
        rules=VenueRules(method_weights=DEMO_WEIGHTS),
        streams=StreamSettings(url=BINANCE_DEMO_STREAMS, drain_ms=drain_ms),
    )


async def open_bybit_testnet(config: VenueConfig) -> BybitVenue:
    """Factory of venue ``bybit-testnet`` (Bybit v5 testnet, unified account, linear)."""
    name = "bybit-testnet"
    _no_options(name, config)
    key, secret, _ = env_credentials(name)
    wire = Wire()
    ex = bybit_client(
        api_key=key,
        secret=secret,
        wire=wire,
        dialect=bybit_dialect,
        allow_mainnet=config.allow_mainnet,
    )
    return BybitVenue(
        name=name,
        account=BybitAccount(ex, venue_name=name),
        wire=wire,
        clock=WallClock(),
        capabilities=BYBIT_CAPABILITIES,
        rules=VenueRules(reject_codes=UNKNOWN_REJECT_CODES),
    )


async def open_okx_demo(config: VenueConfig) -> OkxVenue:
    """Factory of venue ``okx-demo`` (OKX demo trading); option ``symbols=A,B`` picks the
    instruments ``instruments()`` returns (OKX ids or the suites' names: ``BTC-USDT-SWAP`` or
    ``BTCUSDT``; default BTC-USDT-SWAP, ETH-USDT-SWAP), listed under the suites' names."""
    name = "okx-demo"
    _no_options(name, config, ("symbols",))
    key, secret, password = env_credentials(name, password=True)
    wire = Wire()
    ex = okx_client(
        api_key=key,
        secret=secret,
        password=password or "",
        wire=wire,
        dialect=okx_dialect,
        allow_mainnet=config.allow_mainnet,
    )
    contracts = Contracts(ex)
    raw = config.options.get("symbols", "")
    symbols = tuple(s.strip() for s in raw.split(",") if s.strip()) or DEFAULT_SYMBOLS
    return OkxVenue(
        name=name,
        account=OkxAccount(ex, contracts, venue_name=name),
        contracts=contracts,
        symbols=symbols,
        wire=wire,
        clock=WallClock(),
        capabilities=OKX_CAPABILITIES,
        rules=VenueRules(reject_codes=UNKNOWN_REJECT_CODES),
    )


# What `perpcheck venues` lists without keys and without connecting.
open_binanceusdm_demo.capabilities = BINANCE_CAPABILITIES  # type: ignore[attr-defined]
open_bybit_testnet.capabilities = BYBIT_CAPABILITIES  # type: ignore[attr-defined]
open_okx_demo.capabilities = OKX_CAPABILITIES  # type: ignore[attr-defined]
