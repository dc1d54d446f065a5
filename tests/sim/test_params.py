"""The parameter controller (engine/params.py): inputs, advisors, guardrails, effects, audit.

Also each PARAM defect against a clean engine, a property over arbitrary advisor outputs, the
funding-interval rule, and byte-identical audit replay for a seed.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.sim.config import SimConfig, default_instruments
from adapters.sim.engine import param_interval
from adapters.sim.engine.advisors import (
    ADVISORS,
    Advice,
    AdviceRequest,
    make_advisor,
    register_advisor,
)
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.param_apply import scaled_brackets
from adapters.sim.engine.params import DECISION_INTERVAL_MS
from harness.clock import DEFAULT_EPOCH_MS, VirtualClock
from harness.errors import ConfigError, Rejected
from harness.model import MarginMode, PricePath, Side
from harness.oracle.guardrails import band_crossings, replay_audit, reversals
from harness.oracle.tiers import maintenance_margin
from harness.params import GUARDRAILS, PARAM_NAMES, AuditEntry, ParamChange, ParamSpec
from tests.sim.simkit import BTC, ETH, make_engine, open_position

D = Decimal
T = TypeVar("T")
STRESS = {"volatility": D("0.01"), "concentration": D("0.9"), "oi_to_depth": D(50)}
IN_BAND = {"volatility": D("0.0009"), "concentration": D("0.45"), "oi_to_depth": D("4.5")}
CALM = {"volatility": D(0), "concentration": D(0), "oi_to_depth": D(0)}


def _signals(engine: Engine, levels: Mapping[str, Decimal], symbol: str = BTC) -> None:
    for name, value in levels.items():
        engine.params.set_signal(symbol, name, value)


def _run(
    engine: Engine,
    advisor: str,
    levels: Mapping[str, Decimal],
    ms: int,
    script: Sequence[Mapping[str, Decimal]] = (),
    symbol: str = BTC,
) -> Engine:
    _signals(engine, levels, symbol)
    engine.params.configure(symbol, advisor=advisor, script=script)
    engine.clock.advance(ms)
    return engine


def _changes(engine: Engine, symbol: str = BTC) -> list[ParamChange]:
    state = engine.params.state(symbol)
    return sorted((*state.history, *state.pending), key=lambda c: (c.announced_ms, c.name))


def _decisions(engine: Engine) -> list[AuditEntry]:
    return [e for e in engine.params.audit() if e.kind == "decision"]


def _specs(engine: Engine, symbol: str = BTC) -> dict[str, ParamSpec]:
    return dict(engine.params.state(symbol).specs)


def _both(defect: str, run: Callable[[Engine], T]) -> tuple[T, T]:
    return run(make_engine(seed=1)), run(make_engine(seed=1, defects=[defect]))


def _no_replay_mismatch(engine: Engine, symbol: str = BTC) -> None:
    specs = {(symbol, n): s for n, s in _specs(engine, symbol).items()}
    assert (
        replay_audit(engine.params.audit(), specs, decision_interval_ms=DECISION_INTERVAL_MS) == []
    )


# ---------------------------------------------------------------------------------- off, specs
def test_controller_is_off_by_default_and_changes_nothing() -> None:
    engine = make_engine()
    before = engine.instruments[BTC].brackets
    engine.clock.advance(60_000)
    assert not engine.params.active
    assert engine.params.audit() == []
    assert engine.instruments[BTC].brackets is before
    state = engine.params.state(BTC)
    assert not state.enabled
    assert state.values["funding_interval_hours"] == 8


def test_specs_are_derived_from_the_published_base_values() -> None:
    specs = _specs(make_engine())
    mmr = specs["maint_margin_rate"]
    assert [mmr.base, mmr.lower, mmr.upper, mmr.max_step] == [
        D("0.004"),
        D("0.004"),
        D("0.006"),
        D("0.001"),
    ]
    lev = specs["max_leverage"]
    assert [lev.lower, lev.upper, lev.max_step] == [D(32), D(125), D(31)]
    assert lev.direction == -1
    assert specs["max_notional"].signal == "concentration"
    assert specs["funding_cap"].signal == "oi_to_depth"


def test_unknown_symbol_signal_or_advisor_is_refused() -> None:
    params = make_engine().params
    with pytest.raises(Rejected):
        params.configure("XRPUSDT")
    with pytest.raises(ConfigError, match="choose one of"):
        params.configure(BTC, advisor="oracle")
    with pytest.raises(ConfigError, match="unknown signal"):
        params.set_signal(BTC, "mood", D(1))
    with pytest.raises(ConfigError, match=">= 0"):
        params.set_signal(BTC, "volatility", D(-1))
    with pytest.raises(ConfigError, match="finite"):
        params.set_signal(BTC, "volatility", D("NaN"))
    with pytest.raises(ConfigError, match="takes no script"):
        params.configure(BTC, advisor="extreme", script=[{"funding_cap": D(1)}])
    with pytest.raises(ConfigError, match="unknown parameter"):
        params.configure(BTC, advisor="scripted", script=[{"mmr": D(1)}])


def test_inputs_measure_open_interest_concentration_and_depth() -> None:
    engine = make_engine()
    trader = engine.create_account(D(100_000))
    open_position(engine, trader, BTC, Side.BUY, "0.5")
    engine.params.configure(BTC, advisor="scripted")
    engine.clock.advance(10_000)
    signals = engine.params.state(BTC).signals
    assert signals["open_interest"] == D("0.5")  # the trader long, the market maker short
    assert signals["concentration"] == 1  # the house market maker never counts as the largest
    assert D(1_000_000) < signals["depth"] < D(20_000_000)
    expected = D("0.5") * engine.prices[BTC].mark / signals["depth"]
    assert abs(signals["oi_to_depth"] - expected) < D("1e-9")
    assert D(0) < signals["volatility"] < D("0.001")  # feed noise, far below the threshold


# ---------------------------------------------------------------------------------- the default
def test_default_advisor_holds_a_calm_market_at_its_base_values() -> None:
    engine = _run(make_engine(), "default", {}, 120_000)
    assert engine.params.audit() == []
    assert _changes(engine) == []


def test_default_advisor_tightens_one_step_per_cooling_then_relaxes() -> None:
    engine = _run(make_engine(), "default", STRESS, 700_000)
    mmr = [c for c in _changes(engine) if c.name == "maint_margin_rate"]
    assert [c.new for c in mmr] == [D("0.005"), D("0.0055")]  # q = 0.75: 0.0055 is the target
    assert mmr[1].announced_ms - mmr[0].announced_ms == 300_000
    assert all(c.effective_ms - c.announced_ms == 120_000 for c in mmr)
    _run(engine, "default", CALM, 1_000_000)
    back = [c for c in _changes(engine) if c.name == "maint_margin_rate"]
    assert back[-1].new == D("0.004")
    assert reversals(back) == 1
    _no_replay_mismatch(engine)


def test_applied_values_change_brackets_margin_and_funding_caps() -> None:
    engine = _run(make_engine(), "extreme", STRESS, 125_000)
    first = engine.instruments[BTC].brackets[0]
    assert first.maint_margin_ratio == D("0.005")
    assert first.initial_leverage == 94
    assert first.notional_cap == D(37_500)
    info = engine.funding.info(BTC)
    assert (info.cap, info.floor) == (D("0.0045"), D("-0.0045"))
    state = engine.params.state(BTC)
    assert state.values["max_notional"] == first.notional_cap


def test_scaled_brackets_stay_continuous_with_initial_above_maintenance() -> None:
    base = default_instruments()[BTC].instrument.brackets
    values = {
        "maint_margin_rate": D("0.006"),
        "max_leverage": D(32),
        "max_notional": D(12_500),
        "funding_cap": D("0.003"),
    }
    table = scaled_brackets(base, values)
    for lower, upper in itertools.pairwise(table):
        at = upper.notional_floor
        assert maintenance_margin(table, at - D("0.01")) <= maintenance_margin(table, at)
        assert abs(
            at * lower.maint_margin_ratio - lower.cum - (at * upper.maint_margin_ratio - upper.cum)
        ) < D("1e-9")
    assert all(D(1) / b.initial_leverage >= b.maint_margin_ratio for b in table)
    assert table[0].notional_cap == D(12_500)
    assert table[0].initial_leverage == 32
    # Structural limits hold even for values no guardrail would pass.
    wild = scaled_brackets(
        base, {**values, "maint_margin_rate": D(40), "max_notional": D("0.0001")}
    )
    assert all(b.maint_margin_ratio <= D("0.9") and b.initial_leverage >= 1 for b in wild)


# ---------------------------------------------------------------------------------- adversaries
@pytest.mark.parametrize(
    ("advisor", "guardrail"),
    [("nan", "valid"), ("infinity", "valid"), ("negative", "sign"), ("reversed", "trigger")],
)
def test_invalid_or_reversed_outputs_are_rejected_and_change_nothing(
    advisor: str, guardrail: str
) -> None:
    # reversed needs a change to mirror: the default target under stress.
    engine = _run(make_engine(), advisor, STRESS, 30_000)
    decisions = _decisions(engine)
    assert decisions
    assert {e.rejected_by for e in decisions} == {guardrail}
    assert all(e.applied is None and "last good value" in e.reason for e in decisions)
    assert _changes(engine) == []
    _no_replay_mismatch(engine)


def test_reversed_advisor_cannot_tighten_a_calm_market_either() -> None:
    engine = _run(make_engine(), "default", STRESS, 130_000)  # one step up, in force
    start = engine.clock.now_ms()
    _run(engine, "reversed", IN_BAND, 400_000)
    assert [c for c in _changes(engine) if c.announced_ms >= start] == []
    later = [e for e in _decisions(engine) if e.time_ms >= start]
    assert later
    assert {e.rejected_by for e in later} == {"trigger"}


def test_stale_advisor_is_used_once_then_rejected_as_stale() -> None:
    engine = _run(make_engine(), "stale", STRESS, 400_000)
    decisions = _decisions(engine)
    assert [e.accepted for e in decisions[:4]] == [True] * 4
    assert {e.rejected_by for e in decisions[4:]} == {"fresh"}
    assert len({c.announced_ms for c in _changes(engine)}) == 1
    _no_replay_mismatch(engine)


def test_flip_flop_advisor_moves_one_clamped_step_and_never_back_under_stress() -> None:
    engine = _run(make_engine(), "flip-flop", STRESS, 700_000)
    specs = _specs(engine)
    changes = _changes(engine)
    assert changes
    assert all(specs[c.name].tightens(c.old, c.new) for c in changes)
    assert all(abs(c.new - c.old) <= specs[c.name].max_step for c in changes)
    failed = {e.rejected_by for e in _decisions(engine)}
    assert "trigger" in failed  # the calm extreme, under stress
    _no_replay_mismatch(engine)


def test_extreme_advisor_is_clamped_to_bounds_and_steps() -> None:
    engine = _run(make_engine(), "extreme", STRESS, 1_500_000)
    specs = _specs(engine)
    values = engine.params.state(BTC).values
    for name, spec in specs.items():
        bound = spec.upper if spec.direction > 0 else spec.lower
        assert values[name] == bound
    held = [e for e in _decisions(engine) if e.applied is None and e.rejected_by is None]
    assert held
    assert all("hold" in e.reason for e in held)
    _no_replay_mismatch(engine)


def test_scripted_advisor_plays_its_outputs_in_order_then_stops() -> None:
    script = [{"maint_margin_rate": D("0.0042")}, {}, {"funding_cap": D("0.01")}]
    engine = _run(make_engine(), "scripted", STRESS, 60_000, script)
    decisions = _decisions(engine)
    assert [(e.param, e.proposed) for e in decisions] == [
        ("maint_margin_rate", "0.0042"),
        ("funding_cap", "0.01"),
    ]
    assert decisions[0].accepted
    assert decisions[1].rejected_by is None
    assert decisions[1].applied == D("0.0045")


def test_an_advisor_that_raises_is_an_invalid_output() -> None:
    class Broken:
        name = "broken"

        def advise(self, request: AdviceRequest) -> Advice:
            raise ZeroDivisionError(request.symbol)

    if "broken-test" not in ADVISORS:
        register_advisor("broken-test", lambda _script: Broken())
    with pytest.raises(ConfigError, match="taken"):
        register_advisor("default", lambda _script: make_advisor("default"))
    engine = _run(make_engine(), "broken-test", STRESS, 10_000)
    decisions = _decisions(engine)
    assert len(decisions) == len(PARAM_NAMES)
    assert {e.rejected_by for e in decisions} == {"valid"}
    assert all("ZeroDivisionError" in e.verdicts[0].detail for e in decisions)


# ---------------------------------------------------------------------------------- property
_OUTPUT = st.one_of(
    st.decimals(min_value=D("-1e6"), max_value=D("1e6"), places=6, allow_nan=False),
    st.sampled_from([D("NaN"), D("Infinity"), D("-Infinity"), D("1e30"), D("-1e30"), D(0)]),
)
_STEP = st.dictionaries(st.sampled_from(PARAM_NAMES), _OUTPUT, max_size=4)
_LEVEL = st.sampled_from([STRESS, IN_BAND, CALM])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(_STEP, min_size=1, max_size=40), levels=st.lists(_LEVEL, max_size=4))
def test_no_advisor_output_sequence_breaks_bounds_steps_or_cooling(
    script: list[dict[str, Decimal]], levels: list[Mapping[str, Decimal]]
) -> None:
    engine = make_engine(seed=3)
    engine.params.configure(BTC, advisor="scripted", script=script)
    chunk = len(script) * DECISION_INTERVAL_MS // max(len(levels), 1) + DECISION_INTERVAL_MS
    for level in levels or [STRESS]:
        _signals(engine, level)
        engine.clock.advance(chunk)
    engine.clock.advance(130_000)
    specs = _specs(engine)
    by_param: dict[str, list[ParamChange]] = {}
    for c in _changes(engine):
        by_param.setdefault(c.name, []).append(c)
    for name, changes in by_param.items():
        spec = specs[name]
        for c in changes:
            assert spec.lower <= c.new <= spec.upper
            assert abs(c.new - c.old) <= spec.max_step
            assert c.effective_ms - c.announced_ms == spec.lead_ms
        for a, b in itertools.pairwise(changes):
            assert b.announced_ms - a.announced_ms >= spec.cooling_ms
    for name, value in engine.params.state(BTC).values.items():
        if name in specs:
            assert specs[name].lower <= value <= specs[name].upper
    _no_replay_mismatch(engine)


# ---------------------------------------------------------------------------------- replay
def _replayable_session(seed: int) -> list[str]:
    engine = make_engine(seed=seed)
    trader = engine.create_account(D(50_000))
    open_position(engine, trader, BTC, Side.BUY, "0.2")
    engine.params.configure(BTC, advisor="default")
    engine.params.configure(ETH, advisor="flip-flop")
    _signals(engine, {"volatility": D("0.002")}, ETH)
    engine.clock.advance(200_000)
    engine.params.configure(BTC, advisor="scripted", script=[{"funding_cap": D("NaN")}])
    _signals(engine, STRESS)
    engine.clock.advance(400_000)
    return engine.params.audit_lines()


def test_the_same_seed_replays_a_byte_identical_audit_log() -> None:
    first, second = _replayable_session(11), _replayable_session(11)
    assert first
    assert first == second
    for line in first:
        assert json.dumps(json.loads(line), sort_keys=True, separators=(",", ":")) == line
        assert AuditEntry.from_json(json.loads(line)).line == line
    other = _replayable_session(12)
    assert other != first  # the natural inputs (volatility, depth) depend on the seed


# ---------------------------------------------------------------------------------- interval rule
def _hourly_rule_engine(defects: Sequence[str] = ()) -> Engine:
    """BTCUSDT alone, settling every 2 h, pushed to its cap by a 200 bp premium."""
    instruments = {BTC: default_instruments()[BTC]}
    si = instruments[BTC]
    instruments[BTC] = dataclasses.replace(
        si, instrument=dataclasses.replace(si.instrument, funding_interval_hours=2)
    )
    # Start a minute before a funding time: the first settlement comes at once.
    clock = VirtualClock(DEFAULT_EPOCH_MS + 7_200_000 - 60_000)
    config = SimConfig(seed=5, defects=frozenset(defects), instruments=instruments)
    engine = Engine(config, clock)
    engine.params.configure(BTC, advisor="scripted")
    engine.market_maker.set_skew(BTC, D(200))
    return engine


def _advance_to(engine: Engine, time_ms: int) -> None:
    engine.clock.advance(time_ms - engine.clock.now_ms())


def test_a_capped_settlement_switches_to_hourly_and_a_calm_run_reverts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(param_interval, "CALM_RUN", 2)
    engine = _hourly_rule_engine()
    first = engine.prices[BTC].next_funding_ms
    _advance_to(engine, first)
    assert engine.funding.history(BTC)[-1].funding_rate == D("0.003")  # at the cap
    assert engine.prices[BTC].funding_interval_ms == 3_600_000
    assert engine.prices[BTC].next_funding_ms == first + 3_600_000
    (switch,) = [e for e in engine.params.audit() if e.kind == "interval"]
    assert (switch.applied, switch.current, switch.effective_ms) == (D(1), D(2), first)
    engine.market_maker.set_skew(BTC, D(0))
    for hour in range(1, 5):
        _advance_to(engine, first + hour * 3_600_000)
        if engine.prices[BTC].funding_interval_ms == 7_200_000:
            break
    changes = [c for c in engine.params.state(BTC).history if c.name == "funding_interval_hours"]
    assert [(c.old, c.new) for c in changes] == [(D(2), D(1)), (D(1), D(2))]
    assert engine.prices[BTC].next_funding_ms % 7_200_000 == 0


def test_no_hysteresis_defect_reverts_after_one_calm_settlement() -> None:
    def run(engine: Engine) -> list[tuple[Decimal, Decimal]]:
        first = engine.prices[BTC].next_funding_ms
        _advance_to(engine, first)
        engine.market_maker.set_skew(BTC, D(0))
        _advance_to(engine, first + 3_600_000)
        return [
            (c.old, c.new)
            for c in engine.params.state(BTC).history
            if c.name == "funding_interval_hours"
        ]

    clean, broken = run(_hourly_rule_engine()), run(_hourly_rule_engine(["no-hysteresis"]))
    assert clean == [(D(2), D(1))]
    assert broken[:2] == [(D(2), D(1)), (D(1), D(2))]


def test_the_interval_rule_waits_for_a_manual_change() -> None:
    engine = _hourly_rule_engine()
    first = engine.prices[BTC].next_funding_ms
    engine.funding.schedule_interval(BTC, 4, first + 7_200_000)
    _advance_to(engine, first)
    (entry,) = [e for e in engine.params.audit() if e.kind == "interval"]
    assert entry.applied is None
    assert entry.verdict("manual") is not None
    assert engine.prices[BTC].funding_interval_ms == 7_200_000


# ---------------------------------------------------------------------------------- defects
def test_param_trigger_ignored_tightens_inside_the_band() -> None:
    clean, broken = _both(
        "param-trigger-ignored", lambda e: _changes(_run(e, "default", IN_BAND, 30_000))
    )
    assert clean == []
    assert broken
    assert all(c.new != c.old for c in broken)


@pytest.mark.parametrize("tightening", [True, False])
def test_param_trigger_strict_does_not_act_with_the_signal_exactly_at_its_threshold(
    tightening: bool,
) -> None:
    """The rule acts at ``signal >= tighten_at`` (``<= relax_at``); the defect needs ``>``
    (``<``). Decisions from maint_margin_rate's base, or from one step above it to relax."""

    def run(engine: Engine) -> list[tuple[str | None, Decimal | None]]:
        mmr = _specs(engine)["maint_margin_rate"]
        up = mmr.base + mmr.max_step
        if not tightening:  # one step up first, then wait out the cooling period
            _run(engine, "scripted", {"volatility": mmr.tighten_at}, 10_000, [{mmr.name: up}])
            engine.clock.advance(mmr.cooling_ms)
        signal, output = (mmr.tighten_at, up) if tightening else (mmr.relax_at, mmr.base)
        _run(engine, "scripted", {"volatility": signal}, 10_000, [{mmr.name: output}])
        if "param-trigger-strict" not in engine.defects:  # the rule's own decisions
            _no_replay_mismatch(engine)
        return [(e.rejected_by, e.applied) for e in _decisions(engine)][-1:]

    clean, broken = _both("param-trigger-strict", run)
    mmr = _specs(make_engine())["maint_margin_rate"]
    expected = mmr.base + mmr.max_step if tightening else mmr.base
    assert clean == [(None, expected)]
    assert broken == [("trigger", None)]


def test_no_announcement_lead_applies_at_the_announcement() -> None:
    clean, broken = _both(
        "no-announcement-lead", lambda e: _changes(_run(e, "extreme", STRESS, 10_000))
    )
    assert {c.effective_ms - c.announced_ms for c in clean} == {120_000}
    assert {c.effective_ms - c.announced_ms for c in broken} == {0}


def test_no_cooldown_on_params_changes_every_decision() -> None:
    clean, broken = _both(
        "no-cooldown-on-params", lambda e: _changes(_run(e, "extreme", STRESS, 20_000))
    )
    mmr_clean = [c for c in clean if c.name == "maint_margin_rate"]
    mmr_broken = [c for c in broken if c.name == "maint_margin_rate"]
    assert len(mmr_clean) == 1
    assert len(mmr_broken) == 2
    assert mmr_broken[1].announced_ms - mmr_broken[0].announced_ms == 5_000


def test_no_hysteresis_relaxes_above_the_relax_threshold() -> None:
    def run(engine: Engine) -> list[ParamChange]:
        _run(engine, "default", STRESS, 130_000)
        _run(engine, "default", IN_BAND, 400_000)
        return [c for c in _changes(engine) if c.name == "maint_margin_rate"]

    clean, broken = _both("no-hysteresis", run)
    assert reversals(clean) == 0
    assert reversals(broken) == 1
    series = [STRESS["volatility"], IN_BAND["volatility"]]
    assert band_crossings(series, D("0.001"), D("0.0004")) == 0


def test_advisor_unclamped_applies_the_raw_output() -> None:
    clean, broken = _both(
        "advisor-unclamped",
        lambda e: _run(e, "extreme", STRESS, 125_000).params.state(BTC).values,
    )
    assert clean["maint_margin_rate"] == D("0.005")
    assert broken["maint_margin_rate"] == D("4")


def test_audit_log_wrong_applied_logs_the_raw_output() -> None:
    clean, broken = _both(
        "audit-log-wrong-applied", lambda e: _decisions(_run(e, "extreme", STRESS, 5_000))[0]
    )
    assert clean.applied == D("0.005")
    assert broken.applied == D("4.000")


def test_audit_log_omits_verdicts_keeps_only_failures() -> None:
    clean, broken = _both(
        "audit-log-omits-verdicts", lambda e: _decisions(_run(e, "extreme", STRESS, 10_000))
    )
    assert tuple(v.name for v in clean[0].verdicts) == GUARDRAILS
    assert broken[0].verdicts == ()
    assert [v.name for v in broken[-1].verdicts] == ["cooling"]


def test_tightening_without_grace_liquidates_before_the_effective_time() -> None:
    def run(engine: Engine) -> tuple[int | None, int]:
        trader = engine.create_account(D(10_000))
        open_position(
            engine, trader, BTC, Side.BUY, "0.083", mode=MarginMode.ISOLATED, leverage=125
        )
        index = engine.prices[BTC].index
        entry = trader.positions[BTC].entry
        # Isolated at 125x: LP = entry × 0.992 / (1 − mmr); 0.99598 at 0.4 %, 0.99698 at 0.5 %.
        target = (entry * D("0.99648")).quantize(D("0.1"))
        engine.set_price_path(BTC, PricePath(points=((0, index), (20_000, target)), linear=True))
        engine.clock.advance(60_000)
        assert not engine.liquidator.records
        _run(engine, "scripted", STRESS, 5_000, [{"maint_margin_rate": D("0.005")}])
        (change,) = _changes(engine)
        engine.clock.advance(change.effective_ms - engine.clock.now_ms())
        times = [r.time_ms for r in engine.liquidator.records if r.account_id == trader.account_id]
        return (times[0] if times else None), change.effective_ms

    (clean_at, clean_effective), (broken_at, broken_effective) = _both(
        "tightening-without-grace", run
    )
    assert clean_at == clean_effective
    assert broken_at is not None
    assert broken_at < broken_effective
