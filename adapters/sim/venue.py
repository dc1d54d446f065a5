"""The reference simulator as an in-process :class:`~harness.venue.Venue` (venue ``sim``).

Engine records are turned into harness domain types here, and published figures are rounded
to the venue's wire precision (8 decimals) exactly where Binance publishes them.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal

from adapters.sim import scenarios
from adapters.sim.config import SimConfig, SimInstrument, default_instruments
from adapters.sim.defects import validate_defects
from adapters.sim.engine.accounts import AccountState, FillRecord, OrderRecord, PositionState
from adapters.sim.engine.cascade import population
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.gateway import LocalClient, method_weights
from adapters.sim.engine.liquidation import LiquidationRecord
from adapters.sim.engine.scenario import apply_scenario
from adapters.sim.engine.views import balance_view, position_view
from adapters.sim.streams import SimEventStream
from harness.alerts import Alert
from harness.cascade import AccountExposure, AccountLiquidation
from harness.clock import VirtualClock
from harness.concentration import Concentration
from harness.deviations import DeviationRegistry, registry_from_package
from harness.errors import ConfigError, Rejected
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
    LiquidationVariant,
    MarginMode,
    MarkSnapshot,
    Order,
    OrderId,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    PricePath,
    Side,
    TimeInForce,
)
from harness.params import AuditEntry, ParamState
from harness.streams import EventStream, as_account_sees
from harness.venue import (
    Account,
    Capability,
    Faults,
    RateLimits,
    RateUsage,
    StreamFaults,
    VenueConfig,
    VenueRules,
)

__all__ = ["SimAccount", "SimControl", "SimVenue", "open_sim_venue"]

SIM_VERSION = "0.1.0"
ALL_CAPABILITIES = frozenset(Capability)


def _parse_order_id(order_id: OrderId | None) -> int | None:
    if order_id is None:
        return None
    try:
        return int(order_id)
    except ValueError:
        # As the HTTP dialect answers a malformed orderId (binance-usdm-surface.md §3).
        raise Rejected(
            -1102, "Mandatory parameter 'orderId' was not sent, was empty/null, or malformed."
        ) from None


def liquidation_event(r: LiquidationRecord, own: str) -> LiquidationEvent:
    """An engine record as the venue publishes it; ``own`` is the viewing account."""
    return LiquidationEvent(
        symbol=r.symbol,
        side=Side(r.side),
        quantity=r.quantity,
        filled_qty=r.filled_qty,
        price=r.price,
        avg_price=r.avg_price,
        time_ms=r.time_ms,
        own=r.account_id == own,
        trigger_mark=r.trigger_mark,
        bankruptcy_price=r.bankruptcy_price,
        fee=r.fee,
        shortfall=r.shortfall,
        taken_over_qty=r.taken_over_qty,
        partial=r.partial,
        adl_qty=r.adl_qty,
    )


class SimAccount:
    """One account of the simulated venue."""

    def __init__(self, venue: SimVenue, state: AccountState, *, own_seat: bool = False) -> None:
        self._venue = venue
        self._engine = venue.engine
        self._state = state
        # Every method charges its Binance call's weight; another participant has its own seat.
        gate = venue.gateway_client
        self._gate = gate.seat(state.account_id) if own_seat else gate

    @property
    def account_id(self) -> str:
        return self._state.account_id

    def _order(self, rec: OrderRecord) -> Order:
        return Order(
            order_id=OrderId(str(rec.order_id)),
            client_order_id=ClientOrderId(rec.client_order_id),
            symbol=rec.symbol,
            side=Side(rec.side),
            type=OrderType(rec.type),
            time_in_force=TimeInForce(rec.time_in_force) if rec.time_in_force else None,
            price=rec.price,
            orig_qty=rec.orig_qty,
            executed_qty=rec.executed_qty,
            cum_quote=rec.cum_quote,
            status=OrderStatus(rec.status),
            reduce_only=rec.reduce_only,
            time_ms=rec.time_ms,
            update_time_ms=rec.update_time_ms,
        )

    async def place_order(self, request: OrderRequest) -> Order:
        self._gate.enter("place_order", self.account_id)
        rec = self._engine.place_order(self.account_id, request)
        self._gate.acknowledge(self.account_id, rec)  # lost_ack: executed, but no answer comes
        return self._order(rec)

    async def cancel_order(
        self,
        symbol: str,
        *,
        order_id: OrderId | None = None,
        client_order_id: ClientOrderId | None = None,
    ) -> Order:
        self._gate.enter("cancel_order")
        rec = self._engine.cancel_order(
            self.account_id, symbol, _parse_order_id(order_id), client_order_id
        )
        return self._order(rec)

    async def get_order(
        self,
        symbol: str,
        *,
        order_id: OrderId | None = None,
        client_order_id: ClientOrderId | None = None,
    ) -> Order:
        self._gate.enter("get_order")
        rec = self._engine.get_order(
            self.account_id, symbol, _parse_order_id(order_id), client_order_id
        )
        return self._order(rec)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        self._gate.enter("open_orders" if symbol else "open_orders:all")
        return [
            self._order(r)
            for r in self._state.orders.values()
            if r.status in ("NEW", "PARTIALLY_FILLED") and symbol in (None, r.symbol)
        ]

    async def cancel_all(self, symbol: str) -> None:
        self._gate.enter("cancel_all")
        self._engine.instrument(symbol)
        self._engine.cancel_all(self.account_id, symbol)

    async def fills(self, symbol: str, since_ms: int | None = None) -> list[Fill]:
        self._gate.enter("fills")
        self._engine.instrument(symbol)
        return [
            self._fill(f)
            for f in self._state.fills
            if f.symbol == symbol and (since_ms is None or f.time_ms >= since_ms)
        ]

    @staticmethod
    def _fill(f: FillRecord) -> Fill:
        return Fill(
            trade_id=f.trade_id,
            order_id=OrderId(str(f.order_id)),
            symbol=f.symbol,
            side=Side(f.side),
            price=f.price,
            qty=f.qty,
            quote_qty=f.price * f.qty,
            commission=f.commission,
            commission_asset="USDT",
            maker=f.maker,
            realized_pnl=f.realized_pnl,
            time_ms=f.time_ms,
            liquidation=f.liquidation,
        )

    def _position(self, pos: PositionState) -> Position:
        return position_view(self._engine, self._state, pos)

    async def positions(self) -> list[Position]:
        self._gate.enter("positions")
        return [self._position(p) for p in self._state.open_positions()]

    async def balance(self) -> Balance:
        self._gate.enter("balance")
        return balance_view(self._engine, self._state)

    async def income(
        self,
        income_type: IncomeType | None = None,
        symbol: str | None = None,
        since_ms: int | None = None,
    ) -> list[IncomeRecord]:
        self._gate.enter("income")
        return [
            r
            for r in self._state.income
            if income_type in (None, r.income_type)
            and symbol in (None, r.symbol)
            and (since_ms is None or r.time_ms >= since_ms)
        ]

    async def commission_rates(self, symbol: str) -> FeeRates:
        self._gate.enter("commission_rates")
        self._engine.instrument(symbol)
        return self._engine.config.instruments[symbol].fees

    async def set_leverage(self, symbol: str, leverage: int) -> int:
        self._gate.enter("set_leverage")
        return self._engine.set_leverage(self.account_id, symbol, leverage)

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> None:
        self._gate.enter("set_margin_mode")
        self._engine.set_margin_mode(self.account_id, symbol, mode)

    async def add_isolated_margin(self, symbol: str, amount: Decimal) -> None:
        self._gate.enter("add_isolated_margin")
        self._engine.add_isolated_margin(self.account_id, symbol, amount)

    async def liquidation_band(self, symbol: str) -> LiquidationBand | None:
        self._gate.enter("liquidation_band")
        self._engine.instrument(symbol)
        return self._engine.liquidator.band(self._state, symbol)

    async def liquidations(
        self, symbol: str | None = None, since_ms: int | None = None
    ) -> list[LiquidationEvent]:
        self._gate.enter("liquidations" if symbol else "liquidations:all")
        return [
            liquidation_event(r, self.account_id)
            for r in self._engine.liquidator.records
            if r.account_id == self.account_id
            and symbol in (None, r.symbol)
            and (since_ms is None or r.time_ms >= since_ms)
        ]


class SimControl:
    """Control of the simulated market (the ``CONTROL_*`` capabilities)."""

    def __init__(self, venue: SimVenue) -> None:
        self._venue = venue

    async def advance(self, ms: int) -> int:
        return self._venue.clock.advance(ms)

    async def set_price_path(self, symbol: str, path: PricePath) -> None:
        self._venue.engine.set_price_path(symbol, path)

    async def set_depth_profile(self, symbol: str, profile: str) -> None:
        self._venue.engine.instrument(symbol)
        self._venue.engine.market_maker.set_profile(symbol, profile)
        self._venue.engine.settle()

    async def create_account(self, wallet: Decimal, *, label: str = "") -> Account:
        state = self._venue.engine.create_account(wallet, label)
        return SimAccount(self._venue, state, own_seat=True)

    async def load_scenario(self, name: str) -> None:
        apply_scenario(self._venue.engine, scenarios.load(name))
        self._venue.engine.settle()

    def scenarios(self) -> list[str]:
        return scenarios.available()

    async def set_insurance_fund(self, balance: Decimal) -> None:
        if not balance.is_finite() or balance < 0:
            msg = f"insurance fund balance {balance} must be a non-negative number"
            raise ConfigError(msg)
        self._venue.engine.insurance.cross_wallet = balance

    async def schedule_funding_interval(self, symbol: str, hours: int, effective_ms: int) -> None:
        self._venue.engine.instrument(symbol)
        self._venue.engine.funding.schedule_interval(symbol, hours, effective_ms)

    async def set_quote_skew(self, symbol: str, bps: Decimal) -> None:
        self._venue.engine.instrument(symbol)
        self._venue.engine.market_maker.set_skew(symbol, bps)
        self._venue.engine.settle()

    async def set_rate_limits(self, limits: RateLimits) -> None:
        self._venue.engine.gateway.set_limits(limits)

    async def set_faults(self, faults: Faults) -> None:
        self._venue.engine.gateway.set_faults(faults)

    async def set_stream_faults(self, faults: StreamFaults) -> None:
        if faults.gap_symbol is not None:
            self._venue.engine.instrument(faults.gap_symbol)
        try:
            self._venue.engine.stream_faults.set(faults)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    async def configure_params(
        self,
        symbol: str,
        *,
        enabled: bool = True,
        advisor: str = "default",
        script: Sequence[Mapping[str, Decimal]] = (),
    ) -> None:
        params = self._venue.engine.params
        params.configure(symbol, enabled=enabled, advisor=advisor, script=script)

    async def set_param_signal(self, symbol: str, signal: str, value: Decimal | None) -> None:
        self._venue.engine.params.set_signal(symbol, signal, value)

    async def population(self, name: str | None = None) -> list[AccountExposure]:
        return population(self._venue.engine, name)

    async def account_liquidations(self, since_ms: int | None = None) -> list[AccountLiquidation]:
        return [
            AccountLiquidation(account_id=r.account_id, event=liquidation_event(r, r.account_id))
            for r in self._venue.engine.liquidator.records
            if since_ms is None or r.time_ms >= since_ms
        ]

    async def set_liquidation_latency(self, ms: int) -> None:
        self._venue.engine.liquidation_latency.set(ms)


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
