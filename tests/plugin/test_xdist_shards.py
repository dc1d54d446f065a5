"""Reading and merging the shards of a run spread over xdist workers (harness.results).

The merge puts results in collection order whatever worker ran each check and in whatever order
they ended; a line cut short is left out and counted; ``results.jsonl``, once written, is what
readers read; merging leaves a folder shaped like a serial run's. ``perpcheck run -n`` takes a
number of processes or ``auto`` and says so in one line when xdist is missing. The controller
merges as soon as every worker has finished cleanly (while xdist waits for the processes to
exit); after a lost worker, when the session ends.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.results import (
    RESULTS_FILE,
    SHARDS_DIR,
    CheckResult,
    ResultsWriter,
    RunInfo,
    ShardWriter,
    Status,
    load_results,
    merge_shards,
    read_results,
    write_merged,
)


def _info() -> RunInfo:
    return RunInfo(
        run_id="r", venue="sim", seed=1, defects=[], versions={}, config={}, started_at="t"
    )


def _result(check_id: str) -> CheckResult:
    return CheckResult(
        id=check_id,
        area=check_id.split("-")[0],
        title="t",
        topic="",
        source="",
        venue="sim",
        status=Status.PASSED,
        nodeid=f"test_x.py::{check_id}",
    )


#: Collection order: what a serial run would write, in that order.
CHECKS = [(f"test_x.py::{c}", c, c.split("-")[0]) for c in ("XD-001", "XD-002", "XD-003", "XD-004")]


def _shards(run_dir: Path) -> None:
    """gw1 ran XD-001 and XD-004, gw0 ran XD-003 then XD-002: neither in collection order."""
    gw0 = ShardWriter(run_dir, "gw0", _info(), CHECKS)
    gw1 = ShardWriter(run_dir, "gw1", _info(), CHECKS)
    gw1.write(_result("XD-001"))
    gw0.write(_result("XD-003"))
    gw0.write(_result("XD-002"))
    gw1.write(_result("XD-004"))
    gw0.close()
    gw1.close()


def test_shards_merge_in_collection_order(tmp_path: Path) -> None:
    _shards(tmp_path)
    merged = merge_shards(tmp_path)
    assert [r.id for r in merged.results] == ["XD-001", "XD-002", "XD-003", "XD-004"]
    assert (merged.from_shards, merged.unreadable) == (True, 0)
    assert [json.loads(line)["id"] for line in merged.lines] == [r.id for r in merged.results]


def test_without_results_jsonl_readers_merge_the_shards(tmp_path: Path) -> None:
    _shards(tmp_path)
    assert not (tmp_path / RESULTS_FILE).exists()  # a distributed run killed before its end
    assert [r.id for r in load_results(tmp_path)] == ["XD-001", "XD-002", "XD-003", "XD-004"]


def test_a_shard_line_cut_short_is_left_out_and_counted(tmp_path: Path) -> None:
    _shards(tmp_path)
    with (tmp_path / SHARDS_DIR / "gw0.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"id": "XD-005", "area": "XD", "sta')
    read = read_results(tmp_path)
    assert [r.id for r in read.results] == ["XD-001", "XD-002", "XD-003", "XD-004"]
    assert read.unreadable == 1


def test_merging_writes_results_jsonl_and_drops_the_shards(tmp_path: Path) -> None:
    _shards(tmp_path)
    write_merged(tmp_path, merge_shards(tmp_path))
    assert not (tmp_path / SHARDS_DIR).exists()
    read = read_results(tmp_path)
    assert [r.id for r in read.results] == ["XD-001", "XD-002", "XD-003", "XD-004"]
    assert read.from_shards is False


def test_results_jsonl_wins_over_stray_shards(tmp_path: Path) -> None:
    writer = ResultsWriter(tmp_path, _info())
    writer.write(_result("XD-009"))
    writer.close()
    _shards(tmp_path)
    assert [r.id for r in load_results(tmp_path)] == ["XD-009"]


def test_the_meta_file_keeps_the_workers_view_of_the_run(tmp_path: Path) -> None:
    info = _info()
    shard = ShardWriter(tmp_path, "gw3", info, CHECKS)
    info.config["cleanup"] = [{"check": "test_x.py::XD-001", "cancelled": ["pc-1"]}]
    shard.write_run()
    shard.close()
    meta = json.loads((tmp_path / SHARDS_DIR / "gw3.json").read_text())
    assert meta["checks"][0] == ["test_x.py::XD-001", "XD-001", "XD"]
    assert meta["run"]["config"]["cleanup"][0]["cancelled"] == ["pc-1"]
    assert not (tmp_path / "run.json").exists()  # run.json is the controller's


def test_worker_counts_for_perpcheck_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.distributed as distributed
    from harness.errors import ConfigError

    assert distributed.workers_args(None) == []
    assert distributed.workers_args("1") == []  # one process: the serial run
    assert distributed.workers_args("2") == ["-n", "2"]
    assert distributed.workers_args("auto") == ["-n", "auto"]
    with pytest.raises(ConfigError, match="must be a number of processes or 'auto'"):
        distributed.workers_args("-2")
    monkeypatch.setattr(distributed, "find_spec", lambda name: None)  # xdist not installed
    with pytest.raises(ConfigError, match="-n needs pytest-xdist: pip install pytest-xdist"):
        distributed.workers_args("2")


class _Hook:
    def __init__(self) -> None:
        self.finished: list[Path] = []

    def pytest_perpcheck_run_finished(self, config: object, run_dir: Path, **_: object) -> None:
        self.finished.append(run_dir)


class _Config:
    """What the controller's recorder reads of pytest's config."""

    def __init__(self) -> None:
        self.invocation_params = type("Params", (), {"args": ("-n", "2")})()
        self.hook = _Hook()


class _Node:
    def __init__(self, worker: str) -> None:
        self.workerinput = {"workerid": worker, "workercount": 2}


def _controller(run_dir: Path) -> Any:
    from harness.distributed import ControllerRecorder
    from harness.recording import RunSettings

    settings = RunSettings("sim", 1, (), None, run_dir.parent, run_dir.name, {}, run_dir=run_dir)
    return ControllerRecorder(settings, _Config(), CHECKS)  # type: ignore[arg-type]


def test_the_merge_starts_once_the_last_worker_has_finished(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _shards(run_dir)
    controller = _controller(run_dir)
    controller.pytest_testnodedown(_Node("gw0"), None)
    early = controller._merging
    assert early is None  # gw1 may still be writing its shard
    controller.pytest_testnodedown(_Node("gw1"), None)
    merging = controller._merging
    merging.join()  # merged while xdist waits for the worker processes to exit
    assert [r.id for r in load_results(run_dir)] == ["XD-001", "XD-002", "XD-003", "XD-004"]
    assert not (run_dir / SHARDS_DIR).exists()
    controller.finish(0)  # the rest of the run's end: run.json, the report
    run = json.loads((run_dir / "run.json").read_text())
    assert (run["complete"], run["counts"], run["exit_status"]) == (True, {"passed": 4}, 0)
    assert (run_dir / "index.html").exists()
    assert [r.id for r in controller.results] == ["XD-001", "XD-002", "XD-003", "XD-004"]
    assert controller.config.hook.finished == [run_dir]


def test_after_a_lost_worker_the_merge_waits_for_the_sessions_end(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _shards(run_dir)
    controller = _controller(run_dir)
    controller.pytest_testnodedown(_Node("gw0"), "worker 'gw0' crashed")
    controller.pytest_testnodedown(_Node("gw2"), None)  # a replacement, xdist's restart
    controller.pytest_testnodedown(_Node("gw1"), None)
    assert controller._merging is None
    assert (run_dir / SHARDS_DIR).exists()
    controller.finish(1)
    assert [r.id for r in load_results(run_dir)] == ["XD-001", "XD-002", "XD-003", "XD-004"]
    assert not (run_dir / SHARDS_DIR).exists()


def test_an_error_in_the_early_merge_surfaces_when_the_session_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.distributed as distributed

    run_dir = tmp_path / "run"
    _shards(run_dir)
    controller = _controller(run_dir)

    def broken(run_dir: Path, read: object) -> None:  # fails in the merge thread only
        import threading

        if threading.current_thread() is not threading.main_thread():
            msg = "disk full"
            raise OSError(msg)

    monkeypatch.setattr(distributed, "write_merged", broken)
    controller.pytest_testnodedown(_Node("gw0"), None)
    controller.pytest_testnodedown(_Node("gw1"), None)
    with pytest.raises(OSError, match="disk full"):  # not swallowed, nor merged a second time
        controller.finish(0)
