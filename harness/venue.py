"""The async Venue protocol every adapter implements, its capabilities and its registry.

A :class:`Venue` is market data plus, where the venue allows it, control (virtual clock, price
paths, funded accounts). Trading goes through an :class:`Account`: a testnet venue has exactly one
(the keyed account); the simulator can open more with ``CONTROL_ACCOUNTS``.

Adapters register a factory under the ``perpcheck.venues`` entry-point group; the harness never
imports an adapter module by name.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Literal, Protocol, runtime_checkable

from harness.cascade import AccountExposure, AccountLiquidation
from harness.clock import Clock
from harness.errors import ConfigError
from harness.model import (
    AdlEvent,
    Balance,
    BookSnapshot,
    Bracket,
    ClientOrderId,
    FeeRates,
    Fill,
    FundingEvent,
    FundingInfo,
    IncomeRecord,
    IncomeType,
    Instrument,
    InsuranceFund,
    LiquidationBand,
    LiquidationEvent,
    MarginMode,
    MarkSnapshot,
    Order,
    OrderId,
    OrderRequest,
    Position,
    PricePath,
    Side,
)
from harness.streams import EventStream

__all__ = [
    "ENTRY_POINT_GROUP",
    "REFERENCE_REJECT_CODES",
    "REJECT_REASONS",
    "Account",
    "Capability",
    "Faults",
    "RateLimits",
    "RateUsage",
    "StreamFaults",
    "Venue",
    "VenueConfig",
    "VenueControl",
    "VenueFactory",
    "VenueRules",
    "available_venues",
    "open_venue",
]

ENTRY_POINT_GROUP = "perpcheck.venues"


class Capability(enum.StrEnum):
    """What a venue lets a check do; a check needing one the venue lacks is skipped."""

    TRADE = "TRADE"
    READ_BRACKETS = "READ_BRACKETS"
    READ_LIQUIDATIONS = "READ_LIQUIDATIONS"
    READ_INSURANCE = "READ_INSURANCE"
    READ_FUNDING = "READ_FUNDING"
    READ_BAND = "READ_BAND"
    CONTROL_CLOCK = "CONTROL_CLOCK"
    CONTROL_PRICES = "CONTROL_PRICES"
    CONTROL_ACCOUNTS = "CONTROL_ACCOUNTS"
    CONTROL_SCENARIO = "CONTROL_SCENARIO"
    CONTROL_FUNDING = "CONTROL_FUNDING"
    CONTROL_INSURANCE = "CONTROL_INSURANCE"
    READ_RATE_LIMITS = "READ_RATE_LIMITS"  # rate-limit usage published with each response
    READ_STREAMS = "READ_STREAMS"  # market and user-data event streams
    CONTROL_STREAM_FAULTS = "CONTROL_STREAM_FAULTS"
    CONTROL_RATE_LIMITS = "CONTROL_RATE_LIMITS"
    CONTROL_FAULTS = "CONTROL_FAULTS"
    READ_PARAMS = "READ_PARAMS"  # dynamic parameters, announcements, audit log (harness/params.py)
    CONTROL_PARAMS = "CONTROL_PARAMS"  # switch the parameter controller on, plug an advisor
    READ_CONCENTRATION = "READ_CONCENTRATION"  # concentration levels, size advice
    READ_POPULATION = "READ_POPULATION"  # every account's wallets and positions (control side)
    CONTROL_LIQUIDATION_LATENCY = "CONTROL_LIQUIDATION_LATENCY"
    READ_ALERTS = "READ_ALERTS"  # the venue's anomaly-monitor alerts (harness/alerts.py)


@dataclass(frozen=True, slots=True, kw_only=True)
class RateUsage:
    """Rate-limit usage as the venue published it with its last response (``None``: not sent).

    Binance: ``X-MBX-USED-WEIGHT-1M``, ``X-MBX-ORDER-COUNT-10S``, ``X-MBX-ORDER-COUNT-1M``.
    """

    used_weight_1m: int | None = None
    order_count_10s: int | None = None
    order_count_1m: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimits:
    """A venue's request-weight and order-count limits (Binance ``exchangeInfo.rateLimits``)."""

    weight_per_minute: int = 2400
    orders_per_10s: int = 300
    orders_per_minute: int = 1200
    ban_ms: int = 120_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """Faults a simulated venue can inject (``CONTROL_FAULTS``); see PROTOCOL.md of the server.

    ``latency_ms`` delays each signed request in virtual time (the market moves meanwhile);
    ``lost_ack`` executes the next n order placements and drops their answers; ``error_burst``
    answers the next n requests 503 without executing them; ``maintenance`` answers every request
    503 until cleared; ``deplete`` removes a fraction of one side of a book.
    """

    latency_ms: int = 0
    lost_ack: int = 0
    error_burst: int = 0
    maintenance: bool = False
    deplete: tuple[str, Side, Decimal] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamFaults:
    """Faults on event streams: drop every connection now, delay or reorder frames, or skip one
    diff-depth update of a symbol (a sequence gap)."""

    drop_connections: bool = False
    delay_ms: int = 0
    reorder: int = 0  # swap the order of the next n pairs of frames
    gap_symbol: str | None = None


#: Why a venue refuses an order, as the ORD checks name the rule broken. ``VenueRules.reject_codes``
#: maps each to the venue's error codes for it.
REJECT_REASONS = (
    "min_notional",  # price x quantity below the symbol's minimum
    "price_tick",  # a limit price off the tick
    "qty_step",  # a quantity off the step
    "post_only_would_take",  # a post-only (GTX) order that would cross
    "fok_unfillable",  # a fill-or-kill order the book cannot fill whole
    "duplicate_client_id",  # a client order id a live order already has
)

#: The reference dialect's codes (binance-usdm-surface.md §4): the simulator speaks it, as Binance
#: USDⓈ-M does. -1111 (precision over the asset's maximum) answers both a price and a quantity
#: with too many places.
REFERENCE_REJECT_CODES: Mapping[str, frozenset[int]] = MappingProxyType(
    {
        "min_notional": frozenset({-4164}),
        "price_tick": frozenset({-4014, -1111}),
        "qty_step": frozenset({-4023, -1111}),
        "post_only_would_take": frozenset({-5022}),
        "fok_unfillable": frozenset({-5021}),
        "duplicate_client_id": frozenset({-4116}),
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueRules:
    """The venue's documented rule variants that checks must judge it by.

    Defaults are the reference rules of perp-mechanics.md as the simulator implements them.
    """

    # §2 V1: mark = median(P1, P2, last), P2 = index + MA(basis) over N samples.
    mark_basis_samples: int = 30
    mark_basis_interval_ms: int = 1_000
    # How often the venue recomputes its mark from index updates (one "update").
    mark_update_interval_ms: int = 1_000
    # §6: liquidation when margin balance <= maintenance (non-strict) evaluated on mark.
    liquidation_non_strict: bool = True
    # §5(d)/§13.6: the liquidation fee is capped by what is left above bankruptcy.
    liquidation_fee_capped: bool = True
    # Decimal places of published balances (USDT atomic unit on Binance: 1e-8).
    balance_decimals: int = 8
    # Documented request weight of each Venue/Account method (the sum of the venue calls it
    # makes); keys are method names, ``order_book`` by its ``limit`` as ``order_book:<limit>``.
    method_weights: Mapping[str, int] = field(default_factory=dict)
    # The venue's documented limits (Binance exchangeInfo.rateLimits).
    rate_limits: RateLimits = field(default_factory=RateLimits)
    # §3(a): one premium sample per 5 s; P̄ is the mean of the interval's samples.
    premium_sample_interval_ms: int = 5_000
    # §3(a): settled rates are published, and applied, to this many decimals (Binance: 8).
    funding_rate_decimals: int = 8
    # §3(a) payment table: the price funding notional uses ("mark": Binance, BitMEX; "index":
    # Hyperliquid, dYdX, which use the oracle).
    funding_reference_price: Literal["mark", "index"] = "mark"
    # §11: the signed payment s·Q·P·F (positive: the account pays) is rounded to the atomic unit
    # with this decimal rounding mode; ROUND_CEILING = payers round up, receivers down.
    funding_payment_rounding: str = ROUND_CEILING
    # §3 timing: positions opened up to this long after a funding time may still be charged for
    # it (Binance-style clones document about 1 minute); 0 = exactly the positions at that instant.
    funding_eligibility_window_ms: int = 0
    # §10: a funding-interval change is announced at least this long before it applies.
    funding_announcement_ms: int = 3_600_000
    # The venue's error codes for each of REJECT_REASONS. A reason missing from the table: the
    # harness does not know the venue's code for it, and any refusal counts (its code is shown).
    reject_codes: Mapping[str, frozenset[int]] = field(
        default_factory=lambda: REFERENCE_REJECT_CODES
    )

    @property
    def atomic_unit(self) -> Decimal:
        return Decimal(1).scaleb(-self.balance_decimals)


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueConfig:
    """What the harness passes to a venue factory."""

    seed: int = 0
    defects: tuple[str, ...] = ()
    scenario: str | None = None
    allow_mainnet: bool = False
    options: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Account(Protocol):
    """One trading account on a venue."""

    @property
    def account_id(self) -> str: ...

    async def place_order(self, request: OrderRequest) -> Order: ...

    async def cancel_order(
        self,
        symbol: str,
        *,
        order_id: OrderId | None = None,
        client_order_id: ClientOrderId | None = None,
    ) -> Order: ...

    async def get_order(
        self,
        symbol: str,
        *,
        order_id: OrderId | None = None,
        client_order_id: ClientOrderId | None = None,
    ) -> Order: ...

    async def open_orders(self, symbol: str | None = None) -> list[Order]: ...

    async def cancel_all(self, symbol: str) -> None: ...

    async def fills(self, symbol: str, since_ms: int | None = None) -> list[Fill]: ...

    async def positions(self) -> list[Position]: ...

    async def balance(self) -> Balance: ...

    async def income(
        self,
        income_type: IncomeType | None = None,
        symbol: str | None = None,
        since_ms: int | None = None,
    ) -> list[IncomeRecord]: ...

    async def commission_rates(self, symbol: str) -> FeeRates: ...

    async def set_leverage(self, symbol: str, leverage: int) -> int: ...

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> None: ...

    async def add_isolated_margin(self, symbol: str, amount: Decimal) -> None:
        """Move ``amount`` from the cross wallet into the isolated position's margin
        (negative: take it back; Binance ``POST /fapi/v1/positionMargin``)."""
        ...

    async def liquidation_band(self, symbol: str) -> LiquidationBand | None:
        """The venue's own liquidation band for this account's position (``READ_BAND``)."""
        ...

    async def liquidations(
        self, symbol: str | None = None, since_ms: int | None = None
    ) -> list[LiquidationEvent]:
        """This account's own liquidation steps, oldest first (``READ_LIQUIDATIONS``)."""
        ...


@runtime_checkable
class VenueControl(Protocol):
    """Control a simulated market; present only on venues with ``CONTROL_*`` capabilities."""

    async def advance(self, ms: int) -> int:
        """Move virtual time forward, processing every market event on the way; returns now."""
        ...

    async def set_price_path(self, symbol: str, path: PricePath) -> None:
        """Drive the symbol's index constituents along ``path`` from now on."""
        ...

    async def set_depth_profile(self, symbol: str, profile: str) -> None:
        """Change the market maker's depth profile (e.g. ``normal``, ``thin``)."""
        ...

    async def create_account(self, wallet: Decimal, *, label: str = "") -> Account:
        """Open a new account funded with ``wallet`` of the margin asset."""
        ...

    async def load_scenario(self, name: str) -> None: ...

    def scenarios(self) -> list[str]: ...

    async def set_insurance_fund(self, balance: Decimal) -> None:
        """Set the insurance fund's balance (e.g. empty it to exercise auto-deleveraging)."""
        ...

    async def schedule_funding_interval(self, symbol: str, hours: int, effective_ms: int) -> None:
        """Announce a funding-interval change now, effective at a funding boundary."""
        ...

    async def set_quote_skew(self, symbol: str, bps: Decimal) -> None:
        """Shift the market maker's quotes by ``bps`` of the index (a persistent premium)."""
        ...

    async def set_rate_limits(self, limits: RateLimits) -> None:
        """Replace the venue's rate limits (``CONTROL_RATE_LIMITS``)."""
        ...

    async def set_faults(self, faults: Faults) -> None:
        """Replace the injected faults (``CONTROL_FAULTS``); ``Faults()`` clears them."""
        ...

    async def set_stream_faults(self, faults: StreamFaults) -> None:
        """Replace the faults injected on event streams (``CONTROL_STREAM_FAULTS``)."""
        ...

    async def configure_params(
        self,
        symbol: str,
        *,
        enabled: bool = True,
        advisor: str = "default",
        script: Sequence[Mapping[str, Decimal]] = (),
    ) -> None:
        """Switch the symbol's parameter controller on (off) with the advisor named ``advisor``
        (``scripted``: one ``script`` output per decision; ``CONTROL_PARAMS``)."""
        ...

    async def set_param_signal(self, symbol: str, signal: str, value: Decimal | None) -> None:
        """Fix one controller input (``harness.params.SIGNALS``) at ``value``; ``None``: the
        venue computes it again (``CONTROL_PARAMS``)."""
        ...

    async def population(self, name: str | None = None) -> list[AccountExposure]:
        """Every account holding a position, or scenario population ``name``'s accounts in
        creation order, with wallets and positions as the venue reports them
        (``READ_POPULATION``)."""
        ...

    async def account_liquidations(self, since_ms: int | None = None) -> list[AccountLiquidation]:
        """Every account's liquidation steps at or after ``since_ms``, oldest first, naming the
        account (``READ_POPULATION``)."""
        ...

    async def set_liquidation_latency(self, ms: int) -> None:
        """Delay each liquidation ``ms`` of virtual time after its account crossed maintenance
        (``CONTROL_LIQUIDATION_LATENCY``; 0: act at once)."""
        ...


@runtime_checkable
class Venue(Protocol):
    """Market data, the default trading account and (optionally) control of a venue."""

    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> frozenset[Capability]: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def rules(self) -> VenueRules: ...

    @property
    def control(self) -> VenueControl | None: ...

    @property
    def versions(self) -> Mapping[str, str]:
        """Versions of whatever stands behind the venue (simulator, ccxt...)."""
        ...

    @property
    def rate_usage(self) -> RateUsage:
        """Rate-limit usage published with the venue's last response (``READ_RATE_LIMITS``)."""
        ...

    async def instruments(self) -> Mapping[str, Instrument]: ...

    async def order_book(self, symbol: str, limit: int = 100) -> BookSnapshot: ...

    async def mark(self, symbol: str) -> MarkSnapshot: ...

    async def brackets(self, symbol: str) -> tuple[Bracket, ...]: ...

    async def liquidations(
        self, symbol: str | None = None, since_ms: int | None = None
    ) -> list[LiquidationEvent]: ...

    async def insurance_fund(self) -> InsuranceFund: ...

    async def adl_events(
        self, symbol: str | None = None, since_ms: int | None = None
    ) -> list[AdlEvent]: ...

    async def funding_history(self, symbol: str, since_ms: int | None = None) -> list[FundingEvent]:
        """Settled funding rates, oldest first (Binance ``GET /fapi/v1/fundingRate``)."""
        ...

    async def funding_info(self, symbol: str) -> FundingInfo: ...

    async def stream(
        self, symbols: Sequence[str], *, account: Account | None = None, depth: bool = False
    ) -> EventStream:
        """Subscribe to the symbols' market streams (marks, trades, liquidation orders; diff depth
        when ``depth``) and, given an account, its user-data stream (``READ_STREAMS``), whose
        order events carry client ids as ``account`` shows them
        (:func:`harness.streams.as_account_sees`)."""
        ...

    # (``param_state(symbol)`` and ``param_audit(since_ms)`` of a READ_PARAMS venue are
    # harness.params.ParamSource, optional like AlertSource below.)
    # (``concentration(...)`` of a READ_CONCENTRATION venue is
    # harness.concentration.ConcentrationSource, optional like AlertSource below.)
    # (``alerts(since_ms)`` of a READ_ALERTS venue is harness.alerts.AlertSource: an optional
    # protocol, so venues without a monitor, the testnets, need not implement it.)

    def account(self) -> Account: ...

    async def close(self) -> None: ...


VenueFactory = Callable[[VenueConfig], Awaitable[Venue]]


def available_venues() -> dict[str, str]:
    """Registered venue names and the module that provides each."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


async def open_venue(name: str, config: VenueConfig) -> Venue:
    """Create the venue registered as ``name``.

    Raises:
        ConfigError: no venue of that name is registered (the message lists those that are).
    """
    factory = _FACTORIES.get(name)
    if factory is not None and not _still_loaded(factory):
        factory = None  # its module was reloaded or dropped (pytester does): look it up again
    if factory is None:
        found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        if name not in found:
            choices = ", ".join(sorted(found)) or "(none installed)"
            msg = f"unknown venue {name!r}; choose one of: {choices}"
            raise ConfigError(msg)
        # Looked up once per process: scanning the installed distributions' entry points takes
        # ~2 ms, and a run opens a venue per check.
        factory = _FACTORIES[name] = found[name].load()
    return await factory(config)


_FACTORIES: dict[str, VenueFactory] = {}


def _still_loaded(factory: VenueFactory) -> bool:
    """Is ``factory`` still what its module, as imported now, names? (The module's classes are
    the ones a test may patch; a stale factory would build the old ones.)"""
    module = sys.modules.get(getattr(factory, "__module__", ""))
    return getattr(module, getattr(factory, "__name__", ""), None) is factory
