"""Test-side paging of the plan-order and fill endpoints, written from the API notes (no project imports)."""

from __future__ import annotations

from .helpers import signed_get

PLAN_HISTORY = "/api/v2/mix/order/orders-plan-history"
PLAN_PENDING = "/api/v2/mix/order/orders-plan-pending"
FILLS = "/api/v2/mix/order/fills"
FILL_HISTORY = "/api/v2/mix/order/fill-history"
PLAN_TYPES = ("normal_plan", "track_plan", "profit_loss")


def walk(base_url: str, creds: dict, path: str, params: str, session=None, pages: list | None = None) -> list[dict]:
    """Follow endId (or, where a page has no endId key, the last row's id) as idLessThan until a short page."""
    fills = path in (FILLS, FILL_HISTORY)
    list_key, id_key = ("fillList", "tradeId") if fills else ("entrustedList", "orderId")
    out, id_lt = [], None
    while True:
        query = params + (f"&idLessThan={id_lt}" if id_lt else "")
        r = signed_get(base_url, creds, path, query, session=session)
        body = r.json()
        assert r.status_code == 200 and body["code"] == "00000", r.text
        rows = body["data"][list_key] or []
        if pages is not None:
            pages.append(body["data"])
        out += rows
        if len(rows) < 100:
            return out
        if "endId" in body["data"]:
            assert body["data"]["endId"] == rows[-1][id_key]
        id_lt = rows[-1][id_key]
