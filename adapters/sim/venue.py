"""The reference simulator as an in-process :class:`~harness.venue.Venue` (venue ``sim``): the
:class:`SimVenue` facade (market data, streams, monitors) and its factory :func:`open_sim_venue`.

Engine records are turned into harness domain types here, and published figures are rounded
to the venue's wire precision (8 decimals) exactly where Binance publishes them. The account
lives in adapters/sim/account.py, the market control in adapters/sim/control.py; both stay
importable from here.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal

from adapters.sim.account import SimAccount, liquidation_event
from adapters.sim.config import SimConfig, SimInstrument, default_instruments
from adapters.sim.control import SimControl
from adapters.sim.defects import validate_defects
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.gateway import LocalClient, method_weights
from adapters.sim.streams import SimEventStream
from harness.alerts import Alert
from harness.clock import VirtualClock
from harness.concentration import Concentration
from harness.deviations import DeviationRegistry, registry_from_package
from harness.errors import ConfigError
from harness.model import (
    AdlEvent,
    BookSnapshot,
    Bracket,
    FundingEvent,
    FundingInfo,
    Instrument,
    InsuranceFund,
    LiquidationEvent,
    LiquidationVariant,
    MarkSnapshot,
    Side,
)
from harness.params import AuditEntry, ParamState
from harness.streams import EventStream, as_account_sees
from harness.venue import Account, Capability, RateUsage, VenueConfig, VenueRules

__all__ = ["SimAccount", "SimControl", "SimVenue", "liquidation_event", "open_sim_venue"]

SIM_VERSION = "0.1.0"
ALL_CAPABILITIES = frozenset(Capability)


class SimVenue:
    """The reference simulator, in process, on a virtual clock."""

    def __init__(self, config: SimConfig, *, name: str = "sim") -> None:
        self._name = name
        self._clock = VirtualClock()
        self.engine = Engine(config, self._clock)
        self.gateway_client = LocalClient(self.engine.gateway)
        self._account = SimAccount(
            self, self.engine.create_account(config.default_balance, "trader")
        )
        self._control = SimControl(self)
        self._streams: list[SimEventStream] = []
        self._rules = VenueRules(
            mark_basis_samples=config.basis_samples,
            mark_basis_interval_ms=config.update_interval_ms,
            mark_update_interval_ms=config.update_interval_ms,
            liquidation_fee_capped=config.liquidation_fee_capped,
            balance_decimals=config.balance_decimals,
            premium_sample_interval_ms=config.premium_sample_ms,
            funding_rate_decimals=config.funding_rate_decimals,
            funding_announcement_ms=config.funding_announcement_ms,
            method_weights=method_weights(),
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> frozenset[Capability]:
        return ALL_CAPABILITIES

    @property
    def clock(self) -> VirtualClock:
        return self._clock

    @property
    def rules(self) -> VenueRules:
        return self._rules

    @property
    def control(self) -> SimControl:
        return self._control

    @property
    def versions(self) -> Mapping[str, str]:
        return {"perpcheck-sim": SIM_VERSION, "python": platform.python_version()}

    def known_deviations(self) -> DeviationRegistry:
        """The reference simulator documents no deviation (``deviations.toml`` stays empty)."""
        if self._name != "sim":
            return DeviationRegistry(venue=self._name)
        return registry_from_package("adapters.sim", "deviations.toml", venue="sim")

    @property
    def rate_usage(self) -> RateUsage:
        return self.gateway_client.usage

    async def instruments(self) -> Mapping[str, Instrument]:
        self.gateway_client.enter("instruments")
        return dict(self.engine.instruments)

    async def order_book(self, symbol: str, limit: int = 100) -> BookSnapshot:
        self.gateway_client.enter("order_book", limit=limit)
        self.engine.instrument(symbol)
        book = self.engine.books[symbol]
        bids, asks = book.levels(Side.BUY, limit), book.levels(Side.SELL, limit)
        if self.engine.has("depth-overstated"):
            bids = tuple((p, q * 2) for p, q in bids)
            asks = tuple((p, q * 2) for p, q in asks)
        return BookSnapshot(
            symbol=symbol,
            bids=bids,
            asks=asks,
            time_ms=self._clock.now_ms(),
            update_id=book.update_id,
        )

    async def mark(self, symbol: str) -> MarkSnapshot:
        self.gateway_client.enter("mark")
        self.engine.instrument(symbol)
        state = self.engine.prices[symbol]
        return MarkSnapshot(
            symbol=symbol,
            mark_price=state.mark,
            index_price=state.index,
            last_price=state.last_price,
            last_funding_rate=state.last_funding_rate,
            interest_rate=state.interest_rate,
            next_funding_time_ms=state.next_funding_ms,
            time_ms=self._clock.now_ms(),
            funding_interval_ms=state.funding_interval_ms,
        )

    async def brackets(self, symbol: str) -> tuple[Bracket, ...]:
        self.gateway_client.enter("brackets")
        return self.engine.instrument(symbol).brackets

    async def liquidations(
        self, symbol: str | None = None, since_ms: int | None = None
    ) -> list[LiquidationEvent]:
        own = self._account.account_id
        return [
            liquidation_event(r, own)
            for r in self.engine.liquidator.records
            if symbol in (None, r.symbol) and (since_ms is None or r.time_ms >= since_ms)
        ]

    async def insurance_fund(self) -> InsuranceFund:
        return InsuranceFund(
            asset="USDT",
            balance=self.engine.insurance.cross_wallet,
            time_ms=self._clock.now_ms(),
        )

    async def adl_events(
        self, symbol: str | None = None, since_ms: int | None = None
    ) -> list[AdlEvent]:
        own = self._account.account_id
        return [
            AdlEvent(
                symbol=r.symbol,
                side=Side(r.side),
                quantity=r.quantity,
                price=r.price,
                time_ms=r.time_ms,
                own=r.account_id == own,
                rank=r.rank,
            )
            for r in self.engine.liquidator.adl_records
            if symbol in (None, r.symbol) and (since_ms is None or r.time_ms >= since_ms)
        ]

    async def funding_history(self, symbol: str, since_ms: int | None = None) -> list[FundingEvent]:
        self.gateway_client.enter("funding_history")
        self.engine.instrument(symbol)
        return [
            e
            for e in self.engine.funding.history(symbol)
            if since_ms is None or e.funding_time_ms >= since_ms
        ]

    async def funding_info(self, symbol: str) -> FundingInfo:
        self.gateway_client.enter("funding_info")
        self.engine.instrument(symbol)
        return self.engine.funding.info(symbol)

    async def stream(
        self, symbols: Sequence[str], *, account: Account | None = None, depth: bool = False
    ) -> EventStream:
        """The symbols' market streams and the account's user stream (adapters/sim/streams.py)."""
        stream = SimEventStream(
            self.engine,
            symbols,
            account_id=account.account_id if account is not None else None,
            depth=depth,
        )
        self._streams.append(stream)
        return as_account_sees(stream, account)  # order events' client ids as ``account`` shows

    async def param_state(self, symbol: str) -> ParamState:
        """The symbol's dynamic parameters (adapters/sim/engine/params.py)."""
        return self.engine.params.state(symbol)

    async def param_audit(self, since_ms: int | None = None) -> list[AuditEntry]:
        """The parameter controller's audit log, oldest first."""
        return self.engine.params.audit(since_ms)

    async def concentration(
        self,
        account_id: str,
        symbol: str,
        *,
        side: Side | None = None,
        budget_bps: Decimal = Decimal(10),
    ) -> Concentration:
        """Concentration and size advice (adapters/sim/engine/concentration.py)."""
        return self.engine.concentration.report(
            account_id, symbol, side=side, budget_bps=budget_bps
        )

    async def alerts(self, since_ms: int | None = None) -> list[Alert]:
        """The anomaly monitor's alerts (adapters/sim/engine/monitor.py), oldest first."""
        return self.engine.monitor.since(since_ms)

    def account(self) -> SimAccount:
        return self._account

    async def close(self) -> None:
        for stream in self._streams:
            await stream.close()
        self._streams.clear()


def _with_liquidation_options(
    instruments: dict[str, SimInstrument], options: Mapping[str, str]
) -> dict[str, SimInstrument]:
    """Apply ``liquidation=VARIANT`` / ``liquidation.SYMBOL=VARIANT``; refuse unknown options."""
    variants = ", ".join(v.value for v in LiquidationVariant)
    out = dict(instruments)
    for key, value in options.items():
        if key == "balance":
            continue
        name, _, symbol = key.partition(".")
        if name != "liquidation":
            msg = f"unknown venue option {key!r} for sim; known: balance, liquidation[.SYMBOL]"
            raise ConfigError(msg)
        try:
            variant = LiquidationVariant(value)
        except ValueError:
            msg = f"venue option {key}={value!r}: choose one of {variants}"
            raise ConfigError(msg) from None
        targets = [symbol] if symbol else list(out)
        for target in targets:
            if target not in out:
                msg = f"venue option {key}: unknown symbol {target!r}; known: {', '.join(out)}"
                raise ConfigError(msg)
            si = out[target]
            policy = replace(si.instrument.liquidation, variant=variant)
            out[target] = replace(si, instrument=replace(si.instrument, liquidation=policy))
    return out


async def open_sim_venue(config: VenueConfig) -> SimVenue:
    """Factory registered as venue ``sim`` (entry point ``perpcheck.venues``)."""
    defects = validate_defects(config.defects)
    balance_text = config.options.get("balance", "10000")
    try:
        balance = Decimal(balance_text)
    except ArithmeticError:
        balance = Decimal("NaN")
    if not balance.is_finite() or balance < 0:
        msg = (
            f"balance {balance_text!r} must be a non-negative number of USDT; "
            "give e.g. --venue-option balance=10000"
        )
        raise ConfigError(msg)
    instruments = _with_liquidation_options(default_instruments(), config.options)
    venue = SimVenue(
        SimConfig(
            seed=config.seed, defects=defects, default_balance=balance, instruments=instruments
        )
    )
    if config.scenario:
        await venue.control.load_scenario(config.scenario)
    return venue


# What `perpcheck venues` lists without opening the venue.
open_sim_venue.capabilities = ALL_CAPABILITIES  # type: ignore[attr-defined]
