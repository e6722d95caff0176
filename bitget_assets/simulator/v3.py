"""Unified-account (v3) order endpoints over the same order stores as v2 (docs/api-notes.md, unified accounts).

`GET /api/v3/trade/history-orders` (category required) and `/api/v3/trade/unfilled-orders` (category optional),
20 requests/s per UID each. Newest first; `data = {"list": [...], "cursor": "<smallest orderId returned>"}`,
sent back as `cursor` for the next (older) page; an empty page ends the walk (`list` [] or null, `cursor` ""
or null, seeded like v2's empty pages). Choices where the sources are silent (guesses):
- errors: missing `category` -> 40017 "Parameter verification failed category"; unknown category or symbol ->
  40034 "Parameter X does not exist"; non-numeric times/cursor or `limit` outside 1..100 -> 40017;
  start > end -> 40707; startTime older than the 90-day retention (5 minutes grace) -> 40704; a span over
  30 days -> 00001 "startTime and endTime interval cannot be greater than 30 days".
- default window (history): no times = the last 30 days; only endTime = the 30 days before it; missing
  endTime = now. Unfilled orders: no window unless times are given (like v2 pending).
- SPOT/MARGIN categories are valid and empty (the simulated accounts trade futures only); demo product types
  (S*-FUTURES) are not v3 categories.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Mapping

from .accounts import DAY_MS, Account
from .api import ApiError, Exchange, _int_param, check_window, ok_body
from .symbols import STANDARD_TYPES
from .v3shape import v3_order_bytes

CATEGORIES = ("SPOT", "MARGIN") + STANDARD_TYPES
_EMPTY = (b'{"list":[],"cursor":""}', b'{"list":[],"cursor":null}', b'{"list":null,"cursor":""}',
          b'{"list":null,"cursor":null}')


def _number(q: Mapping[str, str], name: str) -> int | None:
    return _int_param(q, name, "40017", "Parameter verification failed {}")


class V3Orders:
    def __init__(self, exchange: Exchange):
        self.exchange = exchange
        self._empty_rng = random.Random(f"{exchange.config.seed}:v3empty")

    def categories(self, q: Mapping[str, str], required: bool) -> list[str]:
        category = q.get("category") or None
        if category is None:
            if required:
                raise ApiError("40017", "Parameter verification failed category")
            return list(STANDARD_TYPES)
        if category not in CATEGORIES:
            raise ApiError("40034", "Parameter category does not exist")
        return [category] if category in STANDARD_TYPES else []

    def _symbol(self, q: Mapping[str, str], categories: list[str]) -> tuple[str | None, list[str]]:
        symbol = q.get("symbol") or None
        if symbol is None:
            return None, categories
        holding = [c for c in categories if symbol in self.exchange.contracts.get(c, {})]
        if not holding:
            raise ApiError("40034", "Parameter symbol does not exist")
        return symbol, holding

    def window(self, q: Mapping[str, str], pending: bool, span_days: float | None = None) -> tuple[int, int]:
        start, end = _number(q, "startTime"), _number(q, "endTime")
        cfg = self.exchange.config
        now = self.exchange.clock.now_ms()
        span_days = cfg.v3_max_span_days if span_days is None else span_days
        span, cut = int(span_days * DAY_MS), now - int(cfg.retention_days * DAY_MS)
        too_wide = f"startTime and endTime interval cannot be greater than {span_days:g} days"
        end_or_now = check_window(start, end, now, span, cut, ("00001", too_wide))
        if pending:
            return start or 0, 2**62 if end is None else end
        return max(start if start is not None else end_or_now - span, cut), end_or_now

    def orders_page(self, account: Account, q: Mapping[str, str], pending: bool) -> bytes:
        """One page of `history-orders` (pending=False) or `unfilled-orders` (pending=True)."""
        categories = self.categories(q, required=not pending)
        symbol, categories = self._symbol(q, categories)
        raw_limit = q.get("limit")
        limit = 100 if raw_limit in (None, "") else _number(q, "limit")
        if limit is not None and not 1 <= limit <= 100:
            raise ApiError("40017", "Parameter verification failed limit")
        cursor = _number(q, "cursor")
        lower, upper = self.window(q, pending)
        store = self.exchange.stores[account.name]
        hits = []
        for category in categories:
            positions = store.query(pending=pending, product_type=category, symbol=symbol, lower=lower,
                                    upper=upper, id_lt=cursor, limit=limit)
            hits += [(store.oids[p], p, category) for p in positions]
        page = heapq.nlargest(limit, hits)
        now = self.exchange.clock.now_ms()
        if not page:
            return ok_body(self.empty(), now)
        items = b",".join(v3_order_bytes(store.blobs[p], category) for _, p, category in page)
        return ok_body(b'{"list":[' + items + b'],"cursor":"%d"}' % page[-1][0], now)

    def empty(self) -> bytes:
        style = self.exchange.config.empty_style
        if style == "list":
            return _EMPTY[0]
        if style == "null":
            return _EMPTY[3]
        return _EMPTY[self._empty_rng.randrange(4)]


def v3_truth(store, positions) -> list[bytes]:
    """The orders at `positions` in v3 shape (demo product types have no v3 category and are left out)."""
    out = []
    for p in positions:
        category = store.account.symbols[store.sym_idx[p]].product_type
        if category in STANDARD_TYPES:
            out.append(v3_order_bytes(store.blobs[p], category))
    return out
