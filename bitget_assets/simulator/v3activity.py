"""Unified-account (v3) strategy orders and fills, over the same plan and fill books as v2.

- `GET /api/v3/trade/history-strategy-orders`: `category` required (futures), `type` `tpsl` (default) or
  `trigger` (guess: normal_plan + track_plan), startTime/endTime (span up to max_span_days, guess: no 30-day
  rule is documented here), limit, cursor; `data = {"list", "cursor"}` where the cursor is a JSON NUMBER (as in a
  ccxt-captured answer) = smallest orderId of the page.
- `GET /api/v3/trade/unfilled-strategy-orders`: `category` required, `type`; `data` is a bare array of every
  live plan (no paging).
- `GET /api/v3/trade/fills`: `category` optional, `orderId`, startTime/endTime (30-day span), limit, cursor
  (smallest execId); no `symbol` parameter (one sent is ignored, like any unknown parameter).
Errors and windows as v3.py.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Mapping

from .accounts import Account
from .api import ApiError, ok_body
from .symbols import STANDARD_TYPES
from .v3 import V3Orders, _number
from .v3activity_shape import dumps, strategy_order, v3_fill

STRATEGY_GROUPS = {"tpsl": ("profit_loss",), "trigger": ("normal_plan", "track_plan")}


def _groups(q: Mapping[str, str]) -> tuple[str, ...]:
    kind = q.get("type") or "tpsl"
    if kind not in STRATEGY_GROUPS:
        raise ApiError("40034", "Parameter type does not exist")
    return STRATEGY_GROUPS[kind]


def order_of(store, order_id: int) -> dict:
    j = bisect_left(store.oids, order_id)
    return json.loads(store.blobs[j]) if j < len(store.oids) and store.oids[j] == order_id else {
        "clientOid": "", "orderType": ""}


def fill_bytes(store, p: int, category: str) -> bytes:
    book = store.fills
    return dumps(v3_fill(json.loads(book.blobs[p]), order_of(store, book.oids[p]), category))


def plan_bytes(store, p: int, category: str) -> bytes:
    return dumps(strategy_order(json.loads(store.plans.blobs[p]), category))


class V3Activity:
    def __init__(self, orders: V3Orders):
        self.orders = orders  # category/limit/window rules shared with the v3 order endpoints

    def _limit(self, q: Mapping[str, str]) -> int:
        limit = 100 if q.get("limit") in (None, "") else _number(q, "limit")
        if not 1 <= limit <= 100:
            raise ApiError("40017", "Parameter verification failed limit")
        return limit

    def strategy_history(self, account: Account, q: Mapping[str, str]) -> bytes:
        categories = self.orders.categories(q, required=True)
        groups, limit, cursor = _groups(q), self._limit(q), _number(q, "cursor")
        lower, upper = self.orders.window(q, pending=False, span_days=self.orders.exchange.config.max_span_days)
        store = self.orders.exchange.stores[account.name]
        book, hits = store.plans, []
        for category in categories:
            for group in groups:
                hits += [(book.ids[p], p, category) for p in book.query(
                    live=False, product_type=category, group=group, symbol_idx=None, lower=lower, upper=upper,
                    id_lt=cursor, limit=limit)]
        page = sorted(hits, reverse=True)[:limit]
        now = self.orders.exchange.clock.now_ms()
        if not page:
            return ok_body(b'{"list":[],"cursor":null}', now)
        items = b",".join(plan_bytes(store, p, c) for _, p, c in page)
        return ok_body(b'{"list":[' + items + b'],"cursor":%d}' % page[-1][0], now)

    def strategy_unfilled(self, account: Account, q: Mapping[str, str]) -> bytes:
        categories = self.orders.categories(q, required=True)
        groups = _groups(q)
        store = self.orders.exchange.stores[account.name]
        book, hits = store.plans, []
        for category in categories:
            for group in groups:
                hits += [(book.ids[p], p, category) for p in book.query(
                    live=True, product_type=category, group=group, symbol_idx=None, lower=0, upper=2**42,
                    limit=10**9)]  # every live plan (2**42 ms: year 2109)
        items = b",".join(plan_bytes(store, p, c) for _, p, c in sorted(hits, reverse=True))
        return ok_body(b"[" + items + b"]", self.orders.exchange.clock.now_ms())

    def fills(self, account: Account, q: Mapping[str, str]) -> bytes:
        categories = self.orders.categories(q, required=False)
        limit, cursor, order_id = self._limit(q), _number(q, "cursor"), _number(q, "orderId")
        lower, upper = self.orders.window(q, pending=False)
        store = self.orders.exchange.stores[account.name]
        book, hits = store.fills, []
        for category in categories:
            hits += [(book.tids[p], p, category) for p in book.query(
                product_type=category, symbol_idx=None, lower=lower, upper=upper, id_lt=cursor, limit=limit,
                order_id=order_id)]
        page = sorted(hits, reverse=True)[:limit]
        now = self.orders.exchange.clock.now_ms()
        if not page:
            return ok_body(self.orders.empty(), now)
        items = b",".join(fill_bytes(store, p, c) for _, p, c in page)
        return ok_body(b'{"list":[' + items + b'],"cursor":"%d"}' % page[-1][0], now)


def v3_activity_truth(store, dataset: str, cut_ms: int | None) -> list[bytes]:
    """Plan orders or fills in v3 shape, as the v2 truth of that dataset lists them (standard types only)."""
    if dataset not in ("plan_orders", "fills"):
        raise ValueError(f"no v3 shape for dataset {dataset!r}")
    book = store.plans if dataset == "plan_orders" else store.fills
    out = []
    for p in book.truth_positions(cut_ms):
        category = book.symbols[book.sym_idx[p]].product_type
        if category in STANDARD_TYPES:
            out.append((plan_bytes if dataset == "plan_orders" else fill_bytes)(store, p, category))
    return out
