"""Plan orders (trigger, trailing, TP/SL) of an account: generation from the orders, and the plan book.

Executed plans point at the order they spawned (`executeOrderId`), whose `orderSource` says what spawned it
(SPAWN_SOURCES). Plan orderIds are `cTime * 10**6 + 500_000 + rank`: the orders' time-ordered 19-digit space,
but a rank range orders never reach, so plan and order ids never collide. A plan's time is its cTime.
"""

from __future__ import annotations

import json
import math
import random
from array import array
from bisect import bisect_left, bisect_right, insort
from collections import defaultdict

from .symbols import SymbolInfo

GROUPS = ("normal_plan", "track_plan", "profit_loss")  # the request's planType values
KIND_GROUP = {"normal_plan": "normal_plan", "track_plan": "track_plan", "profit_plan": "profit_loss",
              "loss_plan": "profit_loss", "moving_plan": "profit_loss", "pos_profit": "profit_loss",
              "pos_loss": "profit_loss"}
KINDS = tuple(KIND_GROUP)
HISTORY_STATUSES = ("executed", "cancelled", "fail_execute")
STATUS_ALIASES = {"fail_trigger": "fail_execute"}  # older docs' spelling, accepted as a filter
# orderSource of the order a plan of that kind spawns (moving_plan: a guess, see docs/api-notes.md).
SPAWN_SOURCES = {"normal_plan": ("normal", "market"), "track_plan": ("market",), "profit_plan": ("profit_market",),
                 "loss_plan": ("loss_market",), "moving_plan": ("loss_market", "profit_market"),
                 "pos_profit": ("pos_profit_market",), "pos_loss": ("pos_loss_market",)}
KIND_WEIGHTS = (("normal_plan", 30), ("track_plan", 14), ("profit_plan", 20), ("loss_plan", 20),
                ("moving_plan", 6), ("pos_profit", 5), ("pos_loss", 5))
STATUS_WEIGHTS = (("executed", 35), ("cancelled", 55), ("fail_execute", 10))
PLAN_KEYS = ("planType", "symbol", "size", "orderId", "executeOrderId", "clientOid", "planStatus", "price",
             "executePrice", "priceAvg", "baseVolume", "callbackRatio", "triggerPrice", "triggerType", "side",
             "posSide", "marginCoin", "marginMode", "enterPointSource", "tradeSide", "posMode", "orderType",
             "stopSurplusExecutePrice", "stopSurplusTriggerPrice", "stopSurplusTriggerType",
             "stopLossExecutePrice", "stopLossTriggerPrice", "stopLossTriggerType", "cTime", "uTime")
HISTORY_ONLY = ("executeOrderId", "priceAvg", "baseVolume")
PLAN_RANK_BASE = 500_000
DAY_MS, HOUR_MS = 86_400_000, 3_600_000
_CALLBACKS = ("1", "1.5", "2", "3", "5", "10")


def render_plan(plan: dict) -> bytes:
    """Canonical bytes: PLAN_KEYS order; live plans lack the history-only keys, trailing plans lack `price`."""
    keys = [k for k in PLAN_KEYS if k in plan]
    return json.dumps({k: plan[k] for k in keys}, separators=(",", ":"), ensure_ascii=False).encode()


def _pick(rng: random.Random, table) -> str:
    total = sum(w for _, w in table)
    x = rng.random() * total
    for v, w in table:
        x -= w
        if x < 0:
            return v
    return table[-1][0]


def make_plan(rng: random.Random, kind: str, status: str, plan_id: int, order: dict, info: SymbolInfo,
              ctime: int, utime: int, executed: dict | None = None) -> dict:
    """A plan of `kind` on `order`'s symbol and position; `executed` = the order it spawned (history)."""
    price_fmt = f".{info.price_place}f"
    ref = float(order["priceAvg"] or order["price"] or 0) or info.price
    tpsl = KIND_GROUP[kind] == "profit_loss"
    hedge = order["posMode"] == "hedge_mode"
    trade_side = ("close" if hedge else order["tradeSide"]) if tpsl else order["tradeSide"]
    if trade_side.startswith(("burst_", "offset_", "delivery_", "reduce_")):
        trade_side = "close"
    order_type = order["orderType"] if kind == "normal_plan" else "market"
    exec_price = order["price"] if order_type == "limit" and order["price"] not in ("", "0") else "0"
    enter = order["enterPointSource"] if order["enterPointSource"] != "SYS" else "API"
    up = (order["side"] == "buy") != tpsl
    trigger = format(ref * (1 + (0.003 if up else -0.003) * (0.5 + rng.random())), price_fmt)
    plan = {
        "planType": kind, "symbol": info.name,
        "size": "0" if kind in ("pos_profit", "pos_loss") else order["size"],
        "orderId": str(plan_id), "executeOrderId": "",
        "clientOid": f"cli{int(rng.random() * 2**48):012x}" if enter in ("API", "api") else str(plan_id - 1),
        "planStatus": status, "price": exec_price, "executePrice": exec_price, "priceAvg": "", "baseVolume": "0",
        "callbackRatio": rng.choice(_CALLBACKS) if kind in ("track_plan", "moving_plan") else "",
        "triggerPrice": trigger,
        "triggerType": "mark_price" if rng.random() < 0.4 else "fill_price",
        "side": order["side"], "posSide": order["posSide"], "marginCoin": info.margin_coin,
        "marginMode": order["marginMode"], "enterPointSource": enter, "tradeSide": trade_side,
        "posMode": order["posMode"], "orderType": order_type,
        "stopSurplusExecutePrice": "", "stopSurplusTriggerPrice": "", "stopSurplusTriggerType": "",
        "stopLossExecutePrice": "", "stopLossTriggerPrice": "", "stopLossTriggerType": "",
        "cTime": str(ctime), "uTime": str(utime),
    }
    if kind == "track_plan":
        del plan["price"]  # trailing plans carry no price (API notes)
    if kind == "normal_plan" and rng.random() < 0.2:  # preset TP/SL attached to the trigger order
        long = order["side"] == "buy"
        plan.update(stopSurplusTriggerPrice=format(ref * (1.05 if long else 0.95), price_fmt),
                    stopSurplusExecutePrice="0", stopSurplusTriggerType="fill_price",
                    stopLossTriggerPrice=format(ref * (0.97 if long else 1.03), price_fmt),
                    stopLossExecutePrice="0", stopLossTriggerType="mark_price")
    if status == "live":
        if rng.random() < 0.15:
            plan["triggerType"] = "index_price"
        for k in HISTORY_ONLY:
            del plan[k]
    elif executed is not None:
        plan.update(executeOrderId=executed["orderId"], priceAvg=executed["priceAvg"],
                    baseVolume=executed["baseVolume"])
    return plan


class PlanBook:
    """Plans in columns (append order). Indexes: position lists sorted by plan orderId, keyed by
    (live, productType, group) and (live, symbol index, group); cTime windows are orderId ranges."""

    def __init__(self, symbols: list[SymbolInfo]):
        self.symbols = symbols
        self.ids, self.ctimes, self.sym_idx = array("q"), array("q"), array("q")
        self.groups: list[str] = []
        self.live = bytearray()
        self.blobs: list[bytes] = []
        self.all: list[int] = []
        self.by_pt: dict[tuple, list[int]] = defaultdict(list)
        self.by_sym: dict[tuple, list[int]] = defaultdict(list)

    def __len__(self) -> int:
        return len(self.blobs)

    def next_id(self, ctime: int) -> int:
        j = bisect_right(self.all, ctime * 1_000_000 + 999_999, key=self.ids.__getitem__)
        last = self.ids[self.all[j - 1]] if j else 0
        pid = max(ctime * 1_000_000 + PLAN_RANK_BASE, last + 1)
        if pid >= ctime * 1_000_000 + 700_000:
            raise ValueError(f"too many plans in millisecond {ctime}")
        return pid

    def _insert(self, idx: list[int], p: int) -> None:
        key = self.ids.__getitem__
        if idx and key(p) < key(idx[-1]):
            insort(idx, p, key=key)
        else:
            idx.append(p)

    def _indexes(self, p: int) -> tuple[list[int], list[int]]:
        si, g, live = self.sym_idx[p], self.groups[p], bool(self.live[p])
        return (self.by_pt[(live, self.symbols[si].product_type, g)], self.by_sym[(live, si, g)])

    def add(self, plan: dict, si: int) -> int:
        p = len(self.blobs)
        self.ids.append(int(plan["orderId"]))
        self.ctimes.append(int(plan["cTime"]))
        self.sym_idx.append(si)
        self.groups.append(KIND_GROUP[plan["planType"]])
        self.live.append(plan["planStatus"] == "live")
        self.blobs.append(render_plan(plan))
        self._insert(self.all, p)
        for idx in self._indexes(p):
            self._insert(idx, p)
        return p

    def position(self, plan_id: int) -> int:
        j = bisect_left(self.all, plan_id, key=self.ids.__getitem__)
        if j == len(self.all) or self.ids[self.all[j]] != plan_id:
            raise ValueError(f"no plan order {plan_id}")
        return self.all[j]

    def replace(self, p: int, plan: dict) -> bytes:
        """Store a changed plan (a live plan that ended moves from the pending to the history indexes)."""
        live = plan["planStatus"] == "live"
        if bool(self.live[p]) != live:
            for idx in self._indexes(p):
                idx.remove(p)
            self.live[p] = live
            for idx in self._indexes(p):
                self._insert(idx, p)
        self.blobs[p] = render_plan(plan)
        return self.blobs[p]

    def query(self, *, live: bool, product_type: str, group: str, symbol_idx: int | None, lower: int, upper: int,
              id_lt: int | None = None, limit: int = 100, order_id: int | None = None,
              needles: list[bytes] = ()) -> list[int]:
        """Positions of matching plans, newest (highest orderId) first, at most `limit`."""
        if symbol_idx is not None:
            idx = self.by_sym.get((live, symbol_idx, group), [])
        else:
            idx = self.by_pt.get((live, product_type, group), [])
        key = self.ids.__getitem__
        hi = bisect_left(idx, upper * 1_000_000 + 1_000_000, key=key)
        if id_lt is not None:
            hi = min(hi, bisect_left(idx, id_lt, key=key))
        lo = bisect_left(idx, lower * 1_000_000, key=key, hi=hi)
        if order_id is not None:
            j = bisect_left(idx, order_id, key=key, lo=lo, hi=hi)
            lo, hi = (j, j + 1) if j < hi and key(idx[j]) == order_id else (0, 0)
        out = []
        for i in range(hi - 1, lo - 1, -1):
            p = idx[i]
            if needles and not all(n in self.blobs[p] for n in needles):
                continue
            out.append(p)
            if len(out) >= limit:
                break
        return out

    def truth_positions(self, cut_ms: int | None) -> list[int]:
        """Live plans of any age plus plans with cTime >= cut_ms (None = all), sorted by (cTime, orderId)."""
        if cut_ms is None:
            return list(self.all)
        lo = bisect_left(self.all, cut_ms * 1_000_000, key=self.ids.__getitem__)
        return [p for p in self.all[:lo] if self.live[p]] + self.all[lo:]


def _source_pools(account) -> dict[str, list[int]]:
    """Positions of finished, (partly) filled, user-placed orders per orderSource."""
    pools: dict[str, list[int]] = defaultdict(list)
    tag = b'"orderSource":"'
    for p, b in enumerate(account.blobs):
        if account.is_open[p] or b'"baseVolume":"0"' in b or b'"enterPointSource":"SYS"' in b:
            continue
        i = b.find(tag) + len(tag)
        pools[b[i:b.index(b'"', i)].decode()].append(p)
    return pools


def _avoid_edge(t: int, cut: int, anchor: int) -> int:
    """Keep a plan out of the hour either side of the retention edge (a running clock must not change what is
    returnable during a test), on the same side as the order it belongs to."""
    if cut - HOUR_MS <= t < cut + HOUR_MS:
        return cut + HOUR_MS if anchor >= cut + HOUR_MS else min(anchor, cut - HOUR_MS - 1)
    return t


def generate_plans(account, book: PlanBook) -> None:
    """History plans (~plan_fraction per order, every kind x status when the orders allow) and a few live
    plans in the last 7 days; a pure function of the spec."""
    spec = account.spec
    if spec.plan_fraction <= 0 and not spec.open_plans:
        return
    rng = random.Random(f"{spec.seed}:{spec.name}:plans")
    now, n = account.now_ms, len(account.blobs)
    cut = now - spec.retention_days * DAY_MS
    finished = [p for p in range(n) if not account.is_open[p]] if n < 50_000 else None
    pools = _source_pools(account)
    kind_pools = {k: [p for src in srcs for p in pools.get(src, ())] for k, srcs in SPAWN_SOURCES.items()}
    used: set[int] = set()
    combos = [(k, s) for k in KINDS for s in HISTORY_STATUSES] if spec.plan_fraction > 0 else []
    n_hist = max(len(combos), round(spec.plan_fraction * n)) if spec.plan_fraction > 0 else 0
    drafts = []  # (cTime, seq, plan fields minus id, symbol index)

    def random_finished() -> int:
        if finished is not None:
            return finished[int(rng.random() * len(finished))] if finished else -1
        for _ in range(1000):
            p = int(rng.random() * n)
            if not account.is_open[p]:
                return p
        return -1

    for j in range(n_hist):
        kind, status = combos[j] if j < len(combos) else (_pick(rng, KIND_WEIGHTS), _pick(rng, STATUS_WEIGHTS))
        executed = None
        if status == "executed":
            pool = kind_pools[kind]
            for _ in range(20):
                if not pool:
                    break
                p = pool[int(rng.random() * len(pool))]
                if p not in used:
                    used.add(p)
                    executed = p
                    break
            if executed is None:
                status = "cancelled"
        p = executed if executed is not None else random_finished()
        if p < 0:
            continue
        order = json.loads(account.blobs[p])
        octime = int(order["cTime"])
        if executed is not None:  # created before the order it spawned, triggered when that order was made
            ctime = _avoid_edge(octime - 1000 - int(rng.expovariate(1 / DAY_MS)), cut, octime)
            utime = octime
        else:
            ctime = _avoid_edge(octime - int(rng.expovariate(1 / (6 * HOUR_MS))), cut, octime)
            utime = min(ctime + int(rng.expovariate(1 / (8 * HOUR_MS))), now - 1000)
        ctime = max(ctime, now - spec.history_days * DAY_MS - 2 * DAY_MS)
        utime = max(utime, ctime)
        drafts.append((ctime, len(drafts), kind, status, order, account.sym_idx[p], utime,
                       order if executed is not None else None))
    n_live = spec.open_plans if spec.open_plans is not None else min(30, max(7, math.ceil(0.002 * spec.orders)))
    recent = [p for p in range(max(0, n - 2000), n) if not account.is_open[p]] or list(range(n))
    for j in range(n_live if recent else 0):
        p = recent[int(rng.random() * len(recent))]
        ctime = max(now - 7 * DAY_MS, now - 1000 - int(rng.random() * 7 * DAY_MS))
        kind = KINDS[j] if j < len(KINDS) else _pick(rng, KIND_WEIGHTS)
        drafts.append((ctime, len(drafts), kind, "live", json.loads(account.blobs[p]), account.sym_idx[p], ctime,
                       None))
    drafts.sort(key=lambda d: (d[0], d[1]))
    prev_t, rank = None, 0
    for ctime, _, kind, status, order, si, utime, executed in drafts:
        rank = rank + 1 if ctime == prev_t else 0
        prev_t = ctime
        pid = ctime * 1_000_000 + PLAN_RANK_BASE + rank
        book.add(make_plan(rng, kind, status, pid, order, account.symbols[si], ctime, utime, executed), si)
