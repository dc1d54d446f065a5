"""The event loop the checks run on: uvloop where it is installed, else asyncio's own.

Every check awaits its venue; over HTTP (``sim-http``, the testnets) most of a request's cost
outside the venue is the loop's socket and transport work, which uvloop (libuv) does in C.
The choice changes speed only: checks see the same ``asyncio`` API, and virtual time never
waits on the loop's timers. ``--event-loop asyncio`` (ini ``perpcheck_event_loop``) keeps
asyncio's loop, e.g. to rule the loop out when a check misbehaves.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os

from harness.errors import ConfigError

__all__ = ["CHOICES", "loop_name", "loop_policy"]

CHOICES = ("auto", "uvloop", "asyncio")


def loop_policy(choice: str) -> asyncio.AbstractEventLoopPolicy:
    """The policy for ``choice`` (one of :data:`CHOICES`).

    Raises:
        ConfigError: an unknown choice, or ``uvloop`` asked for where it is not installed.
    """
    if choice not in CHOICES:
        msg = f"--event-loop {choice!r}: choose one of {', '.join(CHOICES)}"
        raise ConfigError(msg)
    if choice == "asyncio" or (choice == "auto" and importlib.util.find_spec("uvloop") is None):
        return asyncio.DefaultEventLoopPolicy()
    # libuv sets up an io_uring for each loop (for file operations, which the checks never ask
    # of it): about 8 ms of kernel time per loop, and pytest-asyncio makes a loop per check.
    # Off unless the user says otherwise (libuv reads it when the first loop starts; workers
    # inherit it).
    os.environ.setdefault("UV_USE_IO_URING", "0")
    try:
        import uvloop
    except ImportError:
        msg = "--event-loop uvloop: uvloop is not installed (pip install uvloop)"
        raise ConfigError(msg) from None
    policy: asyncio.AbstractEventLoopPolicy = uvloop.EventLoopPolicy()
    return policy


def loop_name(policy: asyncio.AbstractEventLoopPolicy | None = None) -> str:
    """``uvloop`` or ``asyncio``: the loop ``policy`` (default: the current one) makes."""
    policy = policy or asyncio.get_event_loop_policy()
    return "uvloop" if type(policy).__module__.startswith("uvloop") else "asyncio"
