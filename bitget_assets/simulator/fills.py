"""Fills (trades) of an account: generation from the orders, and the book the fills endpoints read.

Every order with baseVolume > 0 gets 1..8 fills whose `baseVolume`s add up to the order's exactly (integer
arithmetic in the order's own decimal places), at prices around its `priceAvg`, timed between its cTime and
uTime. tradeIds come from the orders' time-ordered 19-digit space: `cTime * 10**6 + 700_000 + rank` (orders use
ranks from 0, plan orders from 500_000), so a tradeId exceeds its orderId and never equals any order's or plan's id.
"""

from __future__ import annotations

import json
import random
from array import array
from bisect import bisect_left, bisect_right, insort
from collections import defaultdict

from .symbols import SymbolInfo

FILL_KEYS = ("tradeId", "symbol", "orderId", "price", "baseVolume", "feeDetail", "side", "quoteVolume", "profit",
             "enterPointSource", "tradeSide", "posMode", "tradeScope", "marginCoin", "cTime")
# feeDetail is an array (raw JSON); every other value is a plain string without quotes or backslashes.
_REST = ",".join(f'"{k}":%s' if k == "feeDetail" else f'"{k}":"%s"' for k in FILL_KEYS[1:]) + "}"
TRADE_RANK_BASE = 700_000
_RANKS = 1_000_000 - TRADE_RANK_BASE


def split_units(rng: random.Random, units: int, k: int) -> list[int]:
    """k positive integers adding up to `units` (k <= units)."""
    if k <= 1:
        return [units]
    cuts = sorted(rng.sample(range(1, units), k - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, units], strict=True)]


def _units(text: str) -> tuple[int, int]:
    """'12.340' -> (12340, 3): the value as an integer count of its last decimal place."""
    whole, _, frac = text.partition(".")
    return int((whole or "0") + frac), len(frac)


def _fmt_units(units: int, places: int) -> str:
    if not places:
        return str(units)
    s = str(units).rjust(places + 1, "0")
    return f"{s[:-places]}.{s[-places:]}"


def _places(text: str) -> int:
    return len(text.partition(".")[2])


_FEE_NO = '[{"deduction":"no","feeCoin":"%s","totalDeductionFee":%s,"totalFee":"%s"}]'
_FEE_BGB = '[{"deduction":"yes","feeCoin":"BGB","totalDeductionFee":"%s","totalFee":"%s"}]'


def fee_detail(rng: random.Random, fee: float, margin_coin: str) -> str:
    """The feeDetail array as JSON (negative = paid) in the variants the API notes list."""
    r = rng.random()
    if r < 0.95:
        deduction = '"0"' if r < 0.85 else "null" if r < 0.92 else '""'
        return _FEE_NO % (margin_coin, deduction, "-" + format(fee, ".8f"))
    bgb = "-" + format(fee * 0.8, ".8f")  # paid in BGB at a discount
    return _FEE_BGB % (bgb, bgb)


def fills_for_order(rng: random.Random, order: dict, info: SymbolInfo, count: int | None = None,
                    base_volume: str | None = None, ctime: int | None = None) -> list[tuple[int, tuple]]:
    """(cTime, values without tradeId) per fill of `order`, covering `base_volume` (default its baseVolume).
    `ctime` pins every fill's time (late fills); otherwise times lie in [cTime, uTime]."""
    bv = base_volume if base_volume is not None else order["baseVolume"]
    units, places = _units(bv)
    if units <= 0:
        return []
    if count is None:
        r = rng.random()
        count = 1 if r < 0.6 else 2 + int(rng.random() * 2) if r < 0.9 else 4 + int(rng.random() * 5)
    parts = split_units(rng, units, min(count, units))
    avg_text = order["priceAvg"] or order["price"] or "0"
    avg = float(avg_text) or info.price
    pplaces = max(_places(avg_text), info.price_place) if order["priceAvg"] else info.price_place
    c0, u0 = int(order["cTime"]), max(int(order["uTime"] or 0), int(order["cTime"]))
    times = sorted([ctime] * len(parts) if ctime is not None
                   else [c0 + int(rng.random() * (u0 - c0 + 1)) for _ in parts])
    market = order["orderType"] == "market" or order["force"] in ("ioc", "fok")
    coin_margined = info.margin_coin == info.base_coin
    profits = float(order["totalProfits"] or 0)
    out = []
    for i, (part, t) in enumerate(zip(parts, times, strict=True)):
        price_f = avg if len(parts) == 1 else avg * (1 + 0.0008 * (rng.random() - 0.5))
        price = format(price_f, f".{pplaces}f")
        base = _fmt_units(part, places)
        quote_f = part / 10**places * float(price)
        taker = market or (i == 0 and rng.random() < 0.25)
        fee = quote_f * (0.0006 if taker else 0.0002)
        if coin_margined:
            fee /= float(price) or 1.0
        profit = format(profits * part / units, ".4f") if profits else "0"
        out.append((t, (info.name, order["orderId"], price, base, fee_detail(rng, fee, info.margin_coin),
                        order["side"], format(quote_f, ".4f"), profit, order["enterPointSource"],
                        order["tradeSide"], order["posMode"], "taker" if taker else "maker", info.margin_coin,
                        str(t))))
    return out


def render_rest(values: tuple) -> bytes:
    """Everything after the tradeId (ids are handed out once all times are known)."""
    return (_REST % values).encode()


def render_fill(trade_id: int, values: tuple) -> bytes:
    return with_trade_id(trade_id, render_rest(values))


def with_trade_id(trade_id: int, rest: bytes) -> bytes:
    return b'{"tradeId":"%d",%s' % (trade_id, rest)


class FillBook:
    """Fills in columns (append order); indexes are position lists sorted by tradeId, so newest-first paging
    is a bisect and a backwards scan, and a time window is a tradeId range (tradeIds follow cTime)."""

    def __init__(self, symbols: list[SymbolInfo]):
        self.symbols = symbols
        self.tids, self.ctimes, self.oids = array("q"), array("q"), array("q")
        self.sym_idx = array("i")
        self.blobs: list[bytes] = []
        self.all: list[int] = []
        self.by_pt: dict[str, list[int]] = defaultdict(list)
        self.by_sym: dict[int, list[int]] = defaultdict(list)

    def __len__(self) -> int:
        return len(self.blobs)

    def next_tid(self, ctime: int) -> int:
        """The lowest free tradeId of that millisecond (above every fill id of it)."""
        base = ctime * 1_000_000 + TRADE_RANK_BASE
        j = bisect_right(self.all, ctime * 1_000_000 + 999_999, key=self.tids.__getitem__)
        last = self.tids[self.all[j - 1]] if j else 0
        tid = max(base, last + 1)
        if tid >= (ctime + 1) * 1_000_000:
            raise ValueError(f"more than {_RANKS} fills in millisecond {ctime}")
        return tid

    def add(self, tid: int, si: int, oid: int, ctime: int, blob: bytes) -> None:
        p = len(self.blobs)
        self.tids.append(tid)
        self.ctimes.append(ctime)
        self.oids.append(oid)
        self.sym_idx.append(si)
        self.blobs.append(blob)
        key = self.tids.__getitem__
        pt = self.symbols[si].product_type
        for idx in (self.all, self.by_pt[pt], self.by_sym[si]):
            if idx and tid < key(idx[-1]):
                insort(idx, p, key=key)
            else:
                idx.append(p)

    def add_order_fills(self, si: int, oid: int, fills: list[tuple[int, tuple]]) -> list[bytes]:
        made = []
        for t, values in sorted(fills, key=lambda f: f[0]):
            tid = max(self.next_tid(t), oid + 1)
            blob = render_fill(tid, values)
            self.add(tid, si, oid, t, blob)
            made.append(blob)
        return made

    def query(self, *, product_type: str, symbol_idx: int | None, lower: int, upper: int,
              id_lt: int | None = None, limit: int = 100, order_id: int | None = None) -> list[int]:
        """Positions of matching fills, newest (highest tradeId) first, at most `limit`. With `order_id`, give
        that order's symbol and narrow [lower, upper] to its [cTime, uTime] (no per-order index: memory)."""
        idx = self.by_pt.get(product_type, []) if symbol_idx is None else self.by_sym.get(symbol_idx, [])
        key = self.tids.__getitem__
        hi = bisect_left(idx, upper * 1_000_000 + 1_000_000, key=key)
        if id_lt is not None:
            hi = min(hi, bisect_left(idx, id_lt, key=key))
        lo = bisect_left(idx, lower * 1_000_000, key=key, hi=hi)
        if order_id is None:
            return [idx[i] for i in range(hi - 1, max(lo, hi - limit) - 1, -1)]
        oids, out = self.oids, []
        for i in range(hi - 1, lo - 1, -1):
            if oids[idx[i]] == order_id:
                out.append(idx[i])
                if len(out) >= limit:
                    break
        return out

    def truth_positions(self, cut_ms: int | None) -> list[int]:
        """Fills with cTime >= cut_ms (None = all), sorted by (cTime, tradeId) = by tradeId."""
        lo = 0 if cut_ms is None else bisect_left(self.all, cut_ms * 1_000_000, key=self.tids.__getitem__)
        return self.all[lo:]


def generate_fills(account, book: FillBook) -> None:
    """Fills of every order of a freshly generated account with baseVolume > 0 (pure function of the spec)."""
    spec = account.spec
    rng = random.Random(f"{spec.seed}:{spec.name}:fills")
    symbols, blobs, sym_idx, oids = account.symbols, account.blobs, account.sym_idx, account.oids
    pending = []  # (cTime, seq, sym index, orderId, rendered rest): compact until ids are known
    for p, blob in enumerate(blobs):
        if b'"baseVolume":"0"' in blob:
            continue
        order = json.loads(blob)
        si = sym_idx[p]
        for t, values in fills_for_order(rng, order, symbols[si]):
            pending.append((t, len(pending), si, oids[p], render_rest(values)))
    pending.sort(key=lambda f: (f[0], f[1]))
    prev_t, rank = None, 0
    for i in range(len(pending)):
        t, _, si, oid, rest = pending[i]
        pending[i] = None  # each rest is held once: here or in the book
        rank = rank + 1 if t == prev_t else 0
        prev_t = t
        tid = max(t * 1_000_000 + TRADE_RANK_BASE + rank, oid + 1)
        book.add(tid, si, oid, t, with_trade_id(tid, rest))
