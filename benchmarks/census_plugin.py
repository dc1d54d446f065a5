"""pytest plugin of benchmarks/http_census.py: count the sim server's requests, check by check.

Loaded into a ``perpcheck run --venue sim-http`` (``-p census_plugin`` with this folder on the
path). It wraps the server's outermost middleware (``adapters.sim.server.app.errors``, which
``create_app`` looks up each time it builds a server) with one that counts each request by
method and route, and writes ``{node id: {"METHOD /route": count}}`` to the file named by
``PERPCHECK_CENSUS`` when the session ends. Measurement only: the answers are the server's own.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import adapters.sim.server.app as server_app

_counts: Counter[str] = Counter()
_by_check: dict[str, dict[str, int]] = {}
_inner = server_app.errors


@web.middleware
async def _counting(request: web.Request, handler: Any) -> web.StreamResponse:
    route = request.match_info.route.resource
    path = route.canonical if route is not None else request.path
    _counts[f"{request.method} {path}"] += 1
    return await _inner(request, handler)


server_app.errors = _counting  # create_app reads it at call time


def pytest_runtest_setup(item: pytest.Item) -> None:
    _counts.clear()


def pytest_runtest_teardown(item: pytest.Item) -> None:
    _by_check[item.nodeid] = dict(_counts)


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get("PERPCHECK_CENSUS")
    if out:
        Path(out).write_text(json.dumps(_by_check, indent=1, sort_keys=True), encoding="utf-8")
