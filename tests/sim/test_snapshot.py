"""Snapshot and restore (adapters/sim/engine/snapshot.py): the restored run continues identically.

A seeded flow (a scenario whose scheduled feed events, wicks or crowded longs are still
pending, the parameter controller deciding under stressed signals, a leveraged account that a
price fall liquidates, hours of funding, and the random order flow of tests/sim/simkit.py) runs
for a number of steps; the engine is snapshotted and restored; the original and the restored
engine then run the same further steps and must end in the same state: the whole digest of
tests/sim/digest.py (accounts, orders, fills, income, books, tape, prices and their generators,
funding, liquidations, ADL, market maker, monitor), the parameter controller's state and audit,
the gateway's faults and windows. Files that are not snapshots of this build are refused with a
typed error.
"""

from __future__ import annotations

import dataclasses
import json
import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from adapters.sim import scenarios
from adapters.sim.config import SimConfig
from adapters.sim.engine import snapshot as snap
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.scenario import apply_scenario
from adapters.sim.engine.snapshot import SnapshotError, load, restore, snapshot
from harness.clock import DEFAULT_EPOCH_MS, VirtualClock
from harness.errors import ConfigError
from harness.model import MarginMode, PricePath, Side
from harness.venue import Faults
from tests.fuzz.report import report
from tests.sim.digest import _plain, digest, first_difference
from tests.sim.simkit import BTC, ETH, make_engine, open_position, random_operation

D = Decimal
STRESS = {"volatility": D("0.01"), "concentration": D("0.9"), "oi_to_depth": D(50)}
EIGHT_HOURS = 8 * 3_600_000
SCENARIOS = ("wick", "stale-feed", "crowded-long-thin-book", "index-feed-outage")
_counts = {"examples": 0, "steps": 0, "liquidations": 0, "settlements": 0, "decisions": 0}


def full_state(engine: Engine) -> dict[str, Any]:
    """The digest plus what it leaves out: parameter controller and gateway."""
    gateway = engine.gateway  # rate-limit windows, bans, faults
    return {
        **digest(engine),
        "params": {
            s: _plain(dataclasses.asdict(engine.params.state(s))) for s in engine.instruments
        },
        "audit": engine.params.audit_lines(),
        "gateway": _plain({k: v for k, v in vars(gateway).items() if k != "_engine"}),
    }


def _setup(seed: int, scenario: str, defects: tuple[str, ...]) -> tuple[Engine, list[str]]:
    # Ninety seconds before a funding time: the flow's own time steps reach the settlement.
    start = (DEFAULT_EPOCH_MS // EIGHT_HOURS + 1) * EIGHT_HOURS - 90_000
    config = SimConfig(seed=seed, defects=frozenset(defects))
    engine = Engine(config, VirtualClock(start))
    apply_scenario(engine, scenarios.load(scenario))
    for name, value in STRESS.items():
        engine.params.set_signal(BTC, name, value)
    engine.params.configure(BTC, advisor="default")
    engine.params.configure(ETH, advisor="flip-flop")
    accounts = [engine.create_account(D(100_000)).account_id for _ in range(3)]
    risky = engine.create_account(D(300))
    open_position(engine, risky, BTC, Side.BUY, "0.05", mode=MarginMode.ISOLATED, leverage=50)
    return engine, [*accounts, risky.account_id]


def _step(engine: Engine, rng: random.Random, accounts: list[str], step: int) -> None:
    if step == 40:  # a fall of 4 %: the 50x long is liquidated
        mid = engine.prices[BTC].index
        engine.set_price_path(BTC, PricePath(points=((0, mid), (5_000, mid * D("0.96")))))
    if step % 50 == 49:  # a minute passes
        engine.clock.advance(60_000)
    random_operation(engine, rng, accounts)


def _run(engine: Engine, rng: random.Random, accounts: list[str], steps: range) -> None:
    for step in steps:
        _step(engine, rng, accounts, step)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
    derandomize=True,  # the same examples on every run
    phases=(Phase.explicit, Phase.generate),  # a failure is reported as drawn: shrinking is slow
)
@given(
    seed=st.integers(0, 2**20),
    cut=st.integers(0, 200),
    scenario=st.sampled_from(SCENARIOS),
    late_funding=st.booleans(),
)
def test_a_restored_engine_continues_exactly_as_the_original(
    seed: int, cut: int, scenario: str, late_funding: bool
) -> None:
    # funding-paid-to-late-joiner schedules each payment as a closure over the funding engine.
    defects = ("funding-paid-to-late-joiner",) if late_funding else ()
    original, accounts = _setup(seed, scenario, defects)
    rng = random.Random(seed)
    _run(original, rng, accounts, range(cut))
    data = snapshot(original)
    restored = restore(data)
    assert restored.clock is not original.clock
    assert first_difference(full_state(original), full_state(restored)) is None
    state = rng.getstate()
    _run(original, rng, accounts, range(cut, 250))
    rng.setstate(state)
    _run(restored, rng, accounts, range(cut, 250))
    difference = first_difference(full_state(original), full_state(restored))
    assert difference is None, f"{scenario} seed {seed} cut {cut}: {difference}"
    _counts["examples"] += 1
    _counts["steps"] += 250
    _counts["liquidations"] += len(original.liquidator.records)
    _counts["settlements"] += len(original.funding.settlements)
    _counts["decisions"] += sum(1 for e in original.params.audit() if e.kind == "decision")


def test_the_flow_exercises_liquidation_funding_and_the_parameter_controller(
    request: pytest.FixtureRequest,
) -> None:
    """The identical-continuation flow is not vacuous: it liquidates, settles and decides."""
    engine, accounts = _setup(7, "wick", ("funding-paid-to-late-joiner",))
    rng = random.Random(7)
    _run(engine, rng, accounts, range(5))
    pending = [action for _, _, action in engine._events]
    assert any(getattr(a, "__closure__", None) for a in pending), "the wick's closures wait"
    restored = restore(snapshot(engine))
    state = rng.getstate()
    _run(engine, rng, accounts, range(5, 250))
    rng.setstate(state)
    _run(restored, rng, accounts, range(5, 250))
    assert first_difference(full_state(engine), full_state(restored)) is None
    assert restored.liquidator.records, "the 50x long was liquidated"
    assert restored.funding.settlements, "funding settled"
    assert any(e.kind == "decision" for e in restored.params.audit())
    report(
        request.config,
        "snapshot",
        f"snapshot: {_counts['examples']} seeded flows restored mid-run continued identically "
        f"({_counts['steps']:,} steps, {_counts['liquidations']} liquidations, "
        f"{_counts['settlements']} funding settlements, {_counts['decisions']} parameter "
        "decisions)",
    )


def test_the_restored_bus_is_idle_and_takes_new_subscribers() -> None:
    engine = make_engine(3)
    seen: list[object] = []
    engine.events.subscribe(seen.append)
    acct = engine.create_account(D(10_000))
    restored = restore(snapshot(engine))
    assert not restored.events.active
    got: list[object] = []
    restored.events.subscribe(got.append)
    open_position(restored, restored.accounts[acct.account_id], BTC, Side.BUY, "0.01")
    assert got, "a subscriber of the restored engine receives its events"


def test_gateway_faults_survive_and_extra_data_travels_with_the_snapshot() -> None:
    engine = make_engine(5)
    engine.gateway.set_faults(Faults(lost_ack=2, maintenance=True))
    loaded = load(snapshot(engine, extra={"keys": [["k", "s", "acct-1", None]]}))
    assert loaded.engine.gateway.faults == Faults(lost_ack=2, maintenance=True)
    assert loaded.extra == {"keys": [["k", "s", "acct-1", None]]}
    assert loaded.header["seed"] == 5
    assert loaded.header["now_ms"] == engine.clock.now_ms()


def _tampered_header(data: bytes, **changes: Any) -> bytes:
    end = data.index(b"\n")
    header = json.loads(data[len(snap.MAGIC) : end])
    header.update(changes)
    return snap.MAGIC + json.dumps(header).encode() + data[end:]


@pytest.mark.parametrize(
    ("mangle", "words"),
    [
        (lambda d: b"", "not a perpcheck snapshot"),
        (lambda d: b"GIF89a" + d, "not a perpcheck snapshot"),
        (lambda d: snap.MAGIC + b"{not json\n" + d, "header"),
        (lambda d: _tampered_header(d, format=99), "format 99"),
        (lambda d: _tampered_header(d, engine="0" * 32), "another build"),
        (lambda d: d[:-10], "corrupt"),
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "corrupt"),
    ],
    ids=["empty", "foreign", "header", "version", "build", "truncated", "bit-flip"],
)
def test_a_bad_file_is_a_typed_error(mangle: Any, words: str) -> None:
    data = snapshot(make_engine(1))
    with pytest.raises(SnapshotError, match=words) as info:
        restore(mangle(data))
    assert isinstance(info.value, ConfigError)  # the CLI prints it as one line, exit 2


def _with_body(data: bytes, body: bytes) -> bytes:
    import hashlib
    import zlib

    packed = zlib.compress(body)
    digest_ = hashlib.sha256(packed).hexdigest()
    return _tampered_header(data, length=len(packed), sha256=digest_).split(b"\n")[0] + (
        b"\n" + packed
    )


@pytest.mark.parametrize(
    "payload",
    [
        b"cos\nsystem\n(S'echo pwned'\ntR.",  # protocol 0: os.system("echo pwned")
        b"cbuiltins\neval\n(S'1+1'\ntR.",
        b"csubprocess\nPopen\n(S'true'\ntR.",
        b"cadapters.sim.server.app\ncreate_app\n.",
        b"cadapters.sim.engine.snapshot\nsnapshot\n.",
        b"cadapters.sim.engine.exchange\nEngine.__init__\n.",
    ],
    ids=["os.system", "eval", "popen", "outside-engine", "own-module", "dotted"],
)
def test_a_checksummed_body_cannot_name_code_outside_the_engine(payload: bytes) -> None:
    data = _with_body(snapshot(make_engine(1)), payload)
    with pytest.raises(SnapshotError, match="may not hold"):
        restore(data)


def test_a_forged_function_reference_is_refused() -> None:
    # A function reference outside the engine, through the snapshot's own reconstructor.
    import pickle

    class Forged:
        def __reduce__(self) -> Any:
            return snap._function, ("os", "system", 1, None, None, ())

    body = pickle.dumps((Forged(), "{}"), protocol=5)
    with pytest.raises(SnapshotError, match="outside the simulator engine"):
        restore(_with_body(snapshot(make_engine(1)), body))


def test_a_callback_from_outside_the_engine_cannot_be_snapshotted() -> None:
    engine = make_engine(1)
    engine.schedule(engine.clock.now_ms() + 1_000, print)
    with pytest.raises(SnapshotError, match="not simulator state"):
        snapshot(engine)


def test_a_forged_bound_method_outside_the_engine_is_refused() -> None:
    import pickle

    from harness.clock import WallClock

    class Forged:
        def __reduce__(self) -> Any:
            return snap._method, (WallClock(), "sleep")

    body = pickle.dumps((Forged(), "{}"), protocol=5)
    with pytest.raises(SnapshotError, match="may not"):
        restore(_with_body(snapshot(make_engine(1)), body))


def test_a_body_that_inflates_beyond_the_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    data = snapshot(make_engine(1))
    monkeypatch.setattr(snap, "MAX_STATE_BYTES", 1_000)
    with pytest.raises(SnapshotError, match="over 1000 bytes"):
        restore(data)
