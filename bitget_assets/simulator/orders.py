"""Order objects: field values, the fixed JSON key order, and fast rendering to bytes.

Orders are kept pre-serialized (compact JSON, keys in ORDER_KEYS order) so a response is a join of bytes and a
million orders fit in memory. `render_order` (json.dumps) and the fast template give identical bytes for the
plain ASCII values we generate; the tests check that.
"""

from __future__ import annotations

import json
import math
import random
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate

from .symbols import SymbolInfo

ORDER_KEYS = (
    "orderId", "clientOid", "symbol", "size", "price", "priceAvg", "baseVolume", "quoteVolume", "fee",
    "totalProfits", "status", "side", "posSide", "tradeSide", "posMode", "orderType", "force", "marginMode",
    "marginCoin", "leverage", "reduceOnly", "presetStopSurplusPrice", "presetStopLossPrice",
    "enterPointSource", "orderSource", "liqPrice", "cTime", "uTime",
)
_TEMPLATE = "{" + ",".join(f'"{k}":"%s"' for k in ORDER_KEYS) + "}"

OPEN_STATUSES = ("live", "partially_filled")
FINISHED_STATUSES = ("filled", "canceled", "cancelled", "partially_filled")
ORDER_SOURCES = ("normal", "market", "profit_market", "loss_market", "liquidation")
ENTER_POINTS = (("web", 35), ("API", 25), ("api", 10), ("ios", 12), ("android", 10))
HEDGE_TRADE_SIDES = (
    ("open", 45), ("close", 40), ("reduce_close_long", 1.5), ("reduce_close_short", 1.5),
    ("burst_close_long", 1.2), ("burst_close_short", 1.2), ("offset_close_long", 0.8),
    ("offset_close_short", 0.8), ("delivery_close_long", 0.5), ("delivery_close_short", 0.5),
)
LIMIT_FORCES = (("gtc", 78), ("post_only", 10), ("ioc", 6), ("fok", 6))
LEVERAGES = ("1", "2", "3", "5", "10", "10", "20", "20", "25", "50", "75", "100", "125")
_SYSTEM_PREFIXES = ("burst_", "offset_", "delivery_")


def render_order(order: dict) -> bytes:
    """Canonical bytes of an order (any values; used for admin-made orders)."""
    return json.dumps({k: str(order[k]) for k in ORDER_KEYS}, separators=(",", ":"), ensure_ascii=False).encode()


def _weighted(rng: random.Random, table) -> str:
    cum = list(accumulate(w for _, w in table))
    return table[bisect(cum, rng.random() * cum[-1])][0]


@dataclass(frozen=True)
class Profile:
    """The categorical fields of an order (everything that does not depend on price or time)."""
    side: str
    pos_side: str
    trade_side: str
    pos_mode: str
    order_type: str
    force: str
    margin_mode: str
    leverage: str
    reduce_only: str
    enter_point: str
    order_source: str
    closing: bool  # reduces a position (drives totalProfits, presets, liqPrice)


def random_profile(rng: random.Random) -> Profile:
    if rng.random() < 0.65:
        mode, ts = "hedge_mode", _weighted(rng, HEDGE_TRADE_SIDES)
        pos = "long" if ts.endswith("_long") else "short" if ts.endswith("_short") else rng.choice(("long", "short"))
        # v2 hedge mode: `side` names the position direction (buy+close closes a long).
        side = "buy" if pos == "long" else "sell"
        reduce = "YES" if ts.startswith(("reduce_",) + _SYSTEM_PREFIXES) else "NO"
    else:
        mode, ts = "one_way_mode", rng.choice(("buy_single", "sell_single"))
        pos, side = "net", ts.split("_")[0]
        reduce = "YES" if rng.random() < 0.2 else "NO"
    if ts.startswith(_SYSTEM_PREFIXES):
        otype, enter = "market", "SYS"
        source = "liquidation" if ts.startswith("burst_") else "market"
    else:
        otype = "market" if rng.random() < 0.35 else "limit"
        enter = _weighted(rng, ENTER_POINTS)
        if ts != "open" and not (ts.endswith("_single") and reduce == "NO") and rng.random() < 0.25:
            otype, source = "market", rng.choice(("profit_market", "loss_market"))
        else:
            source = "market" if otype == "market" else "normal"
    force = _weighted(rng, LIMIT_FORCES) if otype == "limit" else ("ioc" if rng.random() < 0.3 else "gtc")
    margin = "crossed" if rng.random() < 0.7 else "isolated"
    closing = ts != "open" and not (ts.endswith("_single") and reduce == "NO")
    return Profile(side, pos, ts, mode, otype, force, margin, rng.choice(LEVERAGES), reduce, enter, source,
                   closing)


def profile_pool(rng: random.Random, size: int = 384) -> list[Profile]:
    """A fixed pool of profiles drawn until every variant of every field occurs at least once."""
    wanted = {
        "trade_side": {t for t, _ in HEDGE_TRADE_SIDES} | {"buy_single", "sell_single"},
        "force": {f for f, _ in LIMIT_FORCES}, "order_source": set(ORDER_SOURCES),
        "enter_point": {e for e, _ in ENTER_POINTS} | {"SYS"}, "margin_mode": {"crossed", "isolated"},
        "pos_side": {"long", "short", "net"}, "order_type": {"limit", "market"}, "reduce_only": {"YES", "NO"},
    }
    pool: list[Profile] = []
    while len(pool) < size or any(wanted.values()):
        p = random_profile(rng)
        pool.append(p)
        for field, missing in wanted.items():
            missing.discard(getattr(p, field))
    return pool


def _fmt(x: float, places: int) -> str:
    return format(x, f".{places}f")


class OrderMaker:
    """Draws order field values from one RNG; callers decide id, symbol, times and status.

    Hot path for million-order accounts: format specs are cached per symbol, `int(random() * n)` replaces
    randrange.
    """

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.pool = profile_pool(rng)
        self.open_pool = [p for p in self.pool if p.order_type == "limit" and p.force in ("gtc", "post_only")
                          and p.enter_point != "SYS"]
        self._specs: dict[str, tuple[str, str, float]] = {}

    def market_price(self, sym: SymbolInfo, t_ms: int) -> float:
        # Two slow waves per symbol: prices drift over weeks, wiggle over days.
        d = t_ms / 86_400_000
        return sym.price * math.exp(0.25 * math.sin(d / 13 + sym.phase1) + 0.06 * math.sin(d / 2.1 + sym.phase2))

    def finished_status(self, profile: Profile) -> str:
        r = self.rng.random()
        if profile.order_type == "market":
            return "filled" if r < 0.95 else "partially_filled"
        if profile.force in ("ioc", "fok"):
            return "filled" if r < 0.6 else ("canceled" if r < 0.97 else "cancelled")
        return "filled" if r < 0.55 else "canceled" if r < 0.88 else "cancelled" if r < 0.91 else "partially_filled"

    def values(self, oid: int, sym: SymbolInfo, ctime: int, utime: int, status: str,
               profile: Profile | None = None) -> tuple[str, ...]:
        """Field values in ORDER_KEYS order. `status` open (live/partially_filled) or finished."""
        rnd = self.rng.random
        if profile is None:
            pool = self.open_pool if status in OPEN_STATUSES else self.pool
            profile = pool[int(rnd() * len(pool))]
        specs = self._specs.get(sym.name)
        if specs is None:
            specs = self._specs[sym.name] = (f".{sym.price_place}f", f".{sym.volume_place}f",
                                             10.0 ** -sym.volume_place)
        pspec, vspec, min_size = specs
        mkt = self.market_price(sym, ctime) * (1 + 0.002 * (rnd() - 0.5))
        notional = 20 * math.exp(rnd() * 7.5)  # 20 .. 36k quote units, log-uniform
        size = format(max(notional / mkt, min_size), vspec)
        size_f = float(size)
        limit = profile.order_type == "limit"
        if limit:
            price = format(mkt * (1 + 0.01 * (rnd() - 0.5)), pspec)
            price_f = float(price)
        else:
            price_f = mkt * (1 + 0.0005 * (rnd() - 0.5))
            price = "0" if rnd() < 0.5 else ""
        if status == "filled":
            filled = size_f
        elif status == "partially_filled":
            filled = float(format(size_f * (0.05 + 0.9 * rnd()), vspec))
        else:  # live, canceled, cancelled
            filled = 0.0
        if filled > 0:
            quote = filled * price_f
            taker = not limit or profile.force in ("ioc", "fok") or rnd() < 0.3
            fee_q = quote * (0.0006 if taker else 0.0002)
            if sym.margin_coin == sym.base_coin:  # coin-margined: fee in coin
                fee_q /= price_f
            price_avg, base_vol, quote_vol = format(price_f, pspec), format(filled, vspec), format(quote, ".4f")
            fee = "-" + format(fee_q, ".8f")
            profits = format(quote * 0.04 * (rnd() - 0.45), ".4f") if profile.closing else "0"
        else:
            price_avg, base_vol, quote_vol, fee, profits = "", "0", "0", "0", "0"
        tp = sl = liq = ""
        if not profile.closing:
            up = profile.side == "buy"
            if rnd() < 0.12:
                tp = format(mkt * (1.06 if up else 0.94), pspec)
                sl = format(mkt * (0.97 if up else 1.03), pspec)
            if profile.margin_mode == "isolated":
                lev = float(profile.leverage)
                liq = format(mkt * (1 - 0.9 / lev if up else 1 + 0.9 / lev), pspec)
        if profile.enter_point in ("API", "api"):
            client_oid = f"cli{int(rnd() * 2**48):012x}"
        else:
            client_oid = str(oid + 1 + int(rnd() * 999_999))
        return (
            str(oid), client_oid, sym.name, size, price, price_avg, base_vol, quote_vol, fee, profits, status,
            profile.side, profile.pos_side, profile.trade_side, profile.pos_mode, profile.order_type,
            profile.force, profile.margin_mode, sym.margin_coin, profile.leverage, profile.reduce_only, tp, sl,
            profile.enter_point, profile.order_source, liq, str(ctime), str(utime),
        )

    def finished_utime(self, market: bool, status: str, ctime: int, now: int) -> int:
        rng = self.rng
        if market:
            delay = 5 + int(rng.random() * 900)
        elif status == "filled":
            delay = int(rng.expovariate(1 / 1_200_000))
        else:
            delay = int(rng.expovariate(1 / 7_200_000))
        return max(ctime, min(ctime + delay, now))

    def finished(self, oid: int, sym: SymbolInfo, ctime: int, now: int) -> bytes:
        profile = self.pool[int(self.rng.random() * len(self.pool))]
        status = self.finished_status(profile)
        utime = self.finished_utime(profile.order_type == "market", status, ctime, now)
        return (_TEMPLATE % self.values(oid, sym, ctime, utime, status, profile)).encode()

    def open(self, oid: int, sym: SymbolInfo, ctime: int, now: int) -> bytes:
        profile = self.open_pool[int(self.rng.random() * len(self.open_pool))]
        partial = self.rng.random() < 0.3
        utime = max(ctime, min(now, ctime + int(self.rng.expovariate(1 / 3_600_000)))) if partial else ctime
        status = "partially_filled" if partial else "live"
        return (_TEMPLATE % self.values(oid, sym, ctime, utime, status, profile)).encode()


def fill_on_close(order: dict, status: str, utime: int) -> dict:
    """An open order that ended: new status and uTime, volumes made consistent with the status."""
    out = dict(order, status=status, uTime=str(max(utime, int(order["cTime"]))))
    if status == "filled":
        size = order["size"]
        price = order["priceAvg"] or order["price"] or "0"
        quote = float(size) * float(price)
        out.update(baseVolume=size, priceAvg=price, quoteVolume=_fmt(quote, 4), fee="-" + _fmt(quote * 0.0002, 8))
    return out
