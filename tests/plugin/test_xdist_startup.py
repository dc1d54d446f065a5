"""What each process of a run pays before its first check and after its last (issue 9).

A distributed run starts every worker from scratch and waits for every worker process to exit,
so what a process imports and what the garbage collector walks at the end sit on the run's
critical path: the checks' modules do not import ``networkx`` (only the cascade checks draw
graphs; they import it when they do), and everything alive when the checks start is frozen out
of the collector's sight (harness.recording.freeze_imports).
"""

from __future__ import annotations

import gc
import subprocess
import sys

from harness.recording import freeze_imports
from tests.test_run_resilience import ROOT


def test_collecting_the_suites_does_not_import_networkx() -> None:
    code = (
        "import sys, pkgutil, importlib, suites, harness.oracle.exposure\n"
        "for m in pkgutil.walk_packages(suites.__path__, 'suites.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('networkx' in sys.modules)\n"
    )
    proc = subprocess.run(  # noqa: S603 - the interpreter running the tests, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert proc.stdout.strip() == "False"


def test_the_graphs_still_import_it_when_drawn() -> None:
    from harness.oracle.cascade import CascadePrediction
    from harness.oracle.exposure import cascade_graph, exposure_graph

    assert exposure_graph([]).number_of_nodes() == 0
    prediction = CascadePrediction(
        rounds=(), shocked_marks={}, final_marks={}, liquidated=("a",), generation={"a": 0}
    )
    assert list(cascade_graph(prediction).nodes) == ["a"]


def test_what_is_alive_when_the_checks_start_is_frozen_once() -> None:
    before = gc.get_freeze_count()
    try:
        gc.unfreeze()
        freeze_imports()
        frozen = gc.get_freeze_count()
        assert frozen > 0
        kept: list[list[int]] = [[] for _ in range(1000)]  # new objects: a later session's
        freeze_imports()
        assert gc.get_freeze_count() == frozen  # not frozen by a second session in the process
        assert kept
    finally:
        gc.unfreeze()
        if before:
            gc.freeze()
