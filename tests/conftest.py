"""Shared test configuration."""

from __future__ import annotations

import os

from hypothesis import settings

pytest_plugins = ["pytester"]

settings.register_profile("ci", deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
