"""``perpcheck serve``: the simulator as a Binance USDⓈ-M venue on a local port.

Registered under the ``perpcheck.commands`` entry point (the harness never imports adapters):
prints exactly one JSON line ``{"base_url", "ws_url", "control_token", "api_key", "api_secret",
"seed"}``
and serves until SIGINT or SIGTERM, then shuts down cleanly and exits 0. A bad option is one
line on stderr and exit status 2 (a :class:`~harness.errors.ConfigError`, printed by the CLI).

``--restore FILE`` restarts from a snapshot (``POST /control/snapshot``): seed, defects,
scenario, accounts, keys and virtual time come from the file, so the options that would set
them are refused with it; an unreadable, corrupt or foreign file is one line and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import signal
import sys
from decimal import Decimal, InvalidOperation
from typing import Any

from harness.errors import ConfigError

__all__ = ["register"]

_KEY = re.compile(r"^[A-Za-z0-9]{1,128}$")


def register(sub: Any) -> None:
    """Add ``serve`` to the ``perpcheck`` subcommands."""
    serve = sub.add_parser(
        "serve",
        help="serve the simulator as a Binance USDⓈ-M venue over HTTP",
        description=(
            "Serve the simulator over HTTP in the Binance USDⓈ-M dialect (ccxt binanceusdm and "
            "Binance's connectors work against it) with a loopback control API. Prints one JSON "
            "line with the base URL, the control token, the API key and secret and the seed, "
            "then serves until interrupted."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    serve.add_argument("--port", default="0", help="port to listen on (default 0: any free)")
    serve.add_argument("--seed", default=None, help="simulator seed (default: random)")
    serve.add_argument("--scenario", default=None, help="scenario to load at start")
    serve.add_argument("--api-key", default=None, metavar="K", help="the first account's key")
    serve.add_argument("--api-secret", default=None, metavar="S", help="and its secret")
    serve.add_argument("--balance", default=None, help="the first account's USDT (10000)")
    serve.add_argument(
        "--defect",
        action="append",
        default=[],
        metavar="NAME",
        help="inject a named simulator defect (repeatable); see 'perpcheck defects'",
    )
    serve.add_argument(
        "--restore",
        default=None,
        metavar="FILE",
        help="restart from a snapshot taken with POST /control/snapshot (keys and state)",
    )
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (the control API still answers loopback only)",
    )
    serve.set_defaults(handler=_serve)


def _int(name: str, text: str, low: int, high: int) -> int:
    if not re.fullmatch(r"[0-9]{1,10}", text) or not low <= int(text) <= high:
        msg = f"{name} {text!r} must be an integer from {low} to {high}"
        raise ConfigError(msg)
    return int(text)


def _restore_file(args: argparse.Namespace) -> bytes | None:
    """The snapshot's bytes (``--restore``), refused with the options it replaces."""
    if args.restore is None:
        return None
    given = [
        option
        for option, value in (
            ("--seed", args.seed),
            ("--scenario", args.scenario),
            ("--balance", args.balance),
            ("--api-key", args.api_key),
            ("--api-secret", args.api_secret),
            ("--defect", args.defect or None),
        )
        if value is not None
    ]
    if given:
        msg = f"--restore takes the state from the snapshot; drop {', '.join(given)}"
        raise ConfigError(msg)
    try:
        with open(args.restore, "rb") as file:
            return file.read()
    except OSError as exc:
        msg = f"--restore {args.restore}: cannot read it ({exc.strerror or exc})"
        raise ConfigError(msg) from None


def _options(args: argparse.Namespace) -> dict[str, Any]:
    seed = (
        _int("--seed", args.seed, 0, 2**31 - 1)
        if args.seed is not None
        else secrets.randbelow(2**31)
    )
    port = _int("--port", args.port, 0, 65535)
    try:
        balance = Decimal("10000" if args.balance is None else args.balance)
    except InvalidOperation:
        balance = Decimal("NaN")
    if not balance.is_finite() or balance < 0:
        msg = f"--balance {args.balance!r} must be a non-negative number of USDT"
        raise ConfigError(msg)
    if (args.api_key is None) != (args.api_secret is None):
        msg = "give both --api-key and --api-secret, or neither (both are then generated)"
        raise ConfigError(msg)
    if args.api_key is not None and not _KEY.match(args.api_key):
        msg = f"--api-key must be 1 to 128 letters and digits, got {args.api_key!r}"
        raise ConfigError(msg)
    if args.api_secret is not None and not args.api_secret:
        msg = "--api-secret must not be empty"
        raise ConfigError(msg)
    return {"seed": seed, "port": port, "balance": balance}


def _serve(args: argparse.Namespace) -> int:
    from adapters.sim.defects import validate_defects
    from adapters.sim.server.runner import is_loopback_host

    restore = _restore_file(args)
    options = _options(args)
    validate_defects(args.defect)
    if not args.allow_remote and not is_loopback_host(args.host):
        msg = (
            f"--host {args.host} is not a loopback address: the simulator serves funded "
            "accounts and a market anyone could move; pass --allow-remote to listen there anyway"
        )
        raise ConfigError(msg)
    return asyncio.run(_run(args, restore=restore, **options))


async def _run(
    args: argparse.Namespace, *, seed: int, port: int, balance: Decimal, restore: bytes | None
) -> int:
    from adapters.sim.server.runner import start_server
    from harness.venue import VenueConfig

    config = VenueConfig(
        seed=seed,
        defects=tuple(args.defect),
        scenario=args.scenario,
        options={"balance": format(balance, "f")},
    )
    handle = await start_server(
        None if restore is not None else config,
        host=args.host,
        port=port,
        api_key=args.api_key,
        api_secret=args.api_secret,
        allow_remote=args.allow_remote,
        restore=restore,
    )
    seed = handle.seed
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        line = {
            "base_url": handle.base_url,
            "ws_url": handle.ws_url,
            "control_token": handle.control_token,
            "api_key": handle.api_key,
            "api_secret": handle.api_secret,
            "seed": seed,
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await handle.stop()
    return 0
