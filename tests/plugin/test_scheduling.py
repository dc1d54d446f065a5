"""Longest first: how a distributed run hands out its checks (harness.scheduling, issue 9).

The durations come from the newest finished runs in the report folder, the same venue's first;
checks are handed out one at a time, longest first, so the long checks start on different
workers and the workers end close together; without a recorded duration, one at a time in
collection order (long checks next to each other still go to different workers); a report
folder that recorded no run goes by the table the suites ship (suites/durations.json, which names
exactly the suites' checks); a run of
other tests keeps xdist's ``load``, and any other ``--dist`` is xdist's own. The schedule never
changes what a run records: a ``pytest -n 2`` run that went by recorded durations still writes
the serial run's results.
"""

from __future__ import annotations

import heapq
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.scheduling import (
    LongestFirstScheduling,
    durations_in_background,
    longest_first_order,
    main,
    packaged_durations,
    recorded_durations,
    write_packaged_durations,
)
from tests.plugin.test_xdist import SELECTION, pytest_n2
from tests.test_check_power import _suite_ids


def _run(
    report_dir: Path,
    name: str,
    venue: str,
    durations: dict[str, Any],
    *,
    finished: bool = True,
    mtime: float = 0,
) -> Path:
    """A run folder as perpcheck writes one (only what the durations are read from)."""
    import os

    run_dir = report_dir / name
    run_dir.mkdir(parents=True)
    info = {"run_id": name, "venue": venue, "finished_at": "t" if finished else None}
    (run_dir / "run.json").write_text(json.dumps(info))
    lines = [json.dumps({"id": check, "duration_s": s}) for check, s in durations.items()]
    results = run_dir / "results.jsonl"
    results.write_text("\n".join(lines) + "\n")
    os.utime(results, (mtime, mtime))
    return run_dir


def test_durations_come_from_the_newest_runs_on_the_same_venue_first(tmp_path: Path) -> None:
    _run(tmp_path, "old-sim", "sim", {"SC-001": 1.0, "SC-002": 2.0, "SC-003": 3.0}, mtime=100)
    _run(tmp_path, "new-sim", "sim", {"SC-001": 5.0}, mtime=200)
    _run(tmp_path, "newest-http", "sim-http", {"SC-001": 9.0, "SC-004": 4.0}, mtime=300)
    _run(tmp_path, "unfinished", "sim", {"SC-001": 7.0, "SC-005": 7.0}, finished=False, mtime=400)
    got = recorded_durations(tmp_path, "sim")
    # SC-001 from the newest sim run; SC-004 only another venue's run recorded; SC-005 only an
    # unfinished run did (still running, or killed): not taken
    assert got == {"SC-001": 5.0, "SC-002": 2.0, "SC-003": 3.0, "SC-004": 4.0}
    assert recorded_durations(tmp_path, "sim", runs=1) == {"SC-001": 5.0}
    assert recorded_durations(tmp_path / "none", "sim") == {}


def test_unreadable_folders_and_lines_are_skipped(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, "r", "sim", {"SC-001": 1.5, "SC-002": "x", "SC-003": -1})
    with (run_dir / "results.jsonl").open("a") as fh:
        fh.write('{"id": "SC-004", "dur')  # cut short by a kill
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "bad-json").mkdir()
    (tmp_path / "bad-json" / "run.json").write_text("{")
    (tmp_path / "a-file").write_text("")
    assert recorded_durations(tmp_path, "sim") == {"SC-001": 1.5}


def test_longest_first_with_ties_in_collection_order() -> None:
    collection = ["a", "b", "c", "d", "e"]
    assert longest_first_order(collection, {"a": 1, "b": 3, "c": 1, "d": 5, "e": 3}) == [
        3,
        1,
        4,
        0,
        2,
    ]
    # a check no run recorded counts as the mean of the others (here 2): after b, before a
    assert longest_first_order(["a", "b", "new"], {"a": 1, "b": 3}) == [1, 2, 0]
    assert longest_first_order(collection, {}) == [0, 1, 2, 3, 4]


class _Config:
    """What xdist's load scheduler reads of pytest's config."""

    def getvalue(self, name: str) -> Any:
        assert name == "tx"
        return ["2*popen"]

    def getoption(self, name: str) -> Any:
        assert name == "maxschedchunk"
        return None


class _Node:
    """A worker as the scheduler sees it: it is sent indices and told to shut down."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.gateway = type("Gateway", (), {"id": name})()
        self.queue: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices: list[int]) -> None:
        assert not self.shutting_down
        self.queue += indices

    def shutdown(self) -> None:
        self.shutting_down = True


def _simulate(
    costs: dict[str, float] | None, seconds: list[float]
) -> tuple[dict[str, list[int]], float]:
    """Run a collection of checks taking ``seconds`` over two simulated workers as xdist does
    (a worker runs a check only once it holds the next one, or has been told to shut down):
    which indices each worker ran, in order, and when the last one ended."""
    collection = [f"t.py::c{i}" for i in range(len(seconds))]
    sched = LongestFirstScheduling(_Config(), None, lambda: costs)
    nodes = [_Node("gw0"), _Node("gw1")]
    for node in nodes:
        sched.add_node(node)
    for node in nodes:
        sched.add_node_collection(node, collection)
    sched.schedule()
    ran: dict[str, list[int]] = {n.name: [] for n in nodes}
    clock = {n.name: 0.0 for n in nodes}
    events: list[tuple[float, str, int]] = []

    def start(node: _Node) -> None:
        if node.queue and (len(node.queue) >= 2 or node.shutting_down):
            index = node.queue.pop(0)
            ran[node.name].append(index)
            heapq.heappush(events, (clock[node.name] + seconds[index], node.name, index))

    for node in nodes:
        start(node)
    end = 0.0
    by_name = {n.name: n for n in nodes}
    while events:
        now, name, index = heapq.heappop(events)
        clock[name] = end = max(end, now)
        sched.mark_test_complete(by_name[name], index)
        for node in nodes:  # a reply may let an idle worker start (next item or shutdown)
            if not any(e[1] == node.name for e in events):
                start(node)
    assert sched.tests_finished
    assert sorted(i for r in ran.values() for i in r) == list(range(len(seconds)))
    return ran, end


def test_long_checks_start_first_on_different_workers_and_workers_end_together() -> None:
    # four long checks next to each other in collection order, as the funding checks are
    seconds = [0.1] * 20 + [2.0, 0.5, 0.7, 2.1, 1.5, 2.2] + [0.1] * 30
    costs = {f"t.py::c{i}": s for i, s in enumerate(seconds)}
    ran, end = _simulate(costs, seconds)
    firsts = {r[0] for r in ran.values()} | {r[1] for r in ran.values()}
    assert firsts == {20, 23, 24, 25}  # the four longest, two per worker, first
    assert end <= sum(seconds) / 2 + 0.1  # within one short check of an even split


def test_without_recorded_durations_one_at_a_time_in_collection_order() -> None:
    seconds = [0.1] * 20 + [2.0, 0.5, 0.7, 2.1, 1.5, 2.2] + [0.1] * 30
    ran, end = _simulate({}, seconds)
    assert ran["gw0"][:3] == [0, 2, 4]  # dealt in turn
    assert ran["gw1"][:3] == [1, 3, 5]
    long = {20, 23, 24, 25}
    assert 1 <= len(long & set(ran["gw0"])) <= 3  # the long checks are not all on one worker
    assert end <= sum(seconds) / 2 + 0.5


def test_a_run_of_other_tests_keeps_xdists_load() -> None:
    seconds = [0.1] * 20 + [2.0, 0.5, 0.7, 2.1, 1.5, 2.2] + [0.1] * 30
    ran, _ = _simulate(None, seconds)
    assert ran["gw0"][:2] == [0, 1]  # xdist's first chunks, in collection order
    assert ran["gw1"][:2] == [7, 8]


def test_the_plugin_replaces_only_dist_load() -> None:
    from harness.plugin import _SETTINGS, pytest_xdist_make_scheduler

    class Config(_Config):
        def __init__(self, dist: str) -> None:
            self.stash = pytest.Stash()
            self.dist = dist

        def getvalue(self, name: str) -> Any:
            return self.dist if name == "dist" else super().getvalue(name)

    settings = SimpleNamespace(report_dir=Path("no-such-reports"), venue="sim")
    for dist in ("loadfile", "loadscope", "worksteal", "each"):
        config = Config(dist)
        config.stash[_SETTINGS] = settings
        assert pytest_xdist_make_scheduler(config, None) is None  # type: ignore[arg-type]
    assert pytest_xdist_make_scheduler(Config("load"), None) is None  # type: ignore[arg-type]
    config = Config("load")
    config.stash[_SETTINGS] = settings
    scheduler = pytest_xdist_make_scheduler(config, None)  # type: ignore[arg-type]
    assert isinstance(scheduler, LongestFirstScheduling)


def test_durations_are_read_in_the_background_and_errors_surface(tmp_path: Path) -> None:
    _run(tmp_path, "r", "sim", {"SC-001": 1.5})
    assert durations_in_background(tmp_path, "sim")() == {"SC-001": 1.5}
    not_a_path: Any = 42  # a programming error is raised to the caller, not lost in the thread
    with pytest.raises(AttributeError):
        durations_in_background(not_a_path, "sim")()


def test_pytest_n_2_goes_by_the_recorded_durations_and_records_the_same(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    ids = ["CONC-001", "LIQ-001", "MARK-001", "ORD-001", "ORD-002", "ORD-003", "RATE-001"]
    seconds = dict.fromkeys(ids, 0.001) | {"RATE-001": 90.0, "LIQ-001": 80.0}
    _run(reports, "earlier", "sim", seconds, mtime=1)
    proc = pytest_n2(tmp_path, "--seed", "11", "--report-dir", str(reports))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = [p for p in reports.iterdir() if p.name != "earlier"]
    rows = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ids  # collection order, as a serial run writes it
    assert {r["status"] for r in rows} == {"passed"}
    started = {r["id"]: r["started_at"] for r in rows}
    first = sorted(started, key=lambda i: started[i])[:2]
    assert sorted(first) == ["LIQ-001", "RATE-001"]  # the two "longest", one per worker, first


def test_the_packaged_table_names_exactly_the_suites_checks() -> None:
    table = packaged_durations()
    missing, stale = _suite_ids() - set(table), set(table) - _suite_ids()
    refresh = "refresh it: python -m harness.scheduling reports/<a serial sim run>"
    assert not missing, f"suites/durations.json lacks {sorted(missing)}; {refresh}"
    assert not stale, f"suites/durations.json names checks now gone: {sorted(stale)}; {refresh}"
    assert all(seconds > 0 for seconds in table.values())


def test_a_report_folder_without_runs_goes_by_the_packaged_table(tmp_path: Path) -> None:
    assert durations_in_background(tmp_path / "none-yet", "sim")() == packaged_durations()
    _run(tmp_path, "unfinished", "sim", {"SC-001": 7.0}, finished=False)
    assert durations_in_background(tmp_path, "sim")() == packaged_durations()
    _run(tmp_path, "r", "sim-http", {"SC-001": 1.5})  # any recorded run: the table is not mixed in
    assert durations_in_background(tmp_path, "sim")() == {"SC-001": 1.5}


def test_the_table_is_written_from_a_finished_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _run(tmp_path, "r", "sim", {"SC-002": 0.12345, "SC-001": 2.0})
    target = tmp_path / "durations.json"
    assert main([str(run_dir), "--out", str(target)]) == 0
    assert "2 checks" in capsys.readouterr().out
    table = json.loads(target.read_text())
    assert table["venue"] == "sim"
    assert list(table["durations_s"].items()) == [("SC-001", 2.0), ("SC-002", 0.123)]
    # what it wrote is what the scheduler reads, from a package that ships it
    package = tmp_path / "pkg_with_table"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "durations.json").write_text(target.read_text())
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(tmp_path))
        assert packaged_durations("pkg_with_table") == {"SC-001": 2.0, "SC-002": 0.123}
        for bad in ("[]", "{}", '{"durations_s": [1]}', "not json"):
            (package / "durations.json").write_text(bad)
            assert packaged_durations("pkg_with_table") == {}
        (package / "durations.json").write_text(
            '{"durations_s": {"A-001": 1, "B-001": -1, "C-001": "x", "D-001": true}}'
        )
        assert packaged_durations("pkg_with_table") == {"A-001": 1.0}
    assert packaged_durations("no_such_package_here") == {}


def test_the_table_refuses_what_is_not_a_finished_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unfinished = _run(tmp_path, "u", "sim", {"SC-001": 1.0}, finished=False)
    empty = _run(tmp_path, "e", "sim", {})
    torn = _run(tmp_path, "t", "sim", {"SC-001": 1.0})
    with (torn / "results.jsonl").open("a") as f:
        f.write('{"id": "SC-002", "durat\n')
    for run_dir, says in (
        (unfinished, "not a finished run"),
        (empty, "recorded no check"),
        (torn, "line 2: not a check's result"),
        (tmp_path / "nothing", "not a perpcheck run folder"),
    ):
        with pytest.raises(ValueError, match=says):
            write_packaged_durations(run_dir, tmp_path / "out.json")
        assert main([str(run_dir), "--out", str(tmp_path / "out.json")]) == 2
        assert says in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()
    run_dir = _run(tmp_path, "ok", "sim", {"SC-001": 1.0})
    assert main([str(run_dir), "--out", str(tmp_path / "no-such-dir" / "out.json")]) == 2
    assert "No such file or directory" in capsys.readouterr().err


def test_a_first_pytest_n_2_run_goes_by_the_packaged_table(tmp_path: Path) -> None:
    reports = tmp_path / "reports"  # nothing recorded yet
    proc = pytest_n2(tmp_path, "--seed", "11", "--report-dir", str(reports))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = reports.iterdir()
    rows = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    table = packaged_durations()
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids)  # collection order in results.jsonl, as a serial run writes it
    started = {r["id"]: r["started_at"] for r in rows}
    first = sorted(started, key=lambda i: started[i])[:2]
    longest = sorted(ids, key=lambda i: -table[i])[:2]
    assert sorted(first) == sorted(longest), (SELECTION, table)
