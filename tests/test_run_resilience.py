"""A run stopped at any point leaves a readable, honest record (issue 10, item 4).

Each test starts ``perpcheck run`` as a process with the test-only plugin
:mod:`tests.plugin.pause_hook`, which stops the run at a chosen point (between two checks, or
inside a check with orders resting and a position open) and says so in a marker file; the test
signals the process only then. No wall-clock guess decides where the run is.

* SIGKILL between checks and inside one: ``results.jsonl`` holds exactly the checks that had
  ended, ``run.json`` says the run did not finish, and ``perpcheck report`` exits 0 and renders
  it as INCOMPLETE. A last line cut short (a kill inside the write) is left out and said.
* Ctrl-C (SIGINT) inside a check on ``sim-http`` with ``--cleanup`` (what a testnet run always
  does), serial and with two xdist workers: the run exits 130 with its "interrupted" line, the
  venue, asked by a fresh client when the run stops its server, holds no order and no position
  of the run, and run.json records what was cleaned.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "harness.cli"]
WAIT_S = 120
SELECTION = "ORD-001 or ORD-002 or ORD-003"
#: Inside ORD-004, after its first accepted order (the post-only order resting behind the bid).
INSIDE = "inside:ORD-004:1"


class Paused:
    """A ``perpcheck run`` process stopped at its pause point."""

    def __init__(self, tmp: Path, pause: str, *args: str) -> None:
        self.reports = tmp / "reports"
        self.marker = tmp / "marker.json"
        self.after = tmp / "after.json"
        self.log = tmp / "run.log"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PYTEST_PLUGINS": "tests.plugin.pause_hook",
            "PERPCHECK_TEST_PAUSE": pause,
            "PERPCHECK_TEST_MARKER": str(self.marker),
            "PERPCHECK_TEST_AFTER": str(self.after),
        }
        env.pop("CI", None)
        command = [*CLI, "run", "--seed", "5", "--no-allure", "--report-dir", str(self.reports)]
        with self.log.open("wb") as log:  # a file: a pipe nobody reads could stall the run
            self.proc = subprocess.Popen(  # noqa: S603 - our own CLI with fixed arguments
                [*command, *args],
                cwd=tmp,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: xdist workers included
            )
        self.where = self._wait_for_marker()

    def _wait_for_marker(self) -> dict[str, Any]:
        for _ in range(WAIT_S * 20):
            if self.marker.exists():
                data: dict[str, Any] = json.loads(self.marker.read_text(encoding="utf-8"))
                return data
            try:
                self.proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"the run ended before its pause point:\n{self.output()}")
        self.kill()
        pytest.fail(f"the run did not reach its pause point in {WAIT_S} s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL the run's whole process group (the run and any xdist workers)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=WAIT_S)

    def interrupt(self) -> int:
        """Ctrl-C, as a terminal sends it: SIGINT to the process group."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout=WAIT_S)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    @property
    def run_dir(self) -> Path:
        (run_dir,) = [p for p in self.reports.iterdir() if p.is_dir()]
        return run_dir


def _ids(run_dir: Path) -> list[str]:
    lines = (run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["id"] for line in lines]


def _report(run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [*CLI, "report", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
        cwd=ROOT,
    )


def _verdict(run_dir: Path) -> str:
    html = (run_dir / "index.html").read_text(encoding="utf-8")
    return html.split('class="verdict verdict-', 1)[1].split('"', 1)[0]


def test_sigkill_between_checks_leaves_a_readable_incomplete_run(tmp_path: Path) -> None:
    paused = Paused(tmp_path, "after:ORD-002", "-k", SELECTION)
    paused.kill()
    run_dir = paused.run_dir
    assert _ids(run_dir) == ["ORD-001", "ORD-002"]  # every line parses; nothing after the kill
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert (run["finished_at"], run["complete"]) == (None, False)
    assert run["counts"] == {"passed": 2}
    assert run["config"]["checks_selected"] == 3
    assert not (run_dir / "index.html").exists()  # the run never got to render it
    shown = _report(run_dir)
    assert shown.returncode == 0, shown.stderr
    assert "the run did not finish; 2 of 3 checks recorded" in shown.stdout
    assert "unreadable" not in shown.stdout
    assert _verdict(run_dir) == "incomplete"


def test_a_last_line_cut_short_is_left_out_and_said(tmp_path: Path) -> None:
    paused = Paused(tmp_path, "after:ORD-001", "-k", SELECTION)
    paused.kill()
    run_dir = paused.run_dir
    # A kill inside the write of the next line (not something a test can time): half a line.
    whole = (run_dir / "results.jsonl").read_text(encoding="utf-8")
    with (run_dir / "results.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(whole[: len(whole) // 2])
    shown = _report(run_dir)
    assert shown.returncode == 0, shown.stderr
    assert "1 of 3 checks recorded; 1 unreadable line(s)" in shown.stdout
    html = (run_dir / "index.html").read_text(encoding="utf-8")
    assert "1 result line could not be read" in html
    assert _verdict(run_dir) == "incomplete"


def test_sigkill_inside_a_check_keeps_the_checks_that_ended(tmp_path: Path) -> None:
    paused = Paused(tmp_path, INSIDE, "-k", "ORD-003 or ORD-004 or ORD-005")
    assert paused.where["open_orders"], paused.where  # it really was mid-check, orders out
    paused.kill()
    run_dir = paused.run_dir
    assert _ids(run_dir) == ["ORD-003"]
    shown = _report(run_dir)
    assert shown.returncode == 0, shown.stderr
    assert "the run did not finish; 1 of 3 checks recorded" in shown.stdout
    assert _verdict(run_dir) == "incomplete"


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_ctrl_c_mid_check_cancels_orders_flattens_and_records_it(
    tmp_path: Path, workers: tuple[str, ...]
) -> None:
    paused = Paused(
        tmp_path, INSIDE, "--venue", "sim-http", "--cleanup", "-k", "ORD-003 or ORD-004", *workers
    )
    before = paused.where
    prefix = before["prefix"]
    assert [o for o in before["open_orders"] if o.startswith(prefix)], before
    assert before["position"] not in ("0", "0.000"), before  # the run holds a position
    code = paused.interrupt()
    out = paused.output()
    assert code == 130, out
    assert out.rstrip().splitlines()[-1].startswith("perpcheck run: interrupted"), out
    after = json.loads(paused.after.read_text(encoding="utf-8"))  # asked by a fresh client
    assert [o for o in after["open_orders"] if o.startswith(prefix)] == []
    assert after["positions"] == {}
    run = json.loads((paused.run_dir / "run.json").read_text(encoding="utf-8"))
    assert (run["complete"], run["exit_status"]) == (False, 2)  # pytest's "interrupted"
    (cleaned,) = [
        c for c in run["config"]["cleanup"] if c["check"].endswith("::test_post_only_never_takes")
    ]
    assert cleaned["cancelled"] == [o for o in before["open_orders"] if o.startswith(prefix)]
    assert cleaned["flattened"] == [[before["symbol"], before["position"]]]
    assert cleaned["errors"] == []
    html = (paused.run_dir / "index.html").read_text(encoding="utf-8")
    assert 'class="banner banner-incomplete"' in html
    if workers:  # ORD-003 ran beside it, in the other worker, and may have been interrupted too
        assert set(_ids(paused.run_dir)) <= {"ORD-003"}
        assert not (paused.run_dir / "shards").exists()  # merged when the run stopped
    else:
        assert _ids(paused.run_dir) == ["ORD-003"]
        assert _verdict(paused.run_dir) == "incomplete"


def test_an_account_whose_teardown_never_ran_is_recorded_as_not_cleaned(tmp_path: Path) -> None:
    from harness.recording import RunSettings

    settings = RunSettings(
        venue="sim-http",
        seed=1,
        defects=(),
        scenario=None,
        report_dir=tmp_path,
        run_id=None,
        options={},
    )
    settings.live_accounts["suites/test_orders.py::test_x"] = "binanceusdm-demo"
    settings.record_uncleaned()
    (entry,) = settings.cleanups
    assert entry["check"] == "suites/test_orders.py::test_x"
    assert entry["errors"] == [
        "binanceusdm-demo: the account's cleanup never ran; check the venue for orders"
    ]
    assert settings.live_accounts == {}
    settings.record_uncleaned()  # said once
    assert len(settings.cleanups) == 1
