"""benchmarks/http_census.py: a sim-http run's requests counted by endpoint and by check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_the_census_counts_each_check_s_requests_by_route(tmp_path: Path) -> None:
    saved = tmp_path / "census.json"  # not benchmarks/out: a test keeps a user's figures
    script = str(BENCHMARKS / "http_census.py")
    proc = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, script, "-k", "ORD-002", "--top", "3", "--out", str(saved)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "over 1 checks" in proc.stdout
    counts = json.loads(saved.read_text(encoding="utf-8"))
    assert set(counts) == {"ORD-002"}
    # ORD-002 sends one off-tick limit order, refused: one order request, reads around it.
    assert counts["ORD-002"]["POST /fapi/v1/order"] >= 1
    assert sum(counts["ORD-002"].values()) == int(
        proc.stdout.split("sim-http requests: ")[1].split(" ")[0].replace(",", "")
    )
