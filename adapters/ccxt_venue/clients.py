"""Building the ccxt clients: where they point, how they sign, which hooks they carry.

Every client gets :func:`~adapters.ccxt_venue._wire.install` (exact JSON, header observation,
the venue's error dialect). Real-venue URLs are passed through :func:`harness.safety.check_url`
before a client exists, so a production host is refused unless mainnet was allowed.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

from adapters.ccxt_venue._ccxt import exchange_class
from adapters.ccxt_venue._wire import Dialect, Wire, install
from adapters.ccxt_venue.binance_wire import binance_dialect
from harness.safety import REDACTOR, check_url

__all__ = ["binance_client", "bybit_client", "okx_client", "real_urls"]

_BINANCE_OPTIONS: dict[str, Any] = {
    "fetchCurrencies": False,  # else load_markets calls sapi/v1/capital/config/getall
    "fetchMargins": False,
    "fetchMarkets": {"types": ["linear"]},
    "adjustForTimeDifference": False,
    "recvWindow": 10_000,
}


def _keep_params(params: Any, api: Any = None, path: Any = None, method: Any = None) -> Any:
    """Replaces ccxt's broker client-id injection: the harness names its own orders, and an
    order it did not name keeps the id the venue gives it (as on the in-process simulator)."""
    return params


def real_urls(exchange: Any) -> list[str]:
    """Every REST base URL a ccxt client may call (``urls['api']`` strings, hostname imploded)."""
    api = exchange.urls.get("api", {})
    values = api.values() if isinstance(api, dict) else [api]
    return [exchange.implode_hostname(v) for v in values if isinstance(v, str)]


@functools.cache
def _ssl_context(cafile: str) -> ssl.SSLContext:
    """One verifying context per CA file for every client of the process.

    ccxt builds its own on each client's first request (``ssl.create_default_context`` reads
    and parses the whole CA bundle: tens of milliseconds); a run makes a client per account and
    check. A context is made to be shared between connections; verification is unchanged.
    """
    return ssl.create_default_context(cafile=cafile)


def _share_ssl_context(exchange: Any) -> None:
    """Give ``exchange`` the process's context where ccxt would build the same one itself."""
    if exchange.verify and not exchange.safe_bool(
        exchange.options, "include_OS_certificates", False
    ):
        exchange.ssl_context = _ssl_context(exchange.cafile)


def _guard(exchange: Any, allow_mainnet: bool, *, demo: bool = False) -> None:
    for url in real_urls(exchange):
        check_url(url, allow_mainnet=allow_mainnet, demo=demo)


def binance_client(
    *,
    api_key: str,
    secret: str,
    wire: Wire,
    base_url: str | None = None,
    demo: bool = False,
    allow_mainnet: bool = False,
    dialect: Dialect = binance_dialect,
) -> Any:
    """A ``binanceusdm`` client: pointed at ``base_url`` (the simulator), or at demo trading.

    With ``base_url`` every ``urls['api']`` string is redirected there (a stray call hits the
    simulator, never the internet), rate limiting is the server's business (ccxt's throttle
    off), and the linear error table is merged so ccxt's classes match the real venue's.
    """
    # The simulator's keys guard nothing, but they are scrubbed like real ones: the same
    # redaction runs on sim-http in CI as on a testnet.
    REDACTOR.register(api_key, secret)
    ex = exchange_class("binanceusdm")(
        {
            "apiKey": api_key,
            "secret": secret,
            "enableRateLimit": base_url is None,
            "options": dict(_BINANCE_OPTIONS),
        }
    )
    if base_url is not None:
        for key, value in list(ex.urls["api"].items()):
            if isinstance(value, str):
                path = value.split("binance.com", 1)[1] if "binance.com" in value else ""
                ex.urls["api"][key] = base_url.rstrip("/") + path
        ex.exceptions["exact"].update(ex.exceptions["linear"]["exact"])
        ex.timeout_on_exit = 0  # ccxt waits 250 ms on close for TLS; plain loopback needs none
    else:
        if demo:
            ex.enable_demo_trading(True)  # sandbox mode is refused for USDⓈ-M futures
        _guard(ex, allow_mainnet)
    ex.handle_client_order_id = _keep_params
    _share_ssl_context(ex)
    return install(ex, wire, dialect)


def bybit_client(
    *, api_key: str, secret: str, wire: Wire, dialect: Dialect, allow_mainnet: bool = False
) -> Any:
    """A ``bybit`` client on the testnet (``set_sandbox_mode``), linear contracts by default."""
    REDACTOR.register(api_key, secret)
    ex = exchange_class("bybit")(
        {
            "apiKey": api_key,
            "secret": secret,
            "enableRateLimit": True,
            "options": {"defaultType": "swap", "defaultSubType": "linear", "recvWindow": 5000},
        }
    )
    ex.set_sandbox_mode(True)
    _guard(ex, allow_mainnet)
    _share_ssl_context(ex)
    return install(ex, wire, dialect)


def okx_client(
    *,
    api_key: str,
    secret: str,
    password: str,
    wire: Wire,
    dialect: Dialect,
    allow_mainnet: bool = False,
) -> Any:
    """An ``okx`` client in demo trading: ccxt's sandbox mode sets ``x-simulated-trading: 1``
    on the production host, which :func:`check_url` accepts only with that header set."""
    REDACTOR.register(api_key, secret, password)
    ex = exchange_class("okx")(
        {
            "apiKey": api_key,
            "secret": secret,
            "password": password,
            "enableRateLimit": True,
            "options": {"defaultType": "swap"},
        }
    )
    ex.set_sandbox_mode(True)
    demo = ex.headers.get("x-simulated-trading") == "1"
    _guard(ex, allow_mainnet, demo=demo)
    _share_ssl_context(ex)
    return install(ex, wire, dialect)
