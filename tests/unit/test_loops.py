"""The event-loop choice of the checks (harness/loops.py)."""

from __future__ import annotations

import asyncio
import importlib.util
import os

import pytest

from harness.errors import ConfigError
from harness.loops import CHOICES, loop_name, loop_policy

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


def test_asyncio_is_asyncios_own_loop() -> None:
    policy = loop_policy("asyncio")
    assert type(policy) is asyncio.DefaultEventLoopPolicy
    assert loop_name(policy) == "asyncio"


@pytest.mark.skipif(not HAS_UVLOOP, reason="uvloop is not installed here")
def test_auto_and_uvloop_make_uvloop_loops() -> None:
    for choice in ("auto", "uvloop"):
        policy = loop_policy(choice)
        assert loop_name(policy) == "uvloop"
        loop = policy.new_event_loop()
        try:
            assert type(loop).__module__.startswith("uvloop")
            assert loop.run_until_complete(asyncio.sleep(0, result=42)) == 42
        finally:
            loop.close()


def test_unknown_choice_is_a_config_error_naming_the_choices() -> None:
    with pytest.raises(ConfigError, match="choose one of auto, uvloop, asyncio"):
        loop_policy("trio")
    assert CHOICES == ("auto", "uvloop", "asyncio")


def test_without_uvloop_auto_falls_back_and_uvloop_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvloop" else real(name, *a)
    )
    monkeypatch.setitem(__import__("sys").modules, "uvloop", None)  # import raises ImportError
    assert loop_name(loop_policy("auto")) == "asyncio"
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        loop_policy("uvloop")


@pytest.mark.skipif(not HAS_UVLOOP, reason="uvloop is not installed here")
def test_uvloop_loops_start_without_io_uring_unless_the_user_set_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("UV_USE_IO_URING", raising=False)
    loop_policy("auto")
    assert os.environ["UV_USE_IO_URING"] == "0"  # a loop per check: ~8 ms of kernel time each
    monkeypatch.setenv("UV_USE_IO_URING", "1")
    loop_policy("uvloop")
    assert os.environ["UV_USE_IO_URING"] == "1"
    monkeypatch.delenv("UV_USE_IO_URING")
    loop_policy("asyncio")
    assert "UV_USE_IO_URING" not in os.environ
