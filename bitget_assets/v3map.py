"""Rows of Bitget's UTA (v3) endpoints mapped into the v2 schema of each dataset, so one table holds both.

Values stay the exchange's text; only names change, plus two normalisations v2 readers rely on: fees are
negative when paid (v3 sends them positive) and `reduceOnly` is upper case. The v3 object itself is kept,
as compact JSON, in the extra column `raw`. Field facts: docs/api-notes.md ("v3").
"""

import json
from decimal import Decimal, InvalidOperation

RAW_COL = "raw"

_ORDER_NAMES = {  # v3 name -> v2 name
    "orderId": "orderId", "clientOid": "clientOid", "symbol": "symbol", "qty": "size", "price": "price",
    "avgPrice": "priceAvg", "cumExecQty": "baseVolume", "cumExecValue": "quoteVolume", "orderStatus": "status",
    "side": "side", "posSide": "posSide", "orderType": "orderType", "timeInForce": "force",
    "marginMode": "marginMode", "holdMode": "posMode", "takeProfit":
    "presetStopSurplusPrice", "stopLoss": "presetStopLossPrice", "createdTime": "cTime", "updatedTime": "uTime",
}
_PLAN_NAMES = {
    "orderId": "orderId", "clientOid": "clientOid", "symbol": "symbol", "qty": "size", "posSide": "posSide",
    "status": "planStatus", "triggerPrice": "triggerPrice", "triggerBy": "triggerType",
    "triggerOrderType": "orderType", "triggerOrderPrice": "executePrice", "takeProfit": "stopSurplusTriggerPrice",
    "stopLoss": "stopLossTriggerPrice", "tpTriggerBy": "stopSurplusTriggerType",
    "slTriggerBy": "stopLossTriggerType", "tpLimitPrice": "stopSurplusExecutePrice",
    "slLimitPrice": "stopLossExecutePrice", "createdTime": "cTime", "updatedTime": "uTime",
}
_FILL_NAMES = {
    "execId": "tradeId", "orderId": "orderId", "clientOid": "clientOid", "symbol": "symbol", "execPrice": "price",
    "execQty": "baseVolume", "execValue": "quoteVolume", "execPnl": "profit", "side": "side",
    "tradeSide": "tradeSide", "tradeScope": "tradeScope", "orderType": "orderType", "createdTime": "cTime",
    "updatedTime": "uTime",
}


def _text(value):
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))  # ints of any size stay exact


def _negated(value) -> str | None:
    """v2 sign: negative = paid. Exact decimal text, never a float; unparsable values are passed through."""
    if value in (None, ""):
        return value
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return "0" if amount == 0 else format(-amount, "f")


def _renamed(row: dict, names: dict) -> dict:
    out = {v2: _text(row[v3]) for v3, v2 in names.items() if v3 in row}
    out[RAW_COL] = json.dumps(row, separators=(",", ":"), ensure_ascii=False)
    return out


def _fee_details(row: dict) -> list[dict]:
    details = row.get("feeDetail")
    return details if isinstance(details, list) else []


def order_row(row: dict) -> dict:
    """A v3 order (history-orders, unfilled-orders) in orders-history's shape."""
    out = _renamed(row, _ORDER_NAMES)
    if "reduceOnly" in row:
        out["reduceOnly"] = str(row["reduceOnly"]).upper()
    details = [d for d in _fee_details(row) if isinstance(d, dict)]
    coins = {d.get("feeCoin") for d in details}
    fees = [d.get("fee") for d in details if d.get("fee") not in (None, "")]
    if len(coins) == 1 and fees:
        try:
            out["fee"] = _negated(sum((Decimal(str(f)) for f in fees), Decimal(0)))
        except InvalidOperation:
            out["fee"] = ""
        out["marginCoin"] = _text(details[0].get("feeCoin"))
    return out


def plan_row(row: dict, plan_type: str | None = None) -> dict:
    """A v3 strategy order (history/unfilled-strategy-orders) in orders-plan-history's shape."""
    out = _renamed(row, _PLAN_NAMES)
    kind = row.get("triggerType") or row.get("type") or plan_type
    if kind is not None:
        out["planType"] = _text(kind)
    return out


def fill_row(row: dict) -> dict:
    """A v3 fill in fill-history's shape: `feeDetail` as v2's array, `totalFee` negative when paid."""
    out = _renamed(row, _FILL_NAMES)
    details = [
        {"feeCoin": d.get("feeCoin"), "totalFee": _negated(d.get("fee")), "deduction": d.get("deduction", "no"),
         "totalDeductionFee": d.get("deductionFee")}
        for d in _fee_details(row) if isinstance(d, dict)
    ]
    if "feeDetail" in row:
        out["feeDetail"] = json.dumps(details, separators=(",", ":"))
    return out


MAPPERS = {"orders": order_row, "plan_orders": plan_row, "fills": fill_row}
