"""The whole suite passes on ``sim-http`` with the same check IDs and verdicts as on ``sim``.

Issue 5: the simulator behind its Binance-dialect HTTP server, driven through the same ccxt
adapter a testnet uses, must judge identically to the in-process simulator.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SEED = "7"


def _run(venue: str, report_dir: Path) -> dict[str, str]:
    proc = subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            "--venue",
            venue,
            "--seed",
            SEED,
            "--report-dir",
            str(report_dir),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = [p for p in report_dir.iterdir() if p.is_dir()]  # beside allurerc.mjs
    rows = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    return {row["id"]: row["status"] for row in rows}


def test_every_check_passes_on_sim_http_as_on_sim(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        sim, http = pool.map(lambda v: _run(v, tmp_path / v), ["sim", "sim-http"])
    assert set(http) == set(sim)
    assert {k: v for k, v in http.items() if v != "passed"} == {}
    assert http == sim
