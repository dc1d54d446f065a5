"""Placeholder: replaced by the liquidation-price calculator."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("calc", help="risk calculators")
    p.set_defaults(handler=lambda args: 2)
