"""Binance USDⓈ-M over ccxt ``binanceusdm``: the Venue and Account protocols.

Requests go through ccxt's *implicit* REST methods (``fapiPublicGetDepth``...): ccxt signs and
sends them exactly as the real venue expects, while the unified methods would change what the
harness asked for (``create_order`` rounds quantities and prices to the market's precision, so
an off-step order could never reach the venue to be rejected) or drop fields (``positionRisk``'s
``isolatedWallet``, the simulator's extras). Every number is read from the raw body as a
``Decimal``.

The calls each method makes, and their documented weights, are in :data:`WEIGHTS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from adapters.ccxt_venue import binance_wire as bw
from adapters.ccxt_venue._base import CcxtVenueBase, not_published
from adapters.ccxt_venue._wire import call, dec, dec_or_none
from adapters.ccxt_venue.streams import (
    KEEPALIVE_MS,
    BinanceEventStream,
    ListenKeys,
    StreamSettings,
    stream_names,
)
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
)
from harness.streams import EventStream, as_account_sees
from harness.venue import Account

__all__ = ["DEMO_WEIGHTS", "WEIGHTS", "BinanceAccount", "BinanceVenue"]

#: Binance's documented request weight of the calls each method makes (binance-usdm-surface.md
#: §4); ``place_order`` costs no IP weight (it counts on the order windows instead).
WEIGHTS: Mapping[str, int] = {
    "instruments": 2,  # exchangeInfo 1 + leverageBracket 1
    **{f"order_book:{n}": 2 for n in (5, 10, 20, 50)},  # depth 2 for limit <= 50
    "order_book:100": 5,
    "order_book:500": 10,
    "order_book:1000": 20,
    "mark": 1,  # premiumIndex (the simulator adds lastPrice)
    "brackets": 1,  # leverageBracket?symbol=
    # fundingInfo and fundingRate share their own 500/5min bucket: no IP weight.
    "funding_info": 0,  # fundingInfo (the simulator adds interest, clamp, impact notional)
    "funding_history": 0,  # fundingRate
    "place_order": 0,  # POST order: 0 IP weight, 1 on each order window
    "cancel_order": 1,
    "get_order": 1,
    "open_orders": 1,  # openOrders?symbol=
    "open_orders:all": 40,  # openOrders without symbol
    "cancel_all": 1,  # allOpenOrders
    "fills": 5,  # userTrades (the simulator marks liquidation fills)
    "positions": 5,  # positionRisk v3 (+ symbolConfig 5 the first time a symbol has a position)
    "balance": 5,  # account v3
    "income": 30,
    "commission_rates": 20,
    "set_leverage": 1,
    "set_margin_mode": 1,
    "add_isolated_margin": 1,  # positionMargin
    "liquidations": 20,  # forceOrders?symbol= (own; venue-wide on sim-http: control API, 0)
    "liquidations:all": 50,  # forceOrders without symbol
    "liquidation_band": 1,  # /sim/v1/liquidationBand (simulator only)
}

#: On the real venue the simulator's extras are missing, so some methods make more calls:
#: mark + ticker/price 1; fills + forceOrders 20 (liquidation fills by their autoclose- orders);
#: funding_info + premiumIndex 1 + leverageBracket 1. There is no liquidation band.
DEMO_WEIGHTS: Mapping[str, int] = {
    **{k: v for k, v in WEIGHTS.items() if k != "liquidation_band"},
    "mark": 2,
    "fills": 25,
    "funding_info": 2,
}

DEFAULT_CLAMP = Decimal("0.0005")  # Binance's interest clamp (±0.05 %), not published per symbol
IMPACT_MARGIN = Decimal(200)  # Binance: impact notional = 200 USDT / IMR at max leverage
HOUR_MS = 3_600_000


def _num(value: Decimal) -> str:
    """A Decimal as Binance takes it: plain notation, never an exponent."""
    return format(value, "f")


class BinanceAccount:
    """One Binance USDⓈ-M account behind its own ccxt client (its own key and secret).

    ``band_url`` is the simulator's ``/sim/v1`` prefix; ``None`` on real venues (no READ_BAND).
    """

    def __init__(
        self,
        exchange: Any,
        *,
        account_id: str,
        venue_name: str,
        margin_asset: str = "USDT",
        band_url: str | None = None,
    ) -> None:
        self.exchange = exchange
        self._account_id = account_id
        self._venue_name = venue_name
        self._asset = margin_asset
        self._band_url = band_url
        self._config: dict[str, dict[str, Any]] = {}  # symbol -> leverage, marginType

    @property
    def account_id(self) -> str:
        return self._account_id

    async def _req(self, method_name: str, params: Mapping[str, Any] | None = None) -> Any:
        return await call(getattr(self.exchange, method_name)(dict(params or {})))

    @staticmethod
    def _order_ref(
        symbol: str, order_id: OrderId | None, client_order_id: ClientOrderId | None
    ) -> dict[str, str]:
        params = {"symbol": symbol}
        if order_id is not None:
            params["orderId"] = str(order_id)
        if client_order_id is not None:
            params["origClientOrderId"] = str(client_order_id)
        return params

    async def place_order(self, request: OrderRequest) -> Order:
        params: dict[str, str] = {
            "symbol": request.symbol,
            "side": request.side.value,
            "type": request.type.value,
            "quantity": _num(request.quantity),
            "newOrderRespType": "RESULT",
        }
        if request.price is not None:
            params["price"] = _num(request.price)
        if request.time_in_force is not None:
            params["timeInForce"] = request.time_in_force.value
        if request.reduce_only:
            params["reduceOnly"] = "true"
        if request.client_order_id is not None:
            params["newClientOrderId"] = str(request.client_order_id)
        return bw.order(await self._req("fapiPrivatePostOrder", params))

    async def cancel_order(
        self,
        symbol: str,
        *,
        order_id: OrderId | None = None,
        client_order_id: ClientOrderId | None = None,
    ) -> Order:
        params = self._order_ref(symbol, order_id, client_order_id)
        return bw.order(await self._req("fapiPrivateDeleteOrder", params))

    async def get_order(
        self,
        symbol: str,
        *,
        order_id: OrderId | None = None,
        client_order_id: ClientOrderId | None = None,
    ) -> Order:
        params = self._order_ref(symbol, order_id, client_order_id)
        return bw.order(await self._req("fapiPrivateGetOrder", params))

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        params = {"symbol": symbol} if symbol is not None else {}
        return [bw.order(r) for r in await self._req("fapiPrivateGetOpenOrders", params)]

    async def cancel_all(self, symbol: str) -> None:
        await self._req("fapiPrivateDeleteAllOpenOrders", {"symbol": symbol})

    async def fills(self, symbol: str, since_ms: int | None = None) -> list[Fill]:
        params: dict[str, Any] = {"symbol": symbol, "limit": 1000}
        if since_ms is not None:
            params["startTime"] = since_ms
        rows = await self._req("fapiPrivateGetUserTrades", params)
        forced: set[str] | None = None
        if any("liquidation" not in r for r in rows):
            # The real venue marks liquidation fills only by their order's autoclose- client id.
            orders = await self._req("fapiPrivateGetForceOrders", {"symbol": symbol, "limit": 100})
            forced = {
                str(o["orderId"])
                for o in orders
                if str(o.get("clientOrderId", "")).startswith("autoclose-")
            }
        return [
            bw.fill(r, bool(r["liquidation"]) if forced is None else str(r["orderId"]) in forced)
            for r in rows
        ]

    async def positions(self) -> list[Position]:
        """``positionRisk`` v3; leverage and margin type (absent from v3) come from
        ``symbolConfig``, asked once per symbol and then kept current by this account's own
        ``set_leverage``/``set_margin_mode`` (the only ways they change)."""
        rows = [
            r
            for r in await self._req("fapiPrivateV3GetPositionRisk")
            if dec(r.get("positionAmt", 0), "positionAmt") != 0
        ]
        if any(str(r["symbol"]) not in self._config for r in rows):
            for c in await self._req("fapiPrivateGetSymbolConfig"):
                self._config[str(c["symbol"])] = {
                    "leverage": int(c["leverage"]),
                    "marginType": str(c["marginType"]),
                }
        return [bw.position(r, self._config.get(str(r["symbol"]))) for r in rows]

    async def balance(self) -> Balance:
        return bw.balance(await self._req("fapiPrivateV3GetAccount"), self._asset)

    async def income(
        self,
        income_type: IncomeType | None = None,
        symbol: str | None = None,
        since_ms: int | None = None,
    ) -> list[IncomeRecord]:
        params: dict[str, Any] = {"limit": 1000}
        if income_type is not None:
            params["incomeType"] = income_type.value
        if symbol is not None:
            params["symbol"] = symbol
        if since_ms is not None:
            params["startTime"] = since_ms
        known = {t.value for t in IncomeType}
        return [
            IncomeRecord(
                income_type=IncomeType(str(r["incomeType"])),
                amount=dec(r["income"], "income"),
                asset=str(r.get("asset", "")),
                symbol=str(r.get("symbol", "")),
                time_ms=int(r["time"]),
                tran_id=int(r["tranId"]),
                info=str(r.get("info", "")),
            )
            for r in await self._req("fapiPrivateGetIncome", params)
            if str(r.get("incomeType")) in known  # WELCOME_BONUS etc. are not the harness's
        ]

    async def commission_rates(self, symbol: str) -> FeeRates:
        raw = await self._req("fapiPrivateGetCommissionRate", {"symbol": symbol})
        return FeeRates(
            maker=dec(raw["makerCommissionRate"], "makerCommissionRate"),
            taker=dec(raw["takerCommissionRate"], "takerCommissionRate"),
        )

    async def set_leverage(self, symbol: str, leverage: int) -> int:
        raw = await self._req("fapiPrivatePostLeverage", {"symbol": symbol, "leverage": leverage})
        if symbol in self._config:
            self._config[symbol]["leverage"] = int(raw["leverage"])
        return int(raw["leverage"])

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> None:
        wire = "ISOLATED" if mode is MarginMode.ISOLATED else "CROSSED"
        await self._req("fapiPrivatePostMarginType", {"symbol": symbol, "marginType": wire})
        if symbol in self._config:
            self._config[symbol]["marginType"] = wire

    async def add_isolated_margin(self, symbol: str, amount: Decimal) -> None:
        params = {"symbol": symbol, "amount": _num(abs(amount)), "type": 1 if amount >= 0 else 2}
        await self._req("fapiPrivatePostPositionMargin", params)

    async def liquidation_band(self, symbol: str) -> LiquidationBand | None:
        if self._band_url is None:
            raise not_published(self._venue_name, "liquidation bands")
        ex = self.exchange
        signed = ex.sign("liquidationBand", ["fapiPrivate"], "GET", {"symbol": symbol})
        prefix = str(ex.urls["api"]["fapiPrivate"])
        url = self._band_url + str(signed["url"])[len(prefix) :]
        raw = await call(ex.fetch(url, "GET", signed["headers"], signed["body"]))
        return bw.band(raw)

    async def liquidations(
        self, symbol: str | None = None, since_ms: int | None = None
    ) -> list[LiquidationEvent]:
        params: dict[str, Any] = {"autoCloseType": "LIQUIDATION", "limit": 100}
        if symbol is not None:
            params["symbol"] = symbol
        if since_ms is not None:
            params["startTime"] = since_ms
        rows = await self._req("fapiPrivateGetForceOrders", params)
        events = [bw.liquidation(r, own=True) for r in rows]
        return sorted(events, key=lambda e: e.time_ms)


class BinanceVenue(CcxtVenueBase):
    """Binance USDⓈ-M market data through the default account's client.

    Without the simulator's extra fields, ``mark`` asks ``ticker/price`` for the last price and
    ``funding_info`` is assembled from the documented defaults (see :data:`DEMO_WEIGHTS`).
    ``streams`` says where the venue's WebSocket streams are (``None``: no ``READ_STREAMS``);
    streams still open when the venue closes are closed first.
    """

    def __init__(
        self, *, account: BinanceAccount, streams: StreamSettings | None = None, **kwargs: Any
    ) -> None:
        super().__init__(exchange=account.exchange, **kwargs)
        self._account = account
        self._stream_settings = streams
        self._streams: set[BinanceEventStream] = set()
        self._listen_keys: dict[int, ListenKeys] = {}  # id(ccxt client) -> the account's key

    def account(self) -> BinanceAccount:
        return self._account

    @property
    def stream_settings(self) -> StreamSettings | None:
        return self._stream_settings

    async def stream(
        self, symbols: Sequence[str], *, account: Account | None = None, depth: bool = False
    ) -> EventStream:
        """The symbols' mark, aggregate-trade and liquidation-order streams (diff depth at
        100 ms with ``depth``) and, given one of this venue's accounts, its user-data stream,
        on one connection (:mod:`adapters.ccxt_venue.streams`).

        Raises:
            Missing: the venue has no streams (no ``READ_STREAMS``).
            ConfigError: no symbols, or ``account`` is not an account of this venue.
        """
        if self._stream_settings is None:
            raise not_published(self.name, "event streams")
        if not symbols:
            msg = "stream() needs at least one symbol, e.g. venue.stream(['BTCUSDT'])"
            raise ConfigError(msg)
        keys = None
        if account is not None:
            exchange = _binance_account(account, self.name).exchange
            keys = self._listen_keys.setdefault(id(exchange), ListenKeys(exchange))
        opened = await BinanceEventStream.open(
            self._stream_settings,
            stream_names(symbols, depth=depth),
            clock=self.clock,
            keys=keys,
            on_close=self._streams.discard,
        )
        self._streams.add(opened)
        return as_account_sees(opened, account)  # order events' client ids as ``account`` shows

    async def keep_streams_alive(self) -> int | None:
        """Keep the open streams' listen keys alive now; returns how far the venue's clock may
        then move before the next call (``None``: no stream has a key, no limit)."""
        keyed = [opened for opened in self._streams if opened.listen_key is not None]
        for opened in keyed:
            await opened.keep_alive()
        return KEEPALIVE_MS if keyed else None

    async def close(self) -> None:
        streams, self._streams = list(self._streams), set()
        try:
            for opened in streams:
                await opened.close()
        finally:
            await super().close()

    async def instruments(self) -> Mapping[str, Instrument]:
        info = await self.request("fapiPublicGetExchangeInfo")
        brackets = bw.brackets_by_symbol(await self.request("fapiPrivateGetLeverageBracket"))
        out: dict[str, Instrument] = {}
        for sym in info.get("symbols", ()):
            name = str(sym.get("symbol"))
            if bw.tradable(sym) and brackets.get(name):
                out[name] = bw.instrument(sym, brackets[name])
        return out

    async def order_book(self, symbol: str, limit: int = 100) -> BookSnapshot:
        raw = await self.request("fapiPublicGetDepth", {"symbol": symbol, "limit": limit})
        return bw.book(symbol, raw)

    async def mark(self, symbol: str) -> MarkSnapshot:
        raw = await self.request("fapiPublicGetPremiumIndex", {"symbol": symbol})
        if "lastPrice" in raw:
            last = dec_or_none(raw["lastPrice"], "lastPrice")
        else:
            ticker = await self.request("fapiPublicGetTickerPrice", {"symbol": symbol})
            last = dec_or_none(ticker.get("price"), "price")
        return bw.mark(raw, last)

    async def brackets(self, symbol: str) -> tuple[Bracket, ...]:
        raw = await self.request("fapiPrivateGetLeverageBracket", {"symbol": symbol})
        found = bw.brackets_by_symbol(raw).get(symbol)
        if not found:
            raise not_published(self.name, f"brackets for {symbol}")
        return tuple(sorted(found, key=lambda b: b.notional_floor))

    async def liquidations(
        self, symbol: str | None = None, since_ms: int | None = None
    ) -> list[LiquidationEvent]:
        """Only the keyed account's own forced orders are visible on a real venue."""
        return await self._account.liquidations(symbol, since_ms)

    async def insurance_fund(self) -> InsuranceFund:
        raise not_published(self.name, "its insurance fund balance")

    async def adl_events(
        self, symbol: str | None = None, since_ms: int | None = None
    ) -> list[AdlEvent]:
        raise not_published(self.name, "auto-deleveraging events")

    async def funding_history(self, symbol: str, since_ms: int | None = None) -> list[FundingEvent]:
        params: dict[str, Any] = {"symbol": symbol, "limit": 1000}
        if since_ms is not None:
            params["startTime"] = since_ms
        rows = await self.request("fapiPublicGetFundingRate", params)
        return sorted((bw.funding_event(r) for r in rows), key=lambda e: e.funding_time_ms)

    async def funding_info(self, symbol: str) -> FundingInfo:
        rows = await self.request("fapiPublicGetFundingInfo")
        row = next((r for r in rows if r.get("symbol") == symbol), None)
        if row is not None and "interestRate" in row:
            return _funding_info(row)
        if row is None:
            raise not_published(self.name, f"funding caps for {symbol} (not in fundingInfo)")
        premium = await self.request("fapiPublicGetPremiumIndex", {"symbol": symbol})
        brackets = await self.brackets(symbol)
        return FundingInfo(
            symbol=symbol,
            interval_hours=int(row.get("fundingIntervalHours", 8)),
            interest_rate=dec(premium.get("interestRate", 0), "interestRate"),
            clamp=DEFAULT_CLAMP,
            cap=dec(row["adjustedFundingRateCap"], "adjustedFundingRateCap"),
            floor=dec(row["adjustedFundingRateFloor"], "adjustedFundingRateFloor"),
            impact_margin_notional=IMPACT_MARGIN * brackets[0].initial_leverage,
            next_funding_time_ms=int(premium.get("nextFundingTime", 0)),
        )


def _binance_account(account: Account, venue: str) -> BinanceAccount:
    """The :class:`BinanceAccount` behind ``account`` (the harness may wrap it, e.g. in a
    ``SafeAccount`` that exposes it as ``inner``)."""
    found: object = account
    while not isinstance(found, BinanceAccount) and hasattr(found, "inner"):
        found = found.inner
    if not isinstance(found, BinanceAccount):
        msg = f"{venue} streams need one of its own accounts, not {type(account).__name__}"
        raise ConfigError(msg)
    return found


def _opt_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _funding_info(row: Mapping[str, Any]) -> FundingInfo:
    """A ``fundingInfo`` row with the simulator's extras."""
    return FundingInfo(
        symbol=str(row["symbol"]),
        interval_hours=int(row["fundingIntervalHours"]),
        interest_rate=dec(row["interestRate"], "interestRate"),
        clamp=dec(row["interestClamp"], "interestClamp"),
        cap=dec(row["adjustedFundingRateCap"], "adjustedFundingRateCap"),
        floor=dec(row["adjustedFundingRateFloor"], "adjustedFundingRateFloor"),
        impact_margin_notional=dec(row["impactMarginNotional"], "impactMarginNotional"),
        next_funding_time_ms=int(row["nextFundingTime"]),
        pending_interval_hours=_opt_int(row.get("pendingIntervalHours")),
        pending_effective_ms=_opt_int(row.get("pendingEffectiveTime")),
        pending_announced_ms=_opt_int(row.get("pendingAnnouncedTime")),
    )
