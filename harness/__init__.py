"""perpcheck: a conformance harness for perpetual-futures venues.

The public API: domain types, the clock, the Venue protocol, check declaration and results.

PYTEST_DONT_REWRITE: this is library code, imported by ``perpcheck run`` before pytest starts;
checks report through ``CheckContext``, not ``assert``, so nothing here needs rewriting.
"""

from __future__ import annotations

from harness.checks import AREAS, REGISTRY, CheckContext, CheckSpec, check
from harness.clock import Clock, VirtualClock, WallClock
from harness.errors import (
    AuthError,
    Banned,
    CheckDefinitionError,
    CheckFailed,
    ConfigError,
    NoSolution,
    PerpcheckError,
    RateLimited,
    Rejected,
    Unavailable,
    VenueError,
)
from harness.results import CheckResult, Measurement, RunInfo, Status
from harness.venue import (
    Account,
    Capability,
    Venue,
    VenueConfig,
    VenueControl,
    VenueRules,
    available_venues,
    open_venue,
)

__version__ = "0.1.0"

__all__ = [
    "AREAS",
    "REGISTRY",
    "Account",
    "AuthError",
    "Banned",
    "Capability",
    "CheckContext",
    "CheckDefinitionError",
    "CheckFailed",
    "CheckResult",
    "CheckSpec",
    "Clock",
    "ConfigError",
    "Measurement",
    "NoSolution",
    "PerpcheckError",
    "RateLimited",
    "Rejected",
    "RunInfo",
    "Status",
    "Unavailable",
    "Venue",
    "VenueConfig",
    "VenueControl",
    "VenueError",
    "VenueRules",
    "VirtualClock",
    "WallClock",
    "__version__",
    "available_venues",
    "check",
    "open_venue",
]
