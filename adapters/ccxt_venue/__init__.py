"""Venues over ``ccxt.async_support``: the simulator's HTTP server and real test environments.

* ``sim-http``: the simulator's Binance-dialect server on 127.0.0.1, driven through ccxt
  ``binanceusdm`` (:func:`open_sim_http_venue`), with the loopback control API as its
  :class:`~harness.venue.VenueControl`.
* ``binanceusdm-demo``, ``bybit-testnet``, ``okx-demo``: keys from the environment
  (:mod:`adapters.ccxt_venue.testnets`).

Layout: ``_wire`` (exact JSON, header observation, error translation), ``_base`` (what every
ccxt venue shares), ``clients`` (building and pointing the ccxt clients, mainnet refusal),
``binance_wire``/``binance``, ``bybit_wire``/``bybit``, ``okx_wire``/``okx`` (each venue's
dialect and parsing, then its Venue and Account), ``control`` (the simulator's control API and
virtual clock), ``simhttp`` and ``testnets`` (the factories behind the entry points).
"""

from __future__ import annotations

from adapters.ccxt_venue.binance import BinanceAccount, BinanceVenue
from adapters.ccxt_venue.bybit import BybitAccount, BybitVenue
from adapters.ccxt_venue.okx import OkxAccount, OkxVenue
from adapters.ccxt_venue.simhttp import SimHttpVenue, open_sim_http_venue
from adapters.ccxt_venue.testnets import (
    open_binanceusdm_demo,
    open_bybit_testnet,
    open_okx_demo,
)

__all__ = [
    "BinanceAccount",
    "BinanceVenue",
    "BybitAccount",
    "BybitVenue",
    "OkxAccount",
    "OkxVenue",
    "SimHttpVenue",
    "open_binanceusdm_demo",
    "open_bybit_testnet",
    "open_okx_demo",
    "open_sim_http_venue",
]
