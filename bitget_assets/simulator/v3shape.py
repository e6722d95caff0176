"""v2 order -> unified-account (v3) order, field by field (docs/api-notes.md, unified accounts).

The v3 endpoints and the v3 ground truth both go through `v3_order_bytes`, so they agree by construction;
the mapping itself is checked field by field in the tests. Choices where the sources are silent:
- `orderStatus`: `canceled`/`cancelled` -> `cancelled`, other statuses unchanged (`live`, `partially_filled`,
  `filled`); `cancelReason` `normal_cancel` for cancelled orders, else "".
- `posSide` `net` (one-way mode) -> ""; `holdMode` = v2 `posMode`; `reduceOnly` keeps v2's `YES`/`NO`.
- `price`/`avgPrice` "" -> "0"; `amount` "0" (futures); `execType` from v2 `tradeSide`: burst_* liquidation,
  offset_* offset, delivery_* delivery, reduce_* reduce, else normal.
- `feeDetail`: `[{"feeCoin": marginCoin, "fee": <v2 fee without its minus sign>}]` (v3 fees are positive);
  nothing filled: `[{"feeCoin": "", "fee": ""}]` for even orderIds, `[{"feeCoin": null, "fee": null}]` for odd
  ones (both seen; a client must cope with either).
"""

from __future__ import annotations

import json

V3_ORDER_KEYS = (
    "orderId", "clientOid", "category", "symbol", "orderType", "side", "price", "qty", "amount", "cumExecQty",
    "cumExecValue", "avgPrice", "timeInForce", "orderStatus", "posSide", "holdMode", "reduceOnly", "marginMode",
    "feeDetail", "cancelReason", "execType", "stpMode", "takeProfit", "stopLoss", "createdTime", "updatedTime",
)
_EXEC_TYPES = (("burst_", "liquidation"), ("offset_", "offset"), ("delivery_", "delivery"), ("reduce_", "reduce"))


def _exec_type(trade_side: str) -> str:
    for prefix, kind in _EXEC_TYPES:
        if trade_side.startswith(prefix):
            return kind
    return "normal"


def v3_order(o: dict, category: str) -> dict:
    """The v3 order of a v2 order dict (all v2 values strings) of product type `category`."""
    status = "cancelled" if o["status"] in ("canceled", "cancelled") else o["status"]
    fee = o["fee"]
    if o["baseVolume"] not in ("", "0") and float(o["baseVolume"]) > 0:
        fee_detail = [{"feeCoin": o["marginCoin"], "fee": fee[1:] if fee.startswith("-") else fee}]
    elif int(o["orderId"]) % 2:
        fee_detail = [{"feeCoin": None, "fee": None}]
    else:
        fee_detail = [{"feeCoin": "", "fee": ""}]
    values = (
        o["orderId"], o["clientOid"], category, o["symbol"], o["orderType"], o["side"], o["price"] or "0",
        o["size"], "0", o["baseVolume"], o["quoteVolume"], o["priceAvg"] or "0", o["force"], status,
        "" if o["posSide"] == "net" else o["posSide"], o["posMode"], o["reduceOnly"], o["marginMode"],
        fee_detail, "normal_cancel" if status == "cancelled" else "", _exec_type(o["tradeSide"]), "none",
        o["presetStopSurplusPrice"], o["presetStopLossPrice"], o["cTime"], o["uTime"],
    )
    return dict(zip(V3_ORDER_KEYS, values, strict=True))


def v3_order_bytes(v2_blob: bytes, category: str) -> bytes:
    return json.dumps(v3_order(json.loads(v2_blob), category), separators=(",", ":"),
                      ensure_ascii=False).encode()
