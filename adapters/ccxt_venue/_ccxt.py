"""The three ccxt exchange classes perpcheck drives, imported without the other two hundred.

``import ccxt.async_support`` runs two package ``__init__`` files that import every exchange ccxt
supports, synchronous and asynchronous: some 800 modules, about 0.6 s of every run that talks
to a venue through ccxt (a third of a ``sim-http`` run's fixed cost) for three classes.
:func:`exchange_class` imports ``ccxt.async_support.<name>`` alone: the two ``__init__`` files
are registered unexecuted (their modules exist, with their ``__path__``, so submodules import
as usual) and run in full, in place, the first time anything reads a name they define that is
not there yet — ``ccxt.binance``, ``ccxt.async_support.okx``, ``ccxt.__version__``,
``from ccxt import *``. A user's or a test's ``import ccxt`` thus sees the whole package, as
always. What ccxt's own modules import from the packages (the exception classes,
``from ccxt import Exchange``) is there from the start. Where ccxt is already imported
nothing is deferred.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

__all__ = ["errors", "exchange_class", "version"]

_PACKAGES = ("ccxt", "ccxt.async_support")


def _defer(name: str) -> None:
    """Register package ``name`` without running its ``__init__`` (module docstring)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:  # pragma: no cover - ccxt is a dependency
        msg = f"cannot find {name}"
        raise ImportError(msg)
    loader = spec.loader
    module = importlib.util.module_from_spec(spec)

    def complete(attr: str) -> Any:
        # PEP 562: called only for a name the module does not hold. The first call runs the
        # real __init__ in this very module object; after it, a missing name is missing.
        if module.__dict__.pop("__getattr__", None) is None:
            msg = f"module {name!r} has no attribute {attr!r}"
            raise AttributeError(msg)
        loader.exec_module(module)
        return getattr(module, attr)

    module.__getattr__ = complete  # type: ignore[method-assign]
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)


def _errors() -> ModuleType:
    for name in _PACKAGES:
        _defer(name)
    found = importlib.import_module("ccxt.base.errors")
    lent = {key: getattr(found, key) for key in found.__all__}
    for package in _PACKAGES:
        module = sys.modules[package]
        if "__getattr__" in module.__dict__:  # still deferred: lend what ccxt's modules import
            module.__dict__.update({k: v for k, v in lent.items() if k not in module.__dict__})
    ccxt = sys.modules["ccxt"]
    if "__getattr__" in ccxt.__dict__:  # ccxt.async_support.base.ws.client: the sync base class
        ccxt.__dict__.setdefault("Exchange", importlib.import_module("ccxt.base.exchange").Exchange)
    return found


errors = _errors()


def exchange_class(name: str) -> Any:
    """``ccxt.async_support.<name>.<name>``, e.g. ``exchange_class("binanceusdm")``."""
    return getattr(importlib.import_module(f"ccxt.async_support.{name}"), name)


def version() -> str:
    """The installed ccxt's version (without completing the deferred package)."""
    return str(importlib.import_module("ccxt.base.exchange").__version__)
