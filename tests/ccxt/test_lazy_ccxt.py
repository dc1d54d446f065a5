"""adapters/ccxt_venue/_ccxt.py: ccxt's exchange classes without its 200 other exchanges.

Each case runs in a fresh interpreter: what is imported is per process, and this one has ccxt
imported in full already (which the module must leave alone).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    proc = subprocess.run(  # noqa: S603 - this interpreter, a literal script
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, f"expected the script to pass, got:\n{proc.stderr}"
    return proc.stdout.strip()


def test_the_adapters_import_no_other_exchange() -> None:
    out = _run(
        """
        import sys
        from adapters.ccxt_venue import clients, simhttp, testnets  # noqa: F401
        from adapters.ccxt_venue._ccxt import exchange_class
        cls = exchange_class("binanceusdm")
        loaded = sorted(m for m in sys.modules if m.startswith(("ccxt.async_support.", "ccxt.")))
        print(cls.__module__, "ccxt.kraken" in sys.modules,
              "ccxt.async_support.kraken" in sys.modules, "ccxt.async_support.okx" in sys.modules)
        """
    )
    assert out == "ccxt.async_support.binanceusdm False False False", out


def test_the_deferred_packages_complete_on_first_use() -> None:
    out = _run(
        """
        import importlib
        from adapters.ccxt_venue import _ccxt
        binanceusdm = _ccxt.exchange_class("binanceusdm")
        from ccxt import BaseError, NetworkError  # lent before the package completes
        import ccxt
        import ccxt.async_support as ccxt_async
        errors = importlib.import_module("ccxt.base.errors")
        checks = [
            BaseError is errors.BaseError is _ccxt.errors.BaseError,
            NetworkError is ccxt_async.NetworkError,
            ccxt.__version__ == _ccxt.version() == ccxt_async.__version__,
            ccxt.kraken.__module__ == "ccxt.kraken",  # the sync package, in full
            ccxt_async.binanceusdm is binanceusdm,  # the async one: the same class
            "kraken" in ccxt.exchanges,
            not hasattr(ccxt, "no_such_name"),
            "__getattr__" not in vars(ccxt) and "__getattr__" not in vars(ccxt_async),
        ]
        import ccxt.pro
        checks.append(issubclass(ccxt.pro.binanceusdm, ccxt_async.binance))
        print(checks)
        """
    )
    assert out == str([True] * 9), out


def test_ccxt_imported_first_is_left_as_it_is() -> None:
    out = _run(
        """
        import ccxt.async_support as ccxt_async
        from adapters.ccxt_venue import _ccxt
        print(_ccxt.exchange_class("okx") is ccxt_async.okx, "__getattr__" in vars(ccxt_async))
        """
    )
    assert out == "True False", out
