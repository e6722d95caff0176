"""v2 plan order -> v3 strategy order, v2 fill -> v3 fill (docs/api-notes.md, unified accounts).

Strategy orders: TP/SL kinds (profit_plan, pos_profit: take-profit; loss_plan, moving_plan, pos_loss:
stop-loss) fill the documented tp*/sl* fields and `triggerType` takeProfit/stopLoss; trigger kinds
(normal_plan, track_plan) fill the newer trigger* fields; both carry `status` (live -> pending, executed ->
success, fail_execute -> failed, cancelled). Trigger source fill_price -> market, mark/index_price -> mark. v3
shows no link to the spawned order (the sources show none), so `executeOrderId` is not carried over.
Fills: execId = execLinkId = tradeId; execQty/execValue/execPrice = baseVolume/quoteVolume/price; execPnl =
profit; feeDetail [{feeCoin, fee}] with the fee positive (v2 totalFee is negative); clientOid and orderType
come from the fill's order; updatedTime = createdTime = cTime.
"""

from __future__ import annotations

import json

STRATEGY_KEYS = (
    "orderId", "clientOid", "category", "symbol", "qty", "posSide", "status", "triggerType", "tpTriggerBy",
    "slTriggerBy", "takeProfit", "stopLoss", "tpOrderType", "slOrderType", "tpLimitPrice", "slLimitPrice",
    "triggerBy", "triggerPrice", "triggerOrderType", "triggerOrderPrice", "createdTime", "updatedTime",
)
FILL_V3_KEYS = (
    "execId", "execLinkId", "orderId", "clientOid", "category", "symbol", "orderType", "side", "execPrice",
    "execQty", "execValue", "tradeScope", "tradeSide", "feeDetail", "execPnl", "createdTime", "updatedTime",
)
TAKE_PROFIT = ("profit_plan", "pos_profit")
STOP_LOSS = ("loss_plan", "moving_plan", "pos_loss")
STATUS = {"live": "pending", "executed": "success", "fail_execute": "failed", "cancelled": "cancelled"}


def _by(trigger_type: str) -> str:
    return "market" if trigger_type == "fill_price" else "mark"


def _positive(fee: str) -> str:
    return fee[1:] if fee.startswith("-") else fee


def strategy_order(plan: dict, category: str) -> dict:
    kind = plan["planType"]
    out = dict.fromkeys(STRATEGY_KEYS, "")
    out.update(orderId=plan["orderId"], clientOid=plan["clientOid"], category=category, symbol=plan["symbol"],
               qty=plan["size"], posSide="" if plan["posSide"] == "net" else plan["posSide"],
               status=STATUS[plan["planStatus"]], createdTime=plan["cTime"], updatedTime=plan["uTime"])
    limit_price = plan.get("executePrice") or ""
    if kind in TAKE_PROFIT:
        out.update(triggerType="takeProfit", tpTriggerBy=_by(plan["triggerType"]), takeProfit=plan["triggerPrice"],
                   tpOrderType=plan["orderType"], tpLimitPrice=limit_price)
    elif kind in STOP_LOSS:
        out.update(triggerType="stopLoss", slTriggerBy=_by(plan["triggerType"]), stopLoss=plan["triggerPrice"],
                   slOrderType=plan["orderType"], slLimitPrice=limit_price)
    else:
        out.update(triggerBy=_by(plan["triggerType"]), triggerPrice=plan["triggerPrice"],
                   triggerOrderType=plan["orderType"], triggerOrderPrice=limit_price)
    return out


def v3_fill(fill: dict, order: dict, category: str) -> dict:
    fees = [{"feeCoin": f["feeCoin"], "fee": _positive(f["totalFee"] or "0")} for f in fill["feeDetail"] or []]
    values = (fill["tradeId"], fill["tradeId"], fill["orderId"], order["clientOid"], category, fill["symbol"],
              order["orderType"], fill["side"], fill["price"], fill["baseVolume"], fill["quoteVolume"],
              fill["tradeScope"], fill["tradeSide"], fees, fill["profit"], fill["cTime"], fill["cTime"])
    return dict(zip(FILL_V3_KEYS, values, strict=True))


def dumps(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
