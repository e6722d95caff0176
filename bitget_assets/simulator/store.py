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
from decimal import Decimal

from .accounts import Account
from .fills import FillBook, fills_for_order, generate_fills
from .orders import FINISHED_STATUSES, OPEN_STATUSES, ORDER_KEYS, OrderMaker, fill_on_close, render_order
from .plans import HISTORY_STATUSES, KIND_GROUP, KINDS, PLAN_KEYS, SPAWN_SOURCES, PlanBook, generate_plans, make_plan
from .symbols import SymbolInfo, symbol_info

DATASETS = ("orders", "plan_orders", "fills")


class OrderStore:
    def __init__(self, account: Account, activity: bool = True):
        """`activity`: make the plan orders and fills now (a server must not stall its loop on them later);
        False = on first use (tools that only read orders)."""
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
        self._plans: PlanBook | None = None
        self._fills: FillBook | None = None
        if activity:
            self._build_activity()

    # -- plan orders and fills -------------------------------------------------------------------------------
    def _build_activity(self) -> None:
        # Before any mutation: both derive from the orders exactly as generated.
        if self._plans is None:
            self._plans, self._fills = PlanBook(self.account.symbols), FillBook(self.account.symbols)
            generate_plans(self.account, self._plans)
            generate_fills(self.account, self._fills)

    @property
    def plans(self) -> PlanBook:
        self._build_activity()
        return self._plans

    @property
    def fills(self) -> FillBook:
        self._build_activity()
        return self._fills

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

    def truth_blobs(self, now_ms: int, retention_ms: int, dataset: str = "orders",
                    include_expired: bool = False) -> list[bytes]:
        """Ground truth of one dataset as the API's bytes, sorted by (cTime, orderId | tradeId): what the API
        can return at now_ms, or with `include_expired` everything ever created (open orders/plans included)."""
        if dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}")
        cut = None if include_expired else now_ms - retention_ms
        if dataset == "orders":
            if cut is None:
                ctimes, oids = self.ctimes, self.oids
                ps = sorted(range(len(oids)), key=lambda p: (ctimes[p], oids[p]))
            else:
                ps = self.truth_positions(now_ms, retention_ms)
            return [self.blobs[p] for p in ps]
        book = self.plans if dataset == "plan_orders" else self.fills
        return [book.blobs[p] for p in book.truth_positions(cut)]

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
        self._build_activity()
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
            self._fill_new_order(len(self.oids) - 1)
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
            self._fill_new_order(len(self.oids) - 1)
            created.append(blob)
        return created

    def _fill_new_order(self, p: int) -> list[bytes]:
        if b'"baseVolume":"0"' in self.blobs[p]:
            return []
        order, si = json.loads(self.blobs[p]), self.sym_idx[p]
        return self.fills.add_order_fills(si, self.oids[p], fills_for_order(self.maker.rng, order,
                                                                              self.account.symbols[si]))

    def close_open(self, now_ms: int, order_ids: list | None = None, status: str = "filled") -> list[bytes]:
        """End open orders (all, or those in `order_ids`): they leave pending and appear in history."""
        if status not in FINISHED_STATUSES:
            raise ValueError(f"status must be one of {FINISHED_STATUSES}")
        self._build_activity()
        positions = self.open_positions()
        if order_ids is not None:
            wanted = {int(x) for x in order_ids}
            positions = [p for p in positions if self.oids[p] in wanted]
        closed = []
        for p in positions:
            old = json.loads(self.blobs[p])
            new = fill_on_close(old, status, now_ms)
            self.blobs[p] = blob = render_order(new)
            self._to_history(p)
            self._fill_volume(p, new, _dec_sub(new["baseVolume"], old["baseVolume"]), int(new["uTime"]))
            closed.append(blob)
        return closed

    def _to_history(self, p: int) -> None:
        si = self.sym_idx[p]
        pt = self.account.symbols[si].product_type
        self.is_open[p] = 0
        self.pend_pt[pt].remove(p)
        self.pend_sym[si].remove(p)
        insort(self.hist_pt[pt], p)
        insort(self.hist_sym[si], p)

    def _fill_volume(self, p: int, order: dict, volume: str, ctime: int, count: int | None = None) -> list[bytes]:
        """Fills of `volume` more of order p at `ctime` (the order already counts that volume)."""
        if Decimal(volume) <= 0:
            return []
        si = self.sym_idx[p]
        made = fills_for_order(self.maker.rng, order, self.account.symbols[si], count=count, base_volume=volume,
                               ctime=ctime)
        return self.fills.add_order_fills(si, self.oids[p], made)

    def order_bounds(self, order_id: int) -> tuple[int, int, int] | None:
        """(symbol index, cTime, uTime) of an order, None if unknown: every fill of it lies in that window."""
        try:
            p = self.position_of(order_id)
        except ValueError:
            return None
        return self.sym_idx[p], self.ctimes[p], int(json.loads(self.blobs[p])["uTime"] or self.ctimes[p])

    def position_of(self, order_id: int) -> int:
        j = bisect_left(self.oids, order_id)
        if j == len(self.oids) or self.oids[j] != order_id:
            raise ValueError(f"no order {order_id}")
        return j

    def add_fills(self, now_ms: int, order_id, base_volume: str | None = None, count: int = 1,
                  ctime: int | None = None) -> list[bytes]:
        """Late fills: `base_volume` more of an order (default: the rest of its size) in `count` fills at
        `ctime` (default now; not before the order's cTime). The order's baseVolume/priceAvg/quoteVolume/fee/
        uTime follow; an open order that is now complete is closed as filled."""
        self._build_activity()
        p = self.position_of(int(order_id))
        order = json.loads(self.blobs[p])
        room = Decimal(order["size"] or "0") - Decimal(order["baseVolume"] or "0")
        volume = room if base_volume is None else Decimal(str(base_volume))
        if volume <= 0 or volume > room:
            raise ValueError(f"order {order_id}: volume must be in (0, {room}] (size minus baseVolume)")
        t = now_ms if ctime is None else int(ctime)
        if t < int(order["cTime"]):
            raise ValueError("a fill cannot precede its order's cTime")
        filled = Decimal(order["baseVolume"] or "0") + volume
        price = order["priceAvg"] or (order["price"] if order["price"] not in ("", "0") else "")
        if not price:
            info = self.account.symbols[self.sym_idx[p]]
            price = format(self.maker.market_price(info, t), f".{info.price_place}f")
        quote = float(filled) * float(price)
        order.update(baseVolume=format(filled, "f"), priceAvg=price, quoteVolume=format(quote, ".4f"),
                     fee="-" + format(quote * 0.0002, ".8f"), uTime=str(max(int(order["uTime"] or 0), t)))
        complete = filled >= Decimal(order["size"])
        if self.is_open[p]:
            order["status"] = "filled" if complete else "partially_filled"
        elif complete and order["status"] == "partially_filled":
            order["status"] = "filled"
        self.blobs[p] = render_order(order)
        if self.is_open[p] and complete:
            self._to_history(p)
        return self._fill_volume(p, order, format(volume, "f"), t, count)

    # -- plan mutations --------------------------------------------------------------------------------------
    def _check_free_id(self, plan_id: int) -> None:
        j = bisect_left(self.oids, plan_id)
        if j < len(self.oids) and self.oids[j] == plan_id:
            raise ValueError(f"plan orderId {plan_id} collides with an order")

    def add_plans(self, now_ms: int, plans: list[dict] | None = None, generate: int = 0,
                  symbols: list[str] | None = None) -> list[bytes]:
        """New plans at now_ms (partial dicts completed; `planType` a kind such as pos_profit, `planStatus`
        live (default), cancelled or fail_execute) plus `generate` random live plans."""
        self._build_activity()
        maker, rng, book, made = self.maker, self.maker.rng, self.plans, []
        chosen = [self.symbol(x) for x in symbols] if symbols else None
        for d in list(plans or []) + [{} for _ in range(generate)]:
            kind = d.get("planType") or rng.choice(KINDS)
            status = d.get("planStatus", "live")
            if kind not in KIND_GROUP:
                raise ValueError(f"unknown planType {kind!r}: one of {KINDS}")
            if status not in ("live", "cancelled", "fail_execute"):
                raise ValueError("planStatus must be live, cancelled or fail_execute (executed: trigger a plan)")
            if d.get("symbol"):
                si = self.symbol(d["symbol"], d.get("productType"))
            else:
                si = rng.choice(chosen) if chosen else self._random_symbol(rng)
            info = self.account.symbols[si]
            ctime = int(d.get("cTime", now_ms))
            base = dict(zip(ORDER_KEYS, maker.values(0, info, ctime, ctime, "live"), strict=True))
            pid = book.next_id(ctime)
            self._check_free_id(pid)
            utime = int(d.get("uTime", ctime if status == "live" else now_ms))
            plan = make_plan(rng, kind, status, pid, base, info, ctime, max(utime, ctime))
            plan.update({k: str(v) for k, v in d.items() if k in PLAN_KEYS and k not in (
                "orderId", "planType", "planStatus", "symbol", "cTime", "uTime")})
            made.append(book.blobs[book.add(plan, si)])
        return made

    def _live_plan(self, plan_id) -> tuple[int, dict]:
        p = self.plans.position(int(plan_id))
        plan = json.loads(self.plans.blobs[p])
        if plan["planStatus"] != "live":
            raise ValueError(f"plan {plan_id} is {plan['planStatus']}, not live")
        return p, plan

    def trigger_plan(self, now_ms: int, plan_id) -> tuple[bytes, bytes, list[bytes]]:
        """A live plan fires: it becomes executed and spawns a filled order (orderSource per SPAWN_SOURCES,
        executeOrderId linking them) with its fills. Returns (plan, order, fills) bytes."""
        p, plan = self._live_plan(plan_id)
        kind = plan["planType"]
        source = SPAWN_SOURCES[kind][0]
        if kind == "normal_plan" and plan["orderType"] == "market":
            source = "market"
        d = {k: plan[k] for k in ("symbol", "side", "posSide", "tradeSide", "posMode", "orderType", "marginMode",
                                  "enterPointSource")}
        d.update(orderSource=source, status="filled", cTime=max(now_ms, int(plan["cTime"])))
        if plan["executePrice"] not in ("", "0"):
            d["price"] = plan["executePrice"]
        elif plan["orderType"] == "market":
            d["price"] = "0"
        if plan["size"] not in ("", "0"):
            d.update(size=plan["size"], baseVolume=plan["size"])
        d["uTime"] = d["cTime"]
        n_fills = len(self.fills)
        order_blob = self.add_orders(now_ms, [d])[0]
        order = json.loads(order_blob)
        if order["baseVolume"] != order["size"] or order["priceAvg"] == "":
            raise RuntimeError("a spawned order must be filled")  # simulator bug, not bad input
        q = order["priceAvg"]
        fixed = dict(order, quoteVolume=format(float(order["size"]) * float(q), ".4f"))
        if fixed != order:  # size came from the plan: volumes follow it
            self.blobs[-1] = order_blob = render_order(fixed)
        plan.update(planStatus="executed", executeOrderId=order["orderId"], priceAvg=order["priceAvg"],
                    baseVolume=order["baseVolume"], uTime=str(max(now_ms, int(plan["cTime"]))))
        plan_blob = self.plans.replace(p, _with_history_keys(plan))
        fills = self.fills
        return plan_blob, order_blob, [fills.blobs[i] for i in range(n_fills, len(fills))]

    def cancel_plans(self, now_ms: int, plan_ids: list | None = None, status: str = "cancelled") -> list[bytes]:
        """End live plans (all, or the given ids) without an order: `cancelled` or `fail_execute`."""
        if status not in HISTORY_STATUSES or status == "executed":
            raise ValueError("status must be cancelled or fail_execute")
        book = self.plans
        if plan_ids is None:
            targets = [p for p in book.all if book.live[p]]
        else:
            targets = [self._live_plan(x)[0] for x in plan_ids]
        out = []
        for p in targets:
            plan = json.loads(book.blobs[p])
            plan.update(planStatus=status, uTime=str(max(now_ms, int(plan["cTime"]))))
            out.append(book.replace(p, _with_history_keys(plan)))
        return out


def _with_history_keys(plan: dict) -> dict:
    plan.setdefault("executeOrderId", "")
    plan.setdefault("priceAvg", "")
    plan.setdefault("baseVolume", "0")
    return plan


def _dec_sub(a: str, b: str) -> str:
    return format(Decimal(a or "0") - Decimal(b or "0"), "f")


def truth_blobs_for(spec, retention_days: float = 90, dataset: str = "orders",
                    include_expired: bool = False) -> list[bytes]:
    """Ground truth of a freshly generated account at its `now_ms`, as the API's bytes per row of `dataset`
    (orders, plan_orders, fills); `include_expired` = every row ever created."""
    from .accounts import DAY_MS, generate_account

    account = generate_account(spec)
    store = OrderStore(account, activity=dataset != "orders")
    return store.truth_blobs(account.now_ms, int(retention_days * DAY_MS), dataset, include_expired)


def truth_for(spec, retention_days: float = 90) -> list[dict]:
    """`truth_blobs_for` parsed: what a server started on `spec` returns, sorted by (cTime, orderId)."""
    return [json.loads(b) for b in truth_blobs_for(spec, retention_days)]
