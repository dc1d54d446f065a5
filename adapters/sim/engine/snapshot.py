"""Snapshot and restore of a whole simulator engine: a server restarts where it stopped.

:func:`snapshot` writes everything an :class:`~adapters.sim.engine.exchange.Engine` holds
(accounts, books, orders, fills, income, prices and their feeds and random generators, funding,
liquidation index and records, parameter controller, monitor, gateway windows and faults,
scheduled events, the virtual clock); :func:`restore` gives back an engine that continues
exactly as the original would have. Two engines that run the same operations after a
snapshot, the original and its restoration, end in the same state (tests/sim/test_snapshot.py).

Format: one header line, then the body::

    PERPCHECK-SNAPSHOT {"format": 1, "perpcheck": ..., "engine": ..., "sha256": ..., ...}\\n
    <zlib-compressed pickle>

``engine`` is a fingerprint of the engine's source: the pickled objects are instances of its
classes, so a snapshot is restored only by the build that took it (anything else is refused
with :class:`SnapshotError`, as are a foreign file, another format version, a body whose
sha256 differs and a body that does not decode). The sha256 detects corruption; it does not
authenticate: restore only snapshots you took.

Why pickle is acceptable here: the body is read with a restricted unpickler that resolves only
the classes of the simulator engine and of the plain data it holds (``adapters.sim.engine``, the
simulator's configuration and scenario model, ``harness.model`` / ``clock`` / ``venue`` ...), the
functions and bound methods of the engine's own modules, and a fixed list of standard types
(``decimal.Decimal``, ``collections.deque``, ``random.Random``, ``sortedcontainers``...); no
module that does I/O or runs processes is reachable, so a snapshot file cannot run code of its
choosing. Functions are never carried as code: a function is a reference to its definition in
the installed source (module, qualified name, first line) plus the values it captured.

Not carried (live connections to the world outside the engine, re-created empty):

* the event bus's subscribers (the restored bus is idle, as if every subscriber had left at the
  snapshot: WebSocket connections and user-data listen keys do not survive a restart);
* the stream faults' drop listeners (the stream hub that registered them is gone).

A server snapshot adds JSON data of its own (``extra``: API keys, scenario name; see
adapters/sim/server/control.py) — it then holds the accounts' API secrets.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import io
import json
import pickle
import sys
import types
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from adapters.sim.engine.events import EventBus
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.stream_faults import StreamFaultState
from harness.errors import ConfigError

__all__ = ["FORMAT_VERSION", "MAGIC", "Snapshot", "SnapshotError", "load", "restore", "snapshot"]

MAGIC = b"PERPCHECK-SNAPSHOT "
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 4096
_PROTOCOL = 5

# Modules whose classes a snapshot may name: the engine and the plain data it holds; functions
# only from the engine's own modules (_OWN_PREFIXES). Nothing there does I/O.
_OWN_PREFIXES = ("adapters.sim.engine.",)
_OWN_MODULES = frozenset(
    {
        "adapters.sim.config",
        "adapters.sim.defects",
        "adapters.sim.scenarios.model",
        "harness.model",
        "harness.observations",  # records split out of harness.model (plain frozen dataclasses)
        "harness.clock",
        "harness.venue",
        "harness.cascade",
        "harness.errors",
        "harness.params",
        "harness.alerts",
        "harness.concentration",
    }
)
# Standard (and third-party container) types the engine's state is made of.
_STD_CLASSES = frozenset(
    {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "dict"),
        ("builtins", "list"),
        ("builtins", "tuple"),
        ("builtins", "bytearray"),
        ("collections", "deque"),
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("collections", "Counter"),
        ("decimal", "Decimal"),
        ("fractions", "Fraction"),
        ("random", "Random"),
        ("sortedcontainers.sorteddict", "SortedDict"),
        ("sortedcontainers.sortedlist", "SortedList"),
        ("sortedcontainers.sortedlist", "SortedKeyList"),
        ("sortedcontainers.sortedset", "SortedSet"),
    }
)
MAX_STATE_BYTES = 1 << 30  # a body that inflates beyond this is refused (a zip bomb)


class SnapshotError(ConfigError):
    """A snapshot that cannot be taken or restored (corrupt, foreign, another build...)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A decoded snapshot: the engine, the JSON data its taker attached, and its header."""

    engine: Engine
    extra: Mapping[str, Any]
    header: Mapping[str, Any]


# ---------------------------------------------------------------------- identity of a build
def _version() -> str:
    from adapters.sim.venue import SIM_VERSION

    return SIM_VERSION


@cache
def engine_fingerprint() -> str:
    """sha256 over the source of the modules whose classes a snapshot holds (which build)."""
    files = sorted(Path(__file__).resolve().parent.glob("*.py"))
    for module in sorted(_OWN_MODULES):
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin is not None:
            files.append(Path(spec.origin))
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.parent.name}/{file.name}".encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()[:32]


def _own_module(module: str) -> bool:
    return module in _OWN_MODULES or module.startswith(_OWN_PREFIXES)


# ---------------------------------------------------------------------- functions by reference
def _module_codes(module: str) -> Iterator[types.CodeType]:
    """Every code object of ``module``'s installed source (nested ones included)."""
    spec = importlib.import_module(module).__spec__
    origin = spec.origin if spec is not None else None
    if origin is None or not origin.endswith(".py"):
        return
    stack = [compile(Path(origin).read_bytes(), origin, "exec")]
    while stack:
        code = stack.pop()
        yield code
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))


@cache
def _code(module: str, qualname: str, line: int) -> types.CodeType:
    for code in _module_codes(module):
        if code.co_qualname == qualname and code.co_firstlineno == line:
            return code
    msg = f"the snapshot names {module}.{qualname} (line {line}), which this build lacks"
    raise SnapshotError(msg)


def _function(
    module: str,
    qualname: str,
    line: int,
    defaults: tuple[Any, ...] | None,
    kwdefaults: dict[str, Any] | None,
    cells: tuple[Any, ...],
) -> types.FunctionType:
    """A function of the engine, rebuilt from its installed definition and captured values."""
    if not module.startswith(_OWN_PREFIXES):
        msg = f"the snapshot names a function of {module}, outside the simulator engine"
        raise SnapshotError(msg)
    code = _code(module, qualname, line)
    if len(cells) != len(code.co_freevars):
        msg = f"{module}.{qualname} captures {len(code.co_freevars)} values, not {len(cells)}"
        raise SnapshotError(msg)
    closure = tuple(types.CellType(v) for v in cells) or None
    namespace = vars(importlib.import_module(module))
    fn = types.FunctionType(code, namespace, code.co_name, defaults, closure)
    fn.__qualname__ = qualname
    fn.__kwdefaults__ = kwdefaults
    return fn


def _method(owner: object, name: str) -> Any:
    """``owner.name``, a bound method of an engine object (never a dunder)."""
    if name.startswith("__") or not type(owner).__module__.startswith(_OWN_PREFIXES):
        msg = f"the snapshot binds {name!r} on a {type(owner).__name__}, which it may not"
        raise SnapshotError(msg)
    bound = getattr(owner, name, None)
    if not isinstance(bound, types.MethodType):
        msg = f"{type(owner).__name__}.{name} is not a method in this build"
        raise SnapshotError(msg)
    return bound


def _mapping_proxy(data: dict[Any, Any]) -> types.MappingProxyType[Any, Any]:
    return types.MappingProxyType(data)


def _idle_bus(on_active: Callable[[bool], None] | None, next_token: int) -> EventBus:
    bus = EventBus(on_active)
    bus._next = next_token
    return bus


def _stream_faults(state: dict[str, Any]) -> StreamFaultState:
    obj = StreamFaultState.__new__(StreamFaultState)
    obj.__dict__.update(state)
    return obj


_RECONSTRUCTORS = {
    f.__name__: f for f in (_function, _method, _mapping_proxy, _idle_bus, _stream_faults)
}


# ---------------------------------------------------------------------- pickling
class _Pickler(pickle.Pickler):
    """Pickles an engine; refuses anything that is not engine state (a live connection...)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.MethodType):
            owner = obj.__self__
            if isinstance(owner, type):  # a classmethod: by reference to its function
                return NotImplemented
            return _method, (owner, obj.__func__.__name__)
        if isinstance(obj, types.FunctionType):
            if obj.__module__ == __name__ and _RECONSTRUCTORS.get(obj.__name__) is obj:
                return NotImplemented  # by reference: the unpickler knows these
            return self._function(obj)
        if isinstance(obj, types.MappingProxyType):
            return _mapping_proxy, (dict(obj),)
        if isinstance(obj, EventBus):
            return _idle_bus, (obj._on_active, obj._next)
        if isinstance(obj, StreamFaultState):
            state = dict(vars(obj))
            state["_drop_listeners"] = []
            return _stream_faults, (state,)
        if isinstance(obj, types.BuiltinFunctionType | types.ModuleType | io.IOBase):
            msg = f"the engine holds {obj!r}, which is not simulator state"
            raise SnapshotError(msg)
        return NotImplemented

    @staticmethod
    def _function(fn: types.FunctionType) -> Any:
        module = fn.__module__
        if module == __name__ or not module.startswith(_OWN_PREFIXES):
            msg = (
                f"the engine holds {module}.{fn.__qualname__}, a function outside the simulator "
                "engine (a subscriber or a callback from elsewhere cannot be snapshotted)"
            )
            raise SnapshotError(msg)
        cells = tuple(c.cell_contents for c in fn.__closure__ or ())
        code = fn.__code__
        return _function, (
            module,
            code.co_qualname,
            code.co_firstlineno,
            fn.__defaults__,
            fn.__kwdefaults__,
            cells,
        )


class _Unpickler(pickle.Unpickler):
    """Resolves only engine classes and functions and :data:`_STD_CLASSES` (module docstring)."""

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name in _RECONSTRUCTORS:
            return _RECONSTRUCTORS[name]
        if (module, name) in _STD_CLASSES:
            return super().find_class(module, name)
        if _own_module(module) and "." not in name and not name.startswith("__"):
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        msg = f"the snapshot names {module}.{name}, which a snapshot may not hold"
        raise SnapshotError(msg)


# ---------------------------------------------------------------------- the file format
def snapshot(engine: Engine, *, extra: Mapping[str, Any] | None = None) -> bytes:
    """The whole state of ``engine`` (and ``extra``, JSON data) as bytes; see the module doc.

    Raises:
        SnapshotError: the engine holds something that is not simulator state (a callback from
            outside the engine other than the event bus's subscribers).
    """
    extra_json = json.dumps(dict(extra or {}), sort_keys=True)
    buffer = io.BytesIO()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))  # long linked structures (queues of orders)
    try:
        _Pickler(buffer, protocol=_PROTOCOL).dump((engine, extra_json))
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        msg = f"cannot snapshot the engine: {exc}"
        raise SnapshotError(msg) from None
    finally:
        sys.setrecursionlimit(limit)
    body = zlib.compress(buffer.getvalue(), 6)
    header = {
        "format": FORMAT_VERSION,
        "perpcheck": _version(),
        "engine": engine_fingerprint(),
        "seed": engine.config.seed,
        "now_ms": engine.clock.now_ms(),
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    return MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + body


def read_header(data: bytes) -> dict[str, Any]:
    """The header of a snapshot, checked (format, build, length, sha256 of the body)."""
    if not data.startswith(MAGIC):
        msg = "not a perpcheck snapshot (it does not start with PERPCHECK-SNAPSHOT)"
        raise SnapshotError(msg)
    end = data.find(b"\n", 0, MAX_HEADER_BYTES)
    try:
        header = json.loads(data[len(MAGIC) : end]) if end > 0 else None
    except ValueError:
        header = None
    if not isinstance(header, dict):
        msg = "corrupt snapshot: its header is not a JSON object on the first line"
        raise SnapshotError(msg)
    if header.get("format") != FORMAT_VERSION:
        msg = (
            f"snapshot format {header.get('format')!r} is not {FORMAT_VERSION}, "
            "the one this perpcheck reads"
        )
        raise SnapshotError(msg)
    if header.get("engine") != engine_fingerprint():
        msg = (
            f"snapshot taken by another build of the simulator (perpcheck "
            f"{header.get('perpcheck')!r}, engine {header.get('engine')!r}); restore it with "
            "the build that took it"
        )
        raise SnapshotError(msg)
    body = data[end + 1 :]
    if header.get("length") != len(body) or header.get("sha256") != (
        hashlib.sha256(body).hexdigest()
    ):
        msg = "corrupt snapshot: its body does not match the length and sha256 of its header"
        raise SnapshotError(msg)
    return header


def load(data: bytes) -> Snapshot:
    """Decode a snapshot: the restored engine, the taker's ``extra`` data and the header.

    Raises:
        SnapshotError: a foreign or corrupt file, another format or build, or a body naming
            anything outside the engine.
    """
    header = read_header(data)
    body = data[data.index(b"\n") + 1 :]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))
    try:
        inflater = zlib.decompressobj()
        state = inflater.decompress(body, MAX_STATE_BYTES)
        if inflater.unconsumed_tail:
            msg = f"snapshot state over {MAX_STATE_BYTES} bytes"
            raise SnapshotError(msg)
        engine, extra_json = _Unpickler(io.BytesIO(state)).load()
        extra = json.loads(extra_json)
    except SnapshotError:
        raise
    except Exception as exc:  # any decoding failure of a checksummed body is a bad snapshot
        msg = f"corrupt snapshot: {type(exc).__name__}: {exc}"
        raise SnapshotError(msg) from None
    finally:
        sys.setrecursionlimit(limit)
    if not isinstance(engine, Engine) or not isinstance(extra, dict):
        msg = "corrupt snapshot: its body does not hold an engine"
        raise SnapshotError(msg)
    _after_restore(engine)
    return Snapshot(engine=engine, extra=extra, header=header)


def restore(data: bytes) -> Engine:
    """The engine of a snapshot (see :func:`load`), on its own virtual clock."""
    return load(data).engine


def _after_restore(engine: Engine) -> None:
    """The bus is idle: stop the event bookkeeping as the last subscriber leaving would."""
    publisher = engine.publisher
    for book in engine.books.values():
        if book.touched is not None:
            publisher._activate(False)
            break
