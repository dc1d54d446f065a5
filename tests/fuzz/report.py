"""Counts a test reports at the end of the session (requests sent, orders reconciled...)."""

from __future__ import annotations

import pytest

__all__ = ["report"]

_NAME = "perpcheck-test-counts"


class _Summary:
    def __init__(self) -> None:
        self.lines: dict[str, str] = {}

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        for line in self.lines.values():
            terminalreporter.write_line(line)


def report(config: pytest.Config, topic: str, line: str) -> None:
    """Print ``line`` in the terminal summary (the latest line per ``topic``)."""
    plugin = config.pluginmanager.get_plugin(_NAME)
    if not isinstance(plugin, _Summary):
        plugin = _Summary()
        config.pluginmanager.register(plugin, _NAME)
    plugin.lines[topic] = line
