"""perpcheck's own pytest hooks: the run's events, which each output handles.

The JSONL writer (:mod:`harness.recording`) emits them; Allure results (:mod:`harness.allure`) and
the console progress (:mod:`harness.progress`) are handlers. A plugin of your own can implement
any of them (``def pytest_perpcheck_check_finished(item, result): ...``) to stream results
elsewhere.

Under pytest-xdist (:mod:`harness.distributed`) ``check_finished`` is called in the worker that
ran the check; ``run_started`` and ``run_finished`` once, on the controller.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.results import CheckResult, RunInfo

__all__ = [
    "pytest_perpcheck_check_finished",
    "pytest_perpcheck_run_finished",
    "pytest_perpcheck_run_started",
]

hookspec = pytest.hookspec


@hookspec
def pytest_perpcheck_run_started(config: pytest.Config, run_dir: Path, run: RunInfo) -> None:
    """The run folder and ``run.json`` exist; no check has run yet."""


@hookspec
def pytest_perpcheck_check_finished(item: pytest.Item, result: CheckResult) -> None:
    """A check's result is final and written to ``results.jsonl``.

    Called from the check's teardown report, before pytest closes the item, so per-test
    reporters (Allure) can still add to the test they are writing.
    """


@hookspec
def pytest_perpcheck_run_finished(
    config: pytest.Config, run_dir: Path, run: RunInfo, results: Sequence[CheckResult]
) -> None:
    """``run.json`` is final (``finished_at``, ``complete``) and ``index.html`` rendered."""
