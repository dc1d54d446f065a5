"""``perpcheck serve`` as a subprocess: one JSON line, a working venue, clean exit on signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import ccxt
import pytest

from tests.server.conftest import local_ccxt

CLI = [sys.executable, "-m", "harness.cli", "serve"]


def _start(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(  # noqa: S603 - our own CLI with fixed arguments
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    proc = _start("--seed", "3", "--api-key", "clikey", "--api-secret", "clisecret")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        yield proc, json.loads(line)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_serve_prints_one_json_line_and_serves_ccxt(
    served: tuple[subprocess.Popen[str], dict[str, Any]],
) -> None:
    proc, info = served
    assert set(info) == {"base_url", "ws_url", "control_token", "api_key", "api_secret", "seed"}
    assert info["ws_url"] == "ws" + info["base_url"].removeprefix("http")
    assert (info["api_key"], info["api_secret"], info["seed"]) == ("clikey", "clisecret", 3)
    assert info["base_url"].startswith("http://127.0.0.1:")
    ex = local_ccxt(ccxt, info["base_url"], info["api_key"], info["api_secret"])
    assert ex.fetch_balance()["USDT"]["total"] == 10000
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert (out, err) == ("", "")  # no traceback, nothing after the JSON line


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_serve_shuts_down_cleanly_on_sigterm(sig: signal.Signals) -> None:
    proc = _start("--port", "0")
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline())["seed"] >= 0
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    assert (proc.returncode, err) == (0, "")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--host", "0.0.0.0"], "--allow-remote"),  # noqa: S104 - the refusal under test
        (["--port", "70000"], "--port"),
        (["--seed", "-1"], "--seed"),
        (["--balance", "lots"], "--balance"),
        (["--api-key", "only"], "--api-secret"),
        (["--defect", "nope"], "unknown defect"),
        (["--scenario", "nope"], "unknown scenario"),
    ],
)
def test_serve_refuses_bad_input_in_one_line_with_status_2(args: list[str], needle: str) -> None:
    proc = subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [*CLI, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0]
