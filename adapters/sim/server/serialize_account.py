"""Account bodies in Binance's shapes (binance-usdm-surface.md §2.3, §2.4).

Orders, user trades, income, ``positionRisk`` v2 and v3, ``account`` v2 and v3, ``balance``,
``symbolConfig``, ``forceOrders``, and the sim-only liquidation band. Figures come from
:mod:`adapters.sim.engine.views`, the same as the in-process venue publishes. Simulator extras
(PROTOCOL.md): ``liquidation`` on user trades, the disclosure fields on forced orders.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from adapters.sim.engine.accounts import (
    AccountState,
    FillRecord,
    OrderRecord,
    PositionState,
    max_notional_for_leverage,
)
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.liquidation import LiquidationRecord
from adapters.sim.engine.views import (
    balance_view,
    leverage_of,
    margin_mode_of,
    open_order_margin,
    open_order_notional,
    position_view,
)
from adapters.sim.server.wire import s
from harness.model import IncomeRecord, IncomeType, LiquidationBand, MarginMode, Side

__all__ = [
    "account_json",
    "balance_rows",
    "band_json",
    "force_order_json",
    "income_json",
    "order_json",
    "position_rows",
    "symbol_config",
    "user_trade",
]

ZERO = Decimal(0)
PRICE_UNIT = Decimal("0.00000001")


def order_json(rec: OrderRecord, *, with_time: bool = False) -> dict[str, Any]:
    """The order object; ``GET /order`` and ``openOrders`` add ``time`` (creation)."""
    avg = (
        (rec.cum_quote / rec.executed_qty).quantize(PRICE_UNIT, ROUND_HALF_EVEN)
        if rec.executed_qty
        else ZERO
    )
    out: dict[str, Any] = {
        "orderId": rec.order_id,
        "symbol": rec.symbol,
        "status": rec.status,
        "clientOrderId": rec.client_order_id,
        "price": s(rec.price or ZERO),
        "avgPrice": s(avg),
        "origQty": s(rec.orig_qty),
        "executedQty": s(rec.executed_qty),
        "cumQty": s(rec.executed_qty),
        "cumQuote": s(rec.cum_quote),
        "timeInForce": rec.time_in_force or "GTC",  # Binance shows market orders as GTC
        "type": rec.type,
        "reduceOnly": rec.reduce_only,
        "closePosition": False,
        "side": rec.side,
        "positionSide": "BOTH",
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "origType": rec.type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",  # a self-trade expires the resting order
        "goodTillDate": 0,
    }
    if with_time:
        out["time"] = rec.time_ms
    out["updateTime"] = rec.update_time_ms
    return out


def user_trade(f: FillRecord) -> dict[str, Any]:
    """One ``GET /fapi/v1/userTrades`` row, plus ``liquidation``."""
    return {
        "buyer": f.side == Side.BUY.value,
        "commission": s(f.commission),
        "commissionAsset": "USDT",
        "id": f.trade_id,
        "maker": f.maker,
        "orderId": f.order_id,
        "price": s(f.price),
        "qty": s(f.qty),
        "quoteQty": s(f.price * f.qty),
        "realizedPnl": s(f.realized_pnl),
        "side": f.side,
        "positionSide": "BOTH",
        "symbol": f.symbol,
        "time": f.time_ms,
        "liquidation": f.liquidation,
    }


def income_json(r: IncomeRecord) -> dict[str, Any]:
    """One ``GET /fapi/v1/income`` row; ``info`` is the engine's (the funding time, a trade id)."""
    traded = r.income_type in (IncomeType.COMMISSION, IncomeType.REALIZED_PNL)
    return {
        "symbol": r.symbol,
        "incomeType": r.income_type.value,
        "income": s(r.amount),
        "asset": r.asset,
        "info": r.info,
        "time": r.time_ms,
        "tranId": r.tran_id,
        "tradeId": r.info if traded else "",
    }


def _position_v3(engine: Engine, acct: AccountState, pos: PositionState) -> dict[str, Any]:
    symbol = pos.symbol
    oo_margin = open_order_margin(engine, acct, symbol)
    if pos.qty:
        view = position_view(engine, acct, pos)
        upnl, notional = view.unrealized_pnl, view.notional
        mm, im, lp = view.maint_margin, view.initial_margin, view.liquidation_price
    else:
        upnl = notional = mm = im = ZERO
        lp = None
    isolated = pos.margin_mode is MarginMode.ISOLATED
    return {
        "symbol": symbol,
        "positionSide": "BOTH",
        "positionAmt": s(pos.qty),
        "entryPrice": s(pos.entry),
        "breakEvenPrice": s(pos.entry),
        "markPrice": s(engine.mark(symbol)),
        "unRealizedProfit": s(upnl),
        "liquidationPrice": s(lp or ZERO),
        "isolatedMargin": s(pos.isolated_wallet + upnl if isolated else ZERO),
        "notional": s(notional),
        "marginAsset": "USDT",
        "isolatedWallet": s(pos.isolated_wallet),
        "initialMargin": s(im + oo_margin),
        "maintMargin": s(mm),
        "positionInitialMargin": s(im),
        "openOrderInitialMargin": s(oo_margin),
        "adl": 0,
        "bidNotional": s(open_order_notional(acct, symbol, Side.BUY)),
        "askNotional": s(open_order_notional(acct, symbol, Side.SELL)),
        "updateTime": pos.update_ms,
    }


def _state(engine: Engine, acct: AccountState, symbol: str) -> PositionState:
    pos = acct.positions.get(symbol)
    if pos is not None:
        return pos
    return PositionState(
        symbol=symbol,
        margin_mode=margin_mode_of(acct, symbol),
        leverage=leverage_of(engine, acct, symbol),
    )


def _has_open_orders(acct: AccountState, symbol: str) -> bool:
    return any(
        r.symbol == symbol and r.status in ("NEW", "PARTIALLY_FILLED") for r in acct.orders.values()
    )


def position_rows(
    engine: Engine, acct: AccountState, symbol: str | None, *, version: int
) -> list[dict[str, Any]]:
    """``GET /fapi/v2|v3/positionRisk``: v3 lists positions and symbols with open orders,
    v2 every symbol, with ``leverage``, ``marginType``, ``isolated``, ``maxNotionalValue``."""
    rows = []
    for sym in [symbol] if symbol else list(engine.instruments):
        pos = _state(engine, acct, sym)
        if version == 3 and not pos.qty and not _has_open_orders(acct, sym):
            continue
        row = _position_v3(engine, acct, pos)
        if version == 2:
            brackets = engine.instruments[sym].brackets
            row.update(
                leverage=str(pos.leverage),
                marginType=pos.margin_mode.value.lower(),
                isolated=pos.margin_mode is MarginMode.ISOLATED,
                maxNotionalValue=s(max_notional_for_leverage(brackets, pos.leverage)),
                isAutoAddMargin="false",
            )
        rows.append(row)
    return rows


def account_json(engine: Engine, acct: AccountState, *, version: int) -> dict[str, Any]:
    """``GET /fapi/v3/account`` (v2: the same plus the older top-level and position fields)."""
    bal = balance_view(engine, acct)
    now = engine.clock.now_ms()
    positions = position_rows(engine, acct, None, version=3)
    cross = [p for p in acct.open_positions() if p.margin_mode is MarginMode.CROSS]
    cross_upnl = engine.round_balance(
        sum((engine.ledger.figures(p).upnl for p in cross), ZERO), ROUND_HALF_EVEN
    )
    position_im = sum(
        (position_view(engine, acct, p).initial_margin for p in acct.open_positions()), ZERO
    )
    order_im = bal.initial_margin - position_im
    available = bal.available_balance
    asset = {
        "asset": bal.asset,
        "walletBalance": s(bal.wallet_balance),
        "unrealizedProfit": s(bal.unrealized_pnl),
        "marginBalance": s(bal.margin_balance),
        "maintMargin": s(bal.maint_margin),
        "initialMargin": s(bal.initial_margin),
        "positionInitialMargin": s(position_im),
        "openOrderInitialMargin": s(order_im),
        "crossWalletBalance": s(bal.cross_wallet_balance),
        "crossUnPnl": s(cross_upnl),
        "availableBalance": s(available),
        "maxWithdrawAmount": s(max(min(available, bal.cross_wallet_balance), ZERO)),
        "updateTime": acct.update_ms or now,  # ccxt skips an asset whose updateTime is 0
    }
    out: dict[str, Any] = {
        "totalInitialMargin": s(bal.initial_margin),
        "totalMaintMargin": s(bal.maint_margin),
        "totalWalletBalance": s(bal.wallet_balance),
        "totalUnrealizedProfit": s(bal.unrealized_pnl),
        "totalMarginBalance": s(bal.margin_balance),
        "totalPositionInitialMargin": s(position_im),
        "totalOpenOrderInitialMargin": s(order_im),
        "totalCrossWalletBalance": s(bal.cross_wallet_balance),
        "totalCrossUnPnl": s(cross_upnl),
        "availableBalance": s(available),
        "maxWithdrawAmount": asset["maxWithdrawAmount"],
        "assets": [asset],
        "positions": [
            {
                key: p[key]
                for key in (
                    "symbol",
                    "positionSide",
                    "positionAmt",
                    "isolatedMargin",
                    "notional",
                    "isolatedWallet",
                    "initialMargin",
                    "maintMargin",
                    "updateTime",
                )
            }
            | {"unrealizedProfit": p["unRealizedProfit"]}
            for p in positions
        ],
    }
    if version == 2:
        out = {
            "feeTier": 0,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "updateTime": 0,
            "multiAssetsMargin": False,
            "tradeGroupId": -1,
            **out,
            "positions": position_rows(engine, acct, None, version=2),
        }
    return out


def balance_rows(engine: Engine, acct: AccountState) -> list[dict[str, Any]]:
    """``GET /fapi/v2|v3/balance``."""
    bal = balance_view(engine, acct)
    return [
        {
            "accountAlias": acct.account_id,
            "asset": bal.asset,
            "balance": s(bal.wallet_balance),
            "crossWalletBalance": s(bal.cross_wallet_balance),
            "crossUnPnl": s(bal.unrealized_pnl),
            "availableBalance": s(bal.available_balance),
            "maxWithdrawAmount": s(max(min(bal.available_balance, bal.cross_wallet_balance), ZERO)),
            "marginAvailable": True,
            "updateTime": acct.update_ms or engine.clock.now_ms(),
        }
    ]


def symbol_config(engine: Engine, acct: AccountState, symbol: str) -> dict[str, Any]:
    """One ``GET /fapi/v1/symbolConfig`` row."""
    leverage = leverage_of(engine, acct, symbol)
    mode = margin_mode_of(acct, symbol)
    brackets = engine.instruments[symbol].brackets
    return {
        "symbol": symbol,
        "marginType": "ISOLATED" if mode is MarginMode.ISOLATED else "CROSSED",
        "isAutoAddMargin": "false",
        "leverage": leverage,
        "maxNotionalValue": s(max_notional_for_leverage(brackets, leverage)),
    }


def force_order_json(rec: LiquidationRecord, order: OrderRecord | None) -> dict[str, Any]:
    """A forced order (``GET /fapi/v1/forceOrders``) with the simulator's disclosure fields.

    ``executedQty``/``avgPrice`` are what went through the book (also ``filledInBook``/
    ``bookAvgPrice``); the rest was taken over by the insurance fund or deleveraged.
    """
    avg = rec.avg_price if rec.avg_price is not None else ZERO
    return {
        "orderId": order.order_id if order is not None else 0,
        "symbol": rec.symbol,
        "status": "FILLED",
        "clientOrderId": order.client_order_id if order is not None else "",
        "price": s(rec.price),
        "avgPrice": s(avg),
        "origQty": s(rec.quantity),
        "executedQty": s(rec.filled_qty),
        "cumQuote": s(rec.filled_qty * avg),
        "timeInForce": "IOC",
        "type": "LIMIT" if rec.price else "MARKET",
        "reduceOnly": True,
        "closePosition": False,
        "side": rec.side,
        "positionSide": "BOTH",
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "origType": "LIMIT" if rec.price else "MARKET",
        "time": rec.time_ms,
        "updateTime": rec.time_ms,
        "triggerMark": s(rec.trigger_mark),
        "bankruptcyPrice": s(rec.bankruptcy_price),
        "fee": s(rec.fee),
        "shortfall": s(rec.shortfall),
        "takenOverQty": s(rec.taken_over_qty),
        "adlQty": s(rec.adl_qty),
        "partial": rec.partial,
        "filledInBook": s(rec.filled_qty),
        "bookAvgPrice": s(avg),
        "marginType": rec.margin_mode.value,
    }


def band_json(symbol: str, band: LiquidationBand | None) -> dict[str, Any]:
    """``GET /sim/v1/liquidationBand`` (PROTOCOL.md "Sim-only signed endpoints")."""
    if band is None:
        return {"symbol": symbol, "steps": []}
    return {
        "symbol": symbol,
        "quantity": s(band.quantity),
        "steps": [
            {
                "mark": s(step.mark),
                "closeQty": s(step.close_qty),
                "remainingQty": s(step.remaining_qty),
                "bracketBefore": step.bracket_before,
                "bracketAfter": step.bracket_after,
            }
            for step in band.steps
        ],
    }
