"""``perpcheck calc liquidation-price`` (harness/calculator.py, perp-mechanics.md §6).

The published Binance FAQ example (see tests/unit/test_oracle_liquidation.py for its sources)
goes through the command line and must come out to the cent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from harness.cli import main

D = Decimal
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FAQ_FILE = str(FIXTURES / "binance_brackets_2021_faq_example.json")
BTC_FILE = str(FIXTURES / "binance_brackets_btcusdt.json")
FAQ_POSITIONS = [
    "--position",
    "BTCUSDT:long:109.488@32481.98",
    "--position",
    "ETHUSDT:long:3683.979@1456.84",
]
FAQ_MARKS = ["--mark", "BTCUSDT=31967.27", "--mark", "ETHUSDT=1335.18"]
KEYS = {
    "symbol",
    "side",
    "quantity",
    "entry_price",
    "liquidation_price",
    "bankruptcy_price",
    "maint_margin_ratio",
    "bracket",
}


def _calc(*args: str) -> list[str]:
    return ["calc", "liquidation-price", *args]


def _json_rows(capsys: pytest.CaptureFixture[str], argv: list[str]) -> list[dict[str, object]]:
    assert main(argv) == 0
    out = capsys.readouterr()
    assert out.err == ""
    body = json.loads(out.out)
    assert set(body) == {"positions"}
    rows: list[dict[str, object]] = body["positions"]
    return rows


def _price(row: dict[str, object], key: str) -> Decimal:
    value = row[key]
    assert isinstance(value, str)
    return D(value)


def test_cli_reproduces_the_binance_faq_cross_example(capsys: pytest.CaptureFixture[str]) -> None:
    argv = _calc(
        "--brackets", FAQ_FILE, "--wallet", "1535443.01", "--mode", "cross", "--json",
        *FAQ_POSITIONS, *FAQ_MARKS,
    )  # fmt: skip
    btc, eth = _json_rows(capsys, argv)
    assert set(btc) == KEYS
    assert abs(_price(btc, "liquidation_price") - D("26316.89")) < D("0.01")
    assert abs(_price(eth, "liquidation_price") - D("1153.26")) < D("0.01")
    assert (btc["bracket"], btc["maint_margin_ratio"]) == (4, "0.025")
    assert (eth["bracket"], eth["maint_margin_ratio"]) == (6, "0.1")
    assert btc["liquidation_price"] == "26316.89326452"  # 8 dp, ROUND_HALF_EVEN
    assert (btc["symbol"], btc["side"], btc["quantity"], btc["entry_price"]) == (
        "BTCUSDT",
        "long",
        "109.488",
        "32481.98",
    )


def test_cli_reproduces_the_binance_faq_isolated_examples(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = _calc(
        "--brackets", FAQ_FILE, "--wallet", "1535443.01", "--mode", "isolated", "--json",
        *FAQ_POSITIONS,
    )  # fmt: skip
    btc, eth = _json_rows(capsys, argv)
    assert abs(_price(btc, "liquidation_price") - D("18778.73")) < D("0.01")
    assert abs(_price(eth, "liquidation_price") - D("1114.78")) < D("0.01")


def test_cli_marks_move_cross_but_not_isolated_prices(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--brackets", FAQ_FILE, "--wallet", "1535443.01", "--json", *FAQ_POSITIONS]
    at_entry = _json_rows(capsys, _calc(*base, "--mode", "cross"))
    at_marks = _json_rows(capsys, _calc(*base, "--mode", "cross", *FAQ_MARKS))
    assert at_entry[0]["liquidation_price"] != at_marks[0]["liquidation_price"]
    iso = _json_rows(capsys, _calc(*base, "--mode", "isolated"))
    iso_marks = _json_rows(capsys, _calc(*base, "--mode", "isolated", *FAQ_MARKS))
    assert iso == iso_marks


def test_cli_json_uses_null_when_there_is_no_liquidation_price(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = _calc(
        "--brackets", BTC_FILE, "--wallet", "60000", "--mode", "isolated", "--json",
        "--position", "btcusdt:LONG:1@60000",
    )  # fmt: skip
    (row,) = _json_rows(capsys, argv)
    assert row == {
        "symbol": "BTCUSDT",
        "side": "long",
        "quantity": "1",
        "entry_price": "60000",
        "liquidation_price": None,
        "bankruptcy_price": None,
        "maint_margin_ratio": None,
        "bracket": None,
    }


def test_cli_prints_an_aligned_table_with_prices_to_the_cent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = _calc(
        "--brackets", FAQ_FILE, "--wallet", "1535443.01", "--mode", "cross",
        *FAQ_POSITIONS, *FAQ_MARKS,
    )  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "cross margin, linear contracts, one-way mode"
    header, btc, eth = lines[1:]
    assert header.split() == ["symbol", "side", "quantity", "entry", "liq.", "price", "bankr.",
                              "price", "mmr", "bracket"]  # fmt: skip
    assert btc.split() == ["BTCUSDT", "long", "109.488", "32481.98", "26316.89", "22551.67",
                           "0.025", "4"]  # fmt: skip
    assert eth.split()[4] == "1153.26"
    assert len(header) == len(btc) == len(eth)  # right-aligned columns end together


BAD_INPUTS = [
    (["--position", "XRPUSDT:long:1@1"], "symbol XRPUSDT is not in the brackets file"),
    (["--position", "BTCUSDT:long:0@1"], "quantity 0 must be > 0"),
    (["--position", "BTCUSDT:short:-2@1"], "quantity -2 must be > 0"),
    (["--position", "BTCUSDT:long:1@0"], "entry price 0 must be > 0"),
    (["--position", "BTCUSDT-long-1"], "is malformed; write SYMBOL:long|short:QTY@ENTRY"),
    (["--position", "BTCUSDT:up:1@1"], "side 'up' must be 'long' or 'short'"),
    (["--position", "BTCUSDT:long:lots@1"], "quantity 'lots' is not a number"),
    (["--position", "BTCUSDT:long:1@1", "--mark", "ETHUSDT=5"], "no --position for ETHUSDT"),
    (["--position", "BTCUSDT:long:1@1", "--mark", "BTCUSDT"], "--mark 'BTCUSDT' is malformed"),
    (["--position", "BTCUSDT:long:1@1", "--mark", "BTCUSDT=0"], "price 0 must be > 0"),
    (
        ["--position", "BTCUSDT:long:1@1", "--mark", "BTCUSDT=1", "--mark", "BTCUSDT=2"],
        "--mark for BTCUSDT is given twice",
    ),
    (
        ["--position", "BTCUSDT:long:1@1", "--position", "BTCUSDT:short:1@1"],
        "--position BTCUSDT is given twice",
    ),
]


@pytest.mark.parametrize(("extra", "message"), BAD_INPUTS)
def test_cli_bad_position_input_is_one_line_naming_the_culprit(
    capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(_calc("--brackets", BTC_FILE, "--wallet", "10", "--mode", "cross", *extra)) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.startswith("perpcheck calc: ")
    assert message in out.err
    assert out.err.count("\n") == 1


@pytest.mark.parametrize(
    ("wallet", "brackets", "message"),
    [
        ("ten", BTC_FILE, "--wallet 'ten' is not a number"),
        ("-1", BTC_FILE, "--wallet '-1' must be >= 0"),
        ("Infinity", BTC_FILE, "--wallet 'Infinity' is not a finite number"),
        ("10", "/nonexistent/brackets.json", "cannot read --brackets '/nonexistent/brackets.json'"),
        ("10", str(Path(__file__)), "not valid JSON"),
    ],
)
def test_cli_bad_wallet_or_file_is_one_line_naming_the_culprit(
    capsys: pytest.CaptureFixture[str], wallet: str, brackets: str, message: str
) -> None:
    argv = _calc(
        "--brackets", brackets, "--wallet", wallet, "--mode", "cross",
        "--position", "BTCUSDT:long:1@60000",
    )  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_cli_malformed_brackets_file_names_symbol_and_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    body = json.loads((FIXTURES / "binance_brackets_btcusdt.json").read_text())
    del body[1]["brackets"][3]["cum"]
    bad = tmp_path / "brackets.json"
    bad.write_text(json.dumps(body))
    argv = _calc(
        "--brackets", str(bad), "--wallet", "10", "--mode", "cross",
        "--position", "BTCUSDT:long:1@60000",
    )  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "symbol 'ETHUSDT' bracket #4: missing field(s) cum" in err


def test_cli_no_solution_is_reported_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    argv = _calc(
        "--brackets", BTC_FILE, "--wallet", "10000000000", "--mode", "isolated",
        "--position", "BTCUSDT:short:1000@60000",
    )  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("perpcheck calc: BTCUSDT: the liquidation price lies where")
    assert "use a smaller quantity or less margin" in err


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(_calc("--brackets", BTC_FILE, "--wallet", "1", "--position", "BTCUSDT:long:1@1"))
    assert exc.value.code == 2
    assert "the following arguments are required: --mode" in capsys.readouterr().err


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "harness.cli", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_cli_process_prints_one_line_and_no_traceback_on_bad_input() -> None:
    bad = _run(
        *_calc("--brackets", BTC_FILE, "--wallet", "10", "--mode", "cross",
               "--position", "BTCUSDT:long:-1@60000")
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert "Traceback" not in bad.stderr
    assert bad.stderr == (
        "perpcheck calc: --position 'BTCUSDT:long:-1@60000': quantity -1 must be > 0 "
        "(the side gives the direction)\n"
    )


def test_cli_process_reproduces_the_faq_example() -> None:
    good = _run(
        *_calc("--brackets", FAQ_FILE, "--wallet", "1535443.01", "--mode", "cross", "--json",
               *FAQ_POSITIONS, *FAQ_MARKS)
    )  # fmt: skip
    assert good.returncode == 0, good.stderr
    btc, eth = json.loads(good.stdout)["positions"]
    assert abs(D(btc["liquidation_price"]) - D("26316.89")) < D("0.01")
    assert abs(D(eth["liquidation_price"]) - D("1153.26")) < D("0.01")
