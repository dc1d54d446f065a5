"""One exception hierarchy for perpcheck.

Every error perpcheck raises derives from :class:`PerpcheckError`. Errors caused by the user's
input also subclass the builtin they resemble (``ValueError``), so callers that only know Python
can still catch them. Venue errors carry the venue's own code where it has one.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = [
    "AuthError",
    "Banned",
    "CheckDefinitionError",
    "CheckFailed",
    "ConfigError",
    "Missing",
    "NoSolution",
    "PerpcheckError",
    "RateLimited",
    "Rejected",
    "Unavailable",
    "VenueError",
    "VenueUnavailable",
]


class PerpcheckError(Exception):
    """Root of every error perpcheck raises on purpose."""


class ConfigError(PerpcheckError, ValueError):
    """The user's configuration or input is wrong; the message names the culprit and the fix."""


class VenueUnavailable(ConfigError):  # noqa: N818 - reads as the condition, like Unavailable
    """The venue cannot be opened here (e.g. no API keys in the environment).

    Not a mistake that ends the run: its checks are skipped with this message as the reason.
    """


class CheckDefinitionError(PerpcheckError, TypeError):
    """A check was declared wrongly (bad ID, duplicate ID, missing ``Source:`` line...)."""


class NoSolution(PerpcheckError, ValueError):  # noqa: N818 - reads as a verdict, like Rejected
    """A formula has no valid answer for the inputs (e.g. a liquidation price below zero)."""


class CheckFailed(PerpcheckError, AssertionError):  # noqa: N818 - pytest users expect *Failed
    """A check observed something the rule forbids.

    Carries the first failing comparison so that reports can show expected vs observed.
    """

    def __init__(
        self,
        message: str,
        *,
        expected: object = None,
        observed: object = None,
        tolerance: object = None,
        unit: str = "",
    ) -> None:
        super().__init__(message)
        self.expected = expected
        self.observed = observed
        self.tolerance = tolerance
        self.unit = unit


class VenueError(PerpcheckError):
    """Something a venue refused or failed to do."""


class Missing(VenueError):  # noqa: N818 - reads as the condition: something is missing
    """The venue did not show something a check needs (an empty book side, no position...)."""


class Rejected(VenueError):  # noqa: N818 - the venue's verdict, as venues name it
    """The venue rejected a request with an error code (Binance style ``{code, msg}``)."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


class RateLimited(VenueError):  # noqa: N818 - named as venues name the condition
    """Too many requests; retry after ``retry_after`` seconds (HTTP 429).

    ``code`` is the venue's error code when it sent one (Binance: -1003 request weight, -1015
    order count).
    """

    def __init__(
        self, msg: str, retry_after: Decimal | None = None, code: int | None = None
    ) -> None:
        super().__init__(msg)
        self.retry_after = retry_after
        self.code = code


class Banned(RateLimited):
    """The client kept breaching limits and is banned for ``retry_after`` seconds (HTTP 418)."""


class Unavailable(VenueError):  # noqa: N818 - named as venues name the condition
    """The venue did not answer, answered 5xx, or is in maintenance; execution status unknown."""


class AuthError(VenueError):
    """Bad API key, signature, permissions or timestamp."""
