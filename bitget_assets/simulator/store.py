"""The order book of one account: indexes for the history and pending queries, mutation, ground truth.

Orders live in columns sorted by orderId ("positions"); every index is an ascending list of positions, so
newest-first paging is a bisect plus a backwards scan. While cTime never decreases along the positions
(always true for generated data) time windows are bisected too; otherwise the scan checks times one by one.
"""

from __future__ import annotations

import json
import random
from array import array
from bisect import bisect_left, bisect_right, insort
from collections import defaultdict

from .accounts import Account
from .orders import FINISHED_STATUSES, OPEN_STATUSES, ORDER_KEYS, OrderMaker, fill_on_close, render_order
from .symbols import SymbolInfo, symbol_info


class OrderStore:
    def __init__(self, account: Account):
        a = self.account = account
        self.oids, self.ctimes, self.sym_idx = a.oids, a.ctimes, a.sym_idx
        self.is_open, self.blobs = a.is_open, a.blobs
        self.symbol_index = {s.name: i for i, s in enumerate(a.symbols)}
        c = self.ctimes
        self.monotone = all(c[i] <= c[i + 1] for i in range(len(c) - 1))
        self.hist_pt: dict[str, array] = defaultdict(lambda: array("i"))
        self.hist_sym: dict[int, array] = defaultdict(lambda: array("i"))
        self.pend_pt: dict[str, list[int]] = defaultdict(list)
        self.pend_sym: dict[int, list[int]] = defaultdict(list)
        for p in range(len(self.oids)):
            self._index(p)
        self._maker: OrderMaker | None = None

    # -- indexes ---------------------------------------------------------------------------------------------
    def _index(self, p: int) -> None:
        si = self.sym_idx[p]
        pt = self.account.symbols[si].product_type
        if self.is_open[p]:
            self.pend_pt[pt].append(p)
            self.pend_sym[si].append(p)
        else:
            self.hist_pt[pt].append(p)
            self.hist_sym[si].append(p)

    def query(self, *, pending: bool, product_type: str, symbol: str | None, lower: int, upper: int,
              id_lt: int | None = None, limit: int = 100, order_id: int | None = None,
              client_oid: str | None = None, source: str | None = None, status: str | None = None) -> list[int]:
        """Positions of matching orders, newest (highest orderId) first, at most `limit`."""
        if symbol:
            si = self.symbol_index.get(symbol)
            if si is None or self.account.symbols[si].product_type != product_type:
                return []
            idx = (self.pend_sym if pending else self.hist_sym).get(si)
        else:
            idx = (self.pend_pt if pending else self.hist_pt).get(product_type)
        if not idx:
            return []
        oids, ctimes, blobs = self.oids, self.ctimes, self.blobs
        lo, hi = 0, len(idx)
        if id_lt is not None:
            hi = bisect_left(idx, id_lt, key=oids.__getitem__)
        if order_id is not None:
            j = bisect_left(idx, order_id, key=oids.__getitem__, hi=hi)
            lo, hi = (j, j + 1) if j < hi and oids[idx[j]] == order_id else (0, 0)
        elif self.monotone:
            hi = bisect_right(idx, upper, key=ctimes.__getitem__, hi=hi)
            lo = bisect_left(idx, lower, key=ctimes.__getitem__, hi=hi)
        needles = []
        if client_oid is not None:
            needles.append(b'"clientOid":' + json.dumps(client_oid).encode() + b",")
        if source is not None:
            needles.append(b'"orderSource":' + json.dumps(source).encode() + b",")
        if status is not None:
            needles.append(b'"status":' + json.dumps(status).encode() + b",")
        out: list[int] = []
        for i in range(hi - 1, lo - 1, -1):
            p = idx[i]
            if not lower <= ctimes[p] <= upper:
                continue
            if needles and not all(n in blobs[p] for n in needles):
                continue
            out.append(p)
            if len(out) >= limit:
                break
        return out

    def open_positions(self) -> list[int]:
        return sorted(p for ps in self.pend_pt.values() for p in ps)

    def truth_positions(self, now_ms: int, retention_ms: int) -> list[int]:
        """What the API can return now: finished orders with cTime >= now - retention, plus open orders,
        sorted by (cTime, orderId)."""
        cut = now_ms - retention_ms
        if self.monotone:
            start = bisect_left(self.ctimes, cut)
            return [p for p in self.open_positions() if p < start] + list(range(start, len(self.oids)))
        ctimes, is_open = self.ctimes, self.is_open
        ps = [p for p in range(len(self.oids)) if is_open[p] or ctimes[p] >= cut]
        ps.sort(key=lambda p: (ctimes[p], self.oids[p]))
        return ps

    def truth(self, now_ms: int, retention_ms: int) -> list[dict]:
        return [json.loads(self.blobs[p]) for p in self.truth_positions(now_ms, retention_ms)]

    # -- mutation --------------------------------------------------------------------------------------------
    @property
    def maker(self) -> OrderMaker:
        if self._maker is None:
            spec = self.account.spec
            self._maker = OrderMaker(random.Random(f"{spec.seed}:{spec.name}:admin"))
        return self._maker

    def _append(self, oid: int, ctime: int, si: int, is_open: bool, blob: bytes) -> None:
        if self.oids and oid <= self.oids[-1]:
            raise ValueError(f"orderId {oid} must exceed every existing id ({self.oids[-1]})")
        if self.ctimes and ctime < self.ctimes[-1]:
            self.monotone = False
        self.oids.append(oid)
        self.ctimes.append(ctime)
        self.sym_idx.append(si)
        self.is_open.append(1 if is_open else 0)
        self.blobs.append(blob)
        self._index(len(self.oids) - 1)

    def _next_oid(self, ctime: int) -> int:
        return max(ctime * 1_000_000, (self.oids[-1] + 1) if self.oids else 0)

    def symbol(self, name: str, product_type: str | None = None) -> int:
        """Index of a traded symbol, making a contract symbol (or a new one, given its type) traded."""
        if name in self.symbol_index:
            return self.symbol_index[name]
        known = {s.name: s for infos in self.account.contracts.values() for s in infos}
        info: SymbolInfo | None = known.get(name)
        if info is None:
            if product_type is None:
                raise ValueError(f"unknown symbol {name!r}: give its productType")
            info = symbol_info(product_type, name)
            self.account.contracts.setdefault(product_type, []).append(info)
        self.account.symbols.append(info)
        self.symbol_index[name] = len(self.account.symbols) - 1
        return self.symbol_index[name]

    def _random_symbol(self, rng: random.Random) -> int:
        n = len(self.account.symbols)
        return rng.choices(range(n), weights=[1 / (i + 1) for i in range(n)])[0]

    def add_orders(self, now_ms: int, orders: list[dict] | None = None, generate: int = 0,
                   symbols: list[str] | None = None, open_count: int = 0) -> list[bytes]:
        """Add orders; ids exceed every existing id. Partial dicts are completed with generated values
        (extra keys: `productType` for a new symbol, `open` to force open/finished). `generate` finished and
        `open_count` open orders are made with cTime in the last minute (not before the newest order)."""
        maker, rng, created = self.maker, self.maker.rng, []
        for d in orders or []:
            si = self.symbol(d["symbol"], d.get("productType")) if d.get("symbol") else self._random_symbol(rng)
            status = d.get("status", "filled")
            if status not in OPEN_STATUSES + FINISHED_STATUSES:
                raise ValueError(f"unknown status {status!r}")
            is_open = bool(d.get("open", status in OPEN_STATUSES))
            ctime = int(d.get("cTime", now_ms))
            oid = int(d["orderId"]) if "orderId" in d else self._next_oid(ctime)
            default_u = ctime if is_open else maker.finished_utime(False, status, ctime, max(now_ms, ctime))
            utime = int(d.get("uTime", default_u))
            info = self.account.symbols[si]
            order = dict(zip(ORDER_KEYS, maker.values(oid, info, ctime, utime, status), strict=True))
            order.update({k: str(v) for k, v in d.items() if k in ORDER_KEYS})
            order.update(orderId=str(oid), symbol=info.name, cTime=str(ctime), uTime=str(utime))
            blob = render_order(order)
            self._append(oid, ctime, si, is_open, blob)
            created.append(blob)
        chosen = [self.symbol(s) for s in symbols] if symbols else None
        total = generate + open_count
        lo = min(max(now_ms - 60_000, self.ctimes[-1] if self.ctimes else 0), now_ms)
        times = sorted(lo + int(rng.random() * (now_ms - lo + 1)) for _ in range(total))
        open_at = set(rng.sample(range(total), open_count))
        for k, ctime in enumerate(times):
            si = rng.choice(chosen) if chosen else self._random_symbol(rng)
            oid = self._next_oid(ctime)
            info = self.account.symbols[si]
            is_open = k in open_at
            blob = (maker.open if is_open else maker.finished)(oid, info, ctime, max(now_ms, ctime))
            self._append(oid, ctime, si, is_open, blob)
            created.append(blob)
        return created

    def close_open(self, now_ms: int, order_ids: list | None = None, status: str = "filled") -> list[bytes]:
        """End open orders (all, or those in `order_ids`): they leave pending and appear in history."""
        if status not in FINISHED_STATUSES:
            raise ValueError(f"status must be one of {FINISHED_STATUSES}")
        positions = self.open_positions()
        if order_ids is not None:
            wanted = {int(x) for x in order_ids}
            positions = [p for p in positions if self.oids[p] in wanted]
        closed = []
        for p in positions:
            si = self.sym_idx[p]
            pt = self.account.symbols[si].product_type
            blob = render_order(fill_on_close(json.loads(self.blobs[p]), status, now_ms))
            self.blobs[p] = blob
            self.is_open[p] = 0
            self.pend_pt[pt].remove(p)
            self.pend_sym[si].remove(p)
            insort(self.hist_pt[pt], p)
            insort(self.hist_sym[si], p)
            closed.append(blob)
        return closed


def truth_blobs_for(spec, retention_days: float = 90) -> list[bytes]:
    """Ground truth of a freshly generated account at its `now_ms`, as the API's bytes per order."""
    from .accounts import DAY_MS, generate_account

    account = generate_account(spec)
    store = OrderStore(account)
    return [store.blobs[p] for p in store.truth_positions(account.now_ms, int(retention_days * DAY_MS))]


def truth_for(spec, retention_days: float = 90) -> list[dict]:
    """`truth_blobs_for` parsed: what a server started on `spec` returns, sorted by (cTime, orderId)."""
    return [json.loads(b) for b in truth_blobs_for(spec, retention_days)]
