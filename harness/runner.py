"""Placeholder: replaced by `perpcheck run`."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("run", help="run the conformance suites")
    p.set_defaults(handler=lambda args: 2)
