"""What every ccxt-backed venue shares: identity, clock, rules, observed usage and closing."""

from __future__ import annotations

import asyncio
import platform
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from adapters.ccxt_venue._ccxt import version as ccxt_version
from adapters.ccxt_venue._wire import Wire, call
from harness.clock import Clock
from harness.deviations import DeviationRegistry, registry_from_package
from harness.errors import Missing
from harness.venue import Capability, RateUsage, VenueControl, VenueRules

__all__ = ["CcxtVenueBase", "not_published"]


def not_published(venue: str, what: str) -> Missing:
    """The error for something the venue does not publish (its capability is absent too)."""
    return Missing(f"{venue} does not publish {what}")


class CcxtVenueBase:
    """The venue-independent half of a ccxt venue; subclasses add the market-data methods.

    ``clients`` are closed by :meth:`close`, then ``closers`` run (e.g. stopping a server) in
    reverse order of registration.
    """

    def __init__(
        self,
        *,
        name: str,
        exchange: Any,
        wire: Wire,
        clock: Clock,
        capabilities: frozenset[Capability],
        rules: VenueRules,
        versions: Mapping[str, str] | None = None,
    ) -> None:
        self._name = name
        self.exchange = exchange
        self.wire = wire
        self._clock = clock
        self._capabilities = capabilities
        self._rules = rules
        self._versions = {
            "ccxt": ccxt_version(),
            "ccxt-exchange": str(exchange.id),
            "python": platform.python_version(),
            **(versions or {}),
        }
        self.clients: list[Any] = [exchange]
        self.closers: list[Callable[[], Awaitable[None]]] = []
        self._control: VenueControl | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self._capabilities

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def rules(self) -> VenueRules:
        return self._rules

    @property
    def control(self) -> VenueControl | None:
        return self._control

    @property
    def versions(self) -> Mapping[str, str]:
        return dict(self._versions)

    @property
    def rate_usage(self) -> RateUsage:
        return self.wire.usage

    def known_deviations(self) -> DeviationRegistry:
        """The venue's documented rule differences: ``deviations/<name>.toml`` (or none)."""
        return registry_from_package(
            "adapters.ccxt_venue", f"deviations/{self._name}.toml", venue=self._name
        )

    async def request(self, method_name: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call one of ccxt's implicit REST methods by name (e.g. ``fapiPublicGetDepth``)."""
        method = getattr(self.exchange, method_name)
        return await call(method(dict(params or {})))

    async def close(self) -> None:
        """Close every ccxt client, then run the closers (last registered first)."""
        clients, self.clients = self.clients, []
        closers, self.closers = self.closers, []
        results = await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        for close in reversed(closers):
            try:
                await close()
            except Exception as exc:  # close the rest, then report the first
                failures.append(exc)
        if failures:
            raise failures[0]
