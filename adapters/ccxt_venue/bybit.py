"""Bybit v5 linear perpetuals over ccxt ``bybit`` (testnet): the Venue and Account protocols.

Raw v5 endpoints through ccxt's implicit methods (ccxt signs them; the unified methods would
round quantities and lose fields). Bybit answers HTTP 200 with ``{"retCode", "retMsg"}``; a
non-zero ``retCode`` is the venue's verdict and surfaces as ``Rejected(retCode, retMsg)``.
What Bybit does not publish (liquidation fee per symbol, the settlement mark of a funding
event, liquidation orders, bands) is ``None``/absent, and the capability is not claimed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from adapters.ccxt_venue._base import CcxtVenueBase, not_published
from adapters.ccxt_venue._wire import call, dec, dec_or_none
from adapters.ccxt_venue.bybit_wire import (
    BYBIT_INTEREST,
    LINEAR,
    TIF_OUT,
    ZERO,
    brackets,
    first_row,
    income_records,
    instrument,
    order,
    position,
    result_of,
    rows_of,
)
from harness.errors import Rejected
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
    OrderType,
    Position,
    Side,
)
from harness.streams import EventStream
from harness.venue import Account

__all__ = ["BybitAccount", "BybitVenue"]


class BybitAccount:
    """The keyed Bybit unified-trading account (linear USDT perpetuals)."""

    def __init__(self, exchange: Any, *, venue_name: str, margin_asset: str = "USDT") -> None:
        self.exchange = exchange
        self._venue_name = venue_name
        self._asset = margin_asset

    @property
    def account_id(self) -> str:
        return "bybit"

    async def _req(self, method_name: str, params: Mapping[str, Any]) -> Any:
        return await call(getattr(self.exchange, method_name)(dict(params)))

    async def place_order(self, request: OrderRequest) -> Order:
        params: dict[str, Any] = {
            **LINEAR,
            "symbol": request.symbol,
            "side": "Buy" if request.side is Side.BUY else "Sell",
            "orderType": "Limit" if request.type is OrderType.LIMIT else "Market",
            "qty": format(request.quantity, "f"),
        }
        if request.price is not None:
            params["price"] = format(request.price, "f")
        if request.time_in_force is not None:
            tif = request.time_in_force
            params["timeInForce"] = TIF_OUT.get(tif, tif.value)
        if request.reduce_only:
            params["reduceOnly"] = True
        if request.client_order_id is not None:
            params["orderLinkId"] = str(request.client_order_id)
        placed = result_of(await self._req("privatePostV5OrderCreate", params))
        return await self.get_order(request.symbol, order_id=OrderId(str(placed["orderId"])))

    @staticmethod
    def _ref(
        symbol: str, order_id: OrderId | None, client_order_id: ClientOrderId | None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {**LINEAR, "symbol": symbol}
        if order_id is not None:
            params["orderId"] = str(order_id)
        if client_order_id is not None:
            params["orderLinkId"] = str(client_order_id)
        return params

    async def cancel_order(
        self,
        symbol: str,
        *,
        order_id: OrderId | None = None,
        client_order_id: ClientOrderId | None = None,
    ) -> Order:
        done = result_of(
            await self._req(
                "privatePostV5OrderCancel", self._ref(symbol, order_id, client_order_id)
            )
        )
        return await self.get_order(symbol, order_id=OrderId(str(done["orderId"])))

    async def get_order(
        self,
        symbol: str,
        *,
        order_id: OrderId | None = None,
        client_order_id: ClientOrderId | None = None,
    ) -> Order:
        params = self._ref(symbol, order_id, client_order_id)
        rows = rows_of(await self._req("privateGetV5OrderRealtime", params))
        if not rows:  # closed orders leave the real-time list
            rows = rows_of(await self._req("privateGetV5OrderHistory", params))
        if not rows:
            raise Rejected(110001, "Order does not exist.")  # Bybit's "order not exists"
        return order(rows[0])

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        where = {"symbol": symbol} if symbol is not None else {"settleCoin": self._asset}
        rows = rows_of(await self._req("privateGetV5OrderRealtime", {**LINEAR, **where}))
        return [o for o in map(order, rows) if o.status.is_open]

    async def cancel_all(self, symbol: str) -> None:
        await self._req("privatePostV5OrderCancelAll", {**LINEAR, "symbol": symbol})

    async def fills(self, symbol: str, since_ms: int | None = None) -> list[Fill]:
        params: dict[str, Any] = {**LINEAR, "symbol": symbol, "limit": 100}
        if since_ms is not None:
            params["startTime"] = since_ms
        out = []
        for r in rows_of(await self._req("privateGetV5ExecutionList", params)):
            if r.get("execType") not in ("Trade", "BustTrade", "AdlTrade"):
                continue  # funding and settlement rows are not fills
            out.append(
                Fill(
                    trade_id=int(str(r["execId"]).replace("-", ""), 16),  # a UUID
                    order_id=OrderId(str(r["orderId"])),
                    symbol=str(r["symbol"]),
                    side=Side(str(r["side"]).upper()),
                    price=dec(r["execPrice"], "execPrice"),
                    qty=dec(r["execQty"], "execQty"),
                    quote_qty=dec(r["execValue"], "execValue"),
                    commission=dec(r.get("execFee") or 0, "execFee"),
                    commission_asset=str(r.get("feeCurrency") or self._asset),
                    maker=bool(r.get("isMaker", False)),
                    realized_pnl=dec(r.get("execPnl") or 0, "execPnl"),
                    time_ms=int(r["execTime"]),
                    liquidation=r.get("execType") == "BustTrade",
                )
            )
        return sorted(out, key=lambda f: f.time_ms)

    async def positions(self) -> list[Position]:
        raw = await self._req("privateGetV5PositionList", {**LINEAR, "settleCoin": self._asset})
        return [position(r) for r in rows_of(raw) if dec(r.get("size") or 0, "size") != 0]

    async def balance(self) -> Balance:
        raw = await self._req("privateGetV5AccountWalletBalance", {"accountType": "UNIFIED"})
        for acct in rows_of(raw):
            for coin in acct.get("coin", ()):
                if coin.get("coin") == self._asset:
                    wallet = dec(coin["walletBalance"], "walletBalance")
                    equity = dec(coin["equity"], "equity")
                    im = dec(coin.get("totalPositionIM") or 0, "totalPositionIM") + dec(
                        coin.get("totalOrderIM") or 0, "totalOrderIM"
                    )
                    return Balance(
                        asset=self._asset,
                        wallet_balance=wallet,
                        cross_wallet_balance=wallet,
                        unrealized_pnl=dec(coin.get("unrealisedPnl") or 0, "unrealisedPnl"),
                        margin_balance=equity,
                        available_balance=equity - im,
                        initial_margin=im,
                        maint_margin=dec(coin.get("totalPositionMM") or 0, "totalPositionMM"),
                    )
        raise not_published(self._venue_name, f"a {self._asset} balance")

    async def income(
        self,
        income_type: IncomeType | None = None,
        symbol: str | None = None,
        since_ms: int | None = None,
    ) -> list[IncomeRecord]:
        params: dict[str, Any] = {
            "accountType": "UNIFIED",
            **LINEAR,
            "currency": self._asset,
            "limit": 50,
        }
        if since_ms is not None:
            params["startTime"] = since_ms
        out: list[IncomeRecord] = []
        for r in rows_of(await self._req("privateGetV5AccountTransactionLog", params)):
            out += [
                rec
                for rec in income_records(r, self._asset)
                if income_type in (None, rec.income_type) and symbol in (None, rec.symbol)
            ]
        return sorted(out, key=lambda r: r.time_ms)

    async def commission_rates(self, symbol: str) -> FeeRates:
        raw = await self._req("privateGetV5AccountFeeRate", {**LINEAR, "symbol": symbol})
        row = first_row(raw, f"fee rates of {symbol}")
        return FeeRates(
            maker=dec(row["makerFeeRate"], "makerFeeRate"),
            taker=dec(row["takerFeeRate"], "takerFeeRate"),
        )

    async def set_leverage(self, symbol: str, leverage: int) -> int:
        params = {**LINEAR, "symbol": symbol, "buyLeverage": str(leverage)}
        params["sellLeverage"] = str(leverage)
        try:
            await self._req("privatePostV5PositionSetLeverage", params)
        except Rejected as exc:
            if exc.code != 110043:  # "leverage not modified": already so, as Binance answers
                raise
        return leverage

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> None:
        """Unified accounts switch margin mode account-wide (``/v5/account/set-margin-mode``)."""
        wire = "ISOLATED_MARGIN" if mode is MarginMode.ISOLATED else "REGULAR_MARGIN"
        await self._req("privatePostV5AccountSetMarginMode", {"setMarginMode": wire})

    async def add_isolated_margin(self, symbol: str, amount: Decimal) -> None:
        params = {**LINEAR, "symbol": symbol, "margin": format(amount, "f"), "positionIdx": 0}
        await self._req("privatePostV5PositionAddMargin", params)

    async def liquidation_band(self, symbol: str) -> LiquidationBand | None:
        raise not_published(self._venue_name, "liquidation bands")

    async def liquidations(
        self, symbol: str | None = None, since_ms: int | None = None
    ) -> list[LiquidationEvent]:
        raise not_published(self._venue_name, "the account's liquidation orders over REST")


class BybitVenue(CcxtVenueBase):
    """Bybit testnet market data (linear USDT perpetuals).

    No ``READ_STREAMS``: the adapter does not implement Bybit's v5 WebSocket streams, so
    :meth:`stream` raises ``Missing`` and checks needing streams are skipped on this venue.
    """

    def __init__(self, *, account: BybitAccount, **kwargs: Any) -> None:
        super().__init__(exchange=account.exchange, **kwargs)
        self._account = account

    def account(self) -> BybitAccount:
        return self._account

    async def _tiers(self, symbol: str | None = None) -> dict[str, tuple[Bracket, ...]]:
        params = {**LINEAR, **({"symbol": symbol} if symbol else {})}
        by_symbol: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows_of(await self.request("publicGetV5MarketRiskLimit", params)):
            by_symbol.setdefault(str(row["symbol"]), []).append(row)
        return {s: brackets(rows) for s, rows in by_symbol.items()}

    async def instruments(self) -> Mapping[str, Instrument]:
        raw = await self.request("publicGetV5MarketInstrumentsInfo", {**LINEAR, "limit": 1000})
        tiers = await self._tiers()
        return {
            str(r["symbol"]): instrument(r, tiers[str(r["symbol"])])
            for r in rows_of(raw)
            if r.get("contractType") == "LinearPerpetual"
            and r.get("status") == "Trading"
            and tiers.get(str(r["symbol"]))
        }

    async def order_book(self, symbol: str, limit: int = 100) -> BookSnapshot:
        params = {**LINEAR, "symbol": symbol, "limit": min(limit, 500)}
        book = result_of(await self.request("publicGetV5MarketOrderbook", params))
        return BookSnapshot(
            symbol=symbol,
            bids=tuple((dec(p), dec(q)) for p, q in book.get("b", ())),
            asks=tuple((dec(p), dec(q)) for p, q in book.get("a", ())),
            time_ms=int(book.get("ts", 0)),
            update_id=int(book.get("u", 0)),
        )

    async def mark(self, symbol: str) -> MarkSnapshot:
        raw = await self.request("publicGetV5MarketTickers", {**LINEAR, "symbol": symbol})
        t = first_row(raw, f"the ticker of {symbol}")
        hours = int(t.get("fundingIntervalHour") or 8)
        return MarkSnapshot(
            symbol=symbol,
            mark_price=dec(t["markPrice"], "markPrice"),
            index_price=dec(t["indexPrice"], "indexPrice"),
            last_price=dec_or_none(t.get("lastPrice"), "lastPrice"),
            last_funding_rate=dec(t.get("fundingRate") or 0, "fundingRate"),
            interest_rate=BYBIT_INTEREST,
            next_funding_time_ms=int(t.get("nextFundingTime") or 0),
            time_ms=int(raw.get("time", 0)),
            funding_interval_ms=hours * 3_600_000,
        )

    async def brackets(self, symbol: str) -> tuple[Bracket, ...]:
        found = (await self._tiers(symbol)).get(symbol)
        if not found:
            raise not_published(self.name, f"risk limits for {symbol}")
        return found

    async def liquidations(
        self, symbol: str | None = None, since_ms: int | None = None
    ) -> list[LiquidationEvent]:
        raise not_published(self.name, "liquidation orders over REST")

    async def stream(
        self, symbols: Sequence[str], *, account: Account | None = None, depth: bool = False
    ) -> EventStream:
        raise not_published(self.name, "event streams (not implemented for Bybit)")

    async def insurance_fund(self) -> InsuranceFund:
        raise not_published(self.name, "its insurance fund per contract")

    async def adl_events(
        self, symbol: str | None = None, since_ms: int | None = None
    ) -> list[AdlEvent]:
        raise not_published(self.name, "auto-deleveraging events")

    async def funding_history(self, symbol: str, since_ms: int | None = None) -> list[FundingEvent]:
        """Settled rates; Bybit does not publish the settlement mark (``mark_price`` is 0)."""
        params: dict[str, Any] = {**LINEAR, "symbol": symbol, "limit": 200}
        if since_ms is not None:
            params["startTime"] = since_ms
        rows = rows_of(await self.request("publicGetV5MarketFundingHistory", params))
        events = [
            FundingEvent(
                symbol=symbol,
                funding_rate=dec(r["fundingRate"], "fundingRate"),
                funding_time_ms=int(r["fundingRateTimestamp"]),
                mark_price=ZERO,
            )
            for r in rows
        ]
        return sorted(events, key=lambda e: e.funding_time_ms)

    async def funding_info(self, symbol: str) -> FundingInfo:
        raise not_published(self.name, "its impact margin notional and funding clamp")
