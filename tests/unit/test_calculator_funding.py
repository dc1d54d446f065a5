"""``perpcheck calc funding-drift`` (harness/calc_funding.py, perp-mechanics.md §3, §4, §6).

Figures worked by hand with the BTCUSDT fixture brackets: tier 1 is notional ``[0, 50 000)`` at
0.4 % with cum 0, so a 0.5 BTC position at 60 000 (notional 30 000) has maintenance 120 and an
isolated liquidation price ``(WB − s·Q·EP) / (Q·0.004 − s·Q)``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BTC_FILE = str(FIXTURES / "binance_brackets_btcusdt.json")
ROW_KEYS = {"cycle", "payment", "wallet", "equity", "maint_margin", "liquidation_price"}


def _drift(*args: str) -> list[str]:
    return ["calc", "funding-drift", "--brackets", BTC_FILE, *args]


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    assert main(argv) == 0
    out = capsys.readouterr()
    assert out.err == ""
    body: dict[str, Any] = json.loads(out.out)
    assert set(body) == {"cycles", "cycles_to_liquidation"}
    assert all(set(row) == ROW_KEYS for row in body["cycles"])
    return body


def test_a_long_paying_one_percent_is_liquidatable_after_the_third_cycle(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 0.5 × 60 000 × 1 % = 300 per cycle from 1 000: 700, 400, 100 (<= maintenance 120).
    body = _json(capsys, _drift(
        "--wallet", "1000", "--position", "BTCUSDT:long:0.5@60000", "--mark", "60000",
        "--rate", "0.01", "--cycles", "4", "--json",
    ))  # fmt: skip
    rows = body["cycles"]
    assert [r["cycle"] for r in rows] == [1, 2, 3, 4]
    assert [r["payment"] for r in rows] == ["300.00000000"] * 4
    assert [r["wallet"] for r in rows] == [
        "700.00000000",
        "400.00000000",
        "100.00000000",
        "-200.00000000",
    ]
    assert [r["equity"] for r in rows] == [r["wallet"] for r in rows]  # mark = entry
    assert {r["maint_margin"] for r in rows} == {"120.00000000"}
    # (700 − 30 000) / (0.002 − 0.5) = 58 835.341365461847…
    assert rows[0]["liquidation_price"] == "58835.34136546"
    assert body["cycles_to_liquidation"] == 3


def test_a_short_receives_funding_and_its_liquidation_price_moves_away(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The short receives 0.5 × 60 000 × 0.01 % = 3 per cycle; LP = (1 003 + 30 000) / 0.502.
    body = _json(capsys, _drift(
        "--wallet", "1000", "--position", "BTCUSDT:short:0.5@60000", "--mark", "60000",
        "--rate", "0.0001", "--cycles", "2", "--json",
    ))  # fmt: skip
    assert body == {
        "cycles": [
            {
                "cycle": 1,
                "payment": "-3.00000000",
                "wallet": "1003.00000000",
                "equity": "1003.00000000",
                "maint_margin": "120.00000000",
                "liquidation_price": "61758.96414343",
            },
            {
                "cycle": 2,
                "payment": "-3.00000000",
                "wallet": "1006.00000000",
                "equity": "1006.00000000",
                "maint_margin": "120.00000000",
                "liquidation_price": "61764.94023904",
            },
        ],
        "cycles_to_liquidation": None,
    }


def test_equity_and_maintenance_are_at_the_given_mark(capsys: pytest.CaptureFixture[str]) -> None:
    # Mark 59 000: payment 0.5 × 59 000 × 0.01 % = 2.95; equity 997.05 − 500 = 497.05;
    # maintenance 29 500 × 0.4 % = 118; LP (997.05 − 30 000) / (0.002 − 0.5) = 58 238.855…
    body = _json(capsys, _drift(
        "--wallet", "1000", "--position", "BTCUSDT:long:0.5@60000", "--mark", "59000",
        "--rate", "0.0001", "--cycles", "1", "--json",
    ))  # fmt: skip
    (row,) = body["cycles"]
    assert (row["payment"], row["wallet"], row["equity"]) == (
        "2.95000000",
        "997.05000000",
        "497.05000000",
    )
    assert (row["maint_margin"], row["liquidation_price"]) == ("118.00000000", "58238.85542169")


def test_payments_are_rounded_up_to_the_unit_for_the_payer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 0.003 × 60 123.45678901 × 0.00012345 = 0.0222667222218098535 → 0.02226673 paid.
    body = _json(capsys, _drift(
        "--wallet", "10", "--position", "BTCUSDT:long:0.003@60000", "--mark", "60123.45678901",
        "--rate", "0.00012345", "--cycles", "2", "--json",
    ))  # fmt: skip
    assert [r["payment"] for r in body["cycles"]] == ["0.02226673", "0.02226673"]
    assert [r["wallet"] for r in body["cycles"]] == ["9.97773327", "9.95546654"]


def test_default_is_ten_cycles_and_the_table_states_the_verdict(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = _drift(
        "--wallet", "1000", "--position", "BTCUSDT:long:0.5@60000", "--mark", "60000",
        "--rate", "0.01",
    )  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "isolated BTCUSDT long 0.5 @ 60000, mark 60000, rate 0.01 per interval "
        "(positive: longs pay)"
    )
    assert lines[1].split() == [
        "cycle", "payment", "wallet", "equity", "maint.", "margin", "liq.", "price",
    ]  # fmt: skip
    assert lines[2].split() == [
        "1", "300.00000000", "700.00000000", "700.00000000", "120.00000000", "58835.34",
    ]  # fmt: skip
    assert len(lines) == 2 + 10 + 1
    assert lines[-1] == "liquidatable after cycle 3"


BAD_INPUTS = [
    (["--rate", "0.0001", "--mark", "0"], "--mark '0' must be > 0"),
    (["--rate", "lots", "--mark", "60000"], "--rate 'lots' is not a number"),
    (["--rate", "1", "--mark", "60000"], "--rate '1' is 100 % or more per interval"),
    (["--rate", "0.0001", "--mark", "60000", "--cycles", "ten"], "--cycles 'ten' is not a whole"),
    (["--rate", "0.0001", "--mark", "60000", "--cycles", "0"], "--cycles 0 must be between 1"),
    (
        ["--rate", "0.0001", "--mark", "60000", "--position", "BTCUSDT:short:1@60000"],
        "give a single --position",
    ),
]


@pytest.mark.parametrize(("extra", "message"), BAD_INPUTS)
def test_bad_input_is_one_line_naming_the_culprit(
    capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = _drift("--wallet", "1000", "--position", "BTCUSDT:long:0.5@60000", *extra)
    assert main(argv) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.startswith("perpcheck calc: ")
    assert message in out.err
    assert out.err.count("\n") == 1


def test_a_bad_wallet_or_position_uses_the_liquidation_price_rules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = _drift(
        "--wallet", "-1", "--position", "BTCUSDT:long:0.5@60000", "--mark", "1", "--rate", "0",
    )  # fmt: skip
    assert main(argv) == 2
    assert "--wallet '-1' must be >= 0" in capsys.readouterr().err
    argv = _drift(
        "--wallet", "1", "--position", "XRPUSDT:long:1@1", "--mark", "1", "--rate", "0",
    )  # fmt: skip
    assert main(argv) == 2
    assert "symbol XRPUSDT is not in the brackets file" in capsys.readouterr().err


def test_process_prints_one_line_and_no_traceback_on_bad_input() -> None:
    proc = subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        [
            sys.executable, "-m", "harness.cli",
            *_drift("--wallet", "1000", "--position", "BTCUSDT:long:0.5@60000",
                    "--mark", "60000", "--rate", "0.0001", "--cycles", "-3"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == "perpcheck calc: --cycles -3 must be between 1 and 100000\n"
