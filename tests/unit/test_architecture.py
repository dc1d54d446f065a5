"""Layering rules from DESIGN.md and STYLE.md, checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_harness_imports_no_adapter_and_no_ccxt() -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(
            n for n in _imports(p) if n.split(".")[0] in {"adapters", "ccxt"}
        )
        for p in _python_files("harness")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_oracle_is_independent_of_the_simulator_and_the_simulator_of_the_oracle() -> None:
    sim_uses_oracle = {
        str(p.relative_to(ROOT))
        for p in _python_files("adapters")
        if any(n.startswith("harness.oracle") for n in _imports(p))
    }
    assert sim_uses_oracle == set()


def test_suites_talk_to_venues_only_through_the_protocol() -> None:
    offenders = {
        str(p.relative_to(ROOT))
        for p in _python_files("suites")
        if any(n.split(".")[0] in {"adapters", "ccxt"} for n in _imports(p))
    }
    assert offenders == set()


def test_nothing_sleeps_on_the_wall_clock_outside_the_wall_clock() -> None:
    offenders = []
    for folder in ("harness", "adapters", "suites", "tests"):
        for path in _python_files(folder):
            text = path.read_text(encoding="utf-8")
            if "time.sleep(" in text and path.name not in {"test_architecture.py"}:
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_no_float_in_money_code() -> None:
    offenders = []
    for folder in ("harness/oracle", "adapters/sim"):
        for path in _python_files(folder):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "float":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                if isinstance(node, ast.Constant) and isinstance(node.value, float):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
