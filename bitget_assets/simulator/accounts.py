"""Deterministic generation of a simulated Bitget futures account.

`generate_account(spec)` is a pure function of the spec (random.Random(f"{seed}:{name}"), never the global
RNG). The result holds the orders as columns sorted by orderId with every order pre-serialized to bytes.

Shape of the data (what makes extraction hard in real life):
- a few heavy symbols and a long tail of symbols with 1..tail_max orders;
- bursty trading sessions; ~3% of orders share a cTime with another order of the same symbol (batch orders),
  and some of those ties straddle 100-order page boundaries of the product-type and the per-symbol listing;
- expired orders older than the retention, which the API must never return;
- a handful of open orders in the last 7 days;
- with >= 20 symbols (and `exotic_symbols`), two tail USDT symbols renamed `龙虾USDT` and `$DEGENUSDT` (their
  names need percent-encoding; only their own orders differ from an account without them);
- a few take-profit/stop-loss market orders relabelled `pos_profit_market`/`pos_loss_market` (drawn from their
  own RNG, so the other orders stay as they were): the position-wide TP/SL plans of `plans.py` link to them.
Plan orders and fills are derived from the orders afterwards (`plans.py`, `fills.py`).
Returnable finished orders sit at least one hour inside the retention window so a running data clock does not
change `orders` during a test run.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import math
import random
import time
from array import array
from bisect import bisect_left, bisect_right
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import repeat

from .orders import OrderMaker
from .symbols import ALL_TYPES, TYPE_WEIGHT, SymbolInfo, family, symbol_info, symbol_name

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
NEVER_TRADED_PER_TYPE = 10
EXOTIC_SYMBOLS = ("龙虾USDT", "$DEGENUSDT")  # names that need percent-encoding in a query (see api-notes)
EXOTIC_MIN_SYMBOLS = 20
_IDX_BITS = 24  # (time << 24 | index) sort keys: room for 16M orders
_GROUP_SHIFT = 72  # (group << 72 | time << 24 | index): ms times stay below 2**48


@dataclass(frozen=True)
class AccountSpec:
    """What to generate. `orders` = orders the API can return at `now_ms` (history in retention + open),
    exact when the server's retention equals `retention_days` (both default to 90)."""
    name: str = "demo"
    seed: int = 0
    orders: int = 1000
    symbols: int = 10
    now_ms: int | None = None
    history_days: int = 120
    expired_fraction: float = 0.1
    open_orders: int | None = None
    tail_max: int = 5
    product_types: tuple[str, ...] = ("USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES")
    retention_days: int = 90
    exotic_symbols: bool = True          # 龙虾USDT and $DEGENUSDT among the traded symbols when symbols >= 20
    plan_fraction: float = 0.12          # history plan orders per order (at least one of every kind x status)
    open_plans: int | None = None        # live plans (default min(30, max(7, 0.2% of orders)))

    def __post_init__(self):
        object.__setattr__(self, "product_types", tuple(self.product_types))
        unknown = [t for t in self.product_types if t not in ALL_TYPES]
        if unknown or not self.product_types:
            raise ValueError(f"unknown product types {unknown}")
        if self.symbols < 1 or self.tail_max < 1 or self.expired_fraction < 0:
            raise ValueError("symbols and tail_max must be >= 1, expired_fraction >= 0")
        if self.orders < self.symbols:
            raise ValueError(f"orders ({self.orders}) < symbols ({self.symbols}): every symbol needs an order")
        if self.orders * (1 + self.expired_fraction) >= 2**_IDX_BITS:
            raise ValueError("too many orders")
        if self.open_orders is not None and not 0 <= self.open_orders <= self.orders:
            raise ValueError("open_orders must be between 0 and orders")
        if self.plan_fraction < 0 or (self.open_plans is not None and self.open_plans < 0):
            raise ValueError("plan_fraction and open_plans must be >= 0")

    @property
    def open_count(self) -> int:
        return min(50, math.ceil(0.01 * self.orders)) if self.open_orders is None else self.open_orders


@dataclass
class Account:
    """A generated account: credentials, symbols, contracts and the orders (columns in orderId order)."""
    spec: AccountSpec
    now_ms: int
    api_key: str
    api_secret: str
    passphrase: str
    uid: str
    symbols: list[SymbolInfo]                # traded symbols, heaviest first
    contracts: dict[str, list[SymbolInfo]]   # per product type: traded + never traded
    oids: array = field(repr=False)          # 'q', ascending
    ctimes: array = field(repr=False)        # 'q'
    sym_idx: array = field(repr=False)       # 'i', index into symbols
    is_open: bytearray = field(repr=False)
    blobs: list[bytes] = field(repr=False)
    relabelled: list[int] = field(default_factory=list, repr=False)  # positions made pos_profit/pos_loss

    @property
    def name(self) -> str:
        return self.spec.name

    def credentials(self) -> dict:
        return {"api_key": self.api_key, "api_secret": self.api_secret, "passphrase": self.passphrase,
                "uid": self.uid}


def credentials_for(seed: int, name: str) -> tuple[str, str, str, str]:
    """(api_key, secret, passphrase, uid) derived from seed and name; keys never look like real `bg_` keys."""
    def h(tag: str) -> str:
        return hashlib.sha256(f"bitget-sim:{seed}:{name}:{tag}".encode()).hexdigest()
    uid = str(1_000_000_000 + int(h("uid")[:12], 16) % 9_000_000_000)
    return f"sim-{name}-{h('key')[:12]}", h("secret")[:32], "pp" + h("pass")[:10], uid


def _largest_remainder(total: int, weights: list[float]) -> list[int]:
    s = sum(weights)
    shares = [total * w / s for w in weights]
    out = [int(x) for x in shares]
    by_frac = sorted(range(len(weights)), key=lambda i: (-(shares[i] - out[i]), i))
    for i in by_frac[: total - sum(out)]:
        out[i] += 1
    return out


def allocate_types(k: int, types: tuple[str, ...]) -> list[int]:
    """Symbols per product type: ~70/15/15 (USDT/COIN/USDC), at least one each when k allows."""
    weights = [TYPE_WEIGHT[family(t)] for t in types]
    if k >= len(types):
        return [1 + c for c in _largest_remainder(k - len(types), weights)]
    return _largest_remainder(k, weights)


def symbol_counts(rng: random.Random, n: int, k: int, tail_max: int) -> list[int]:
    """Orders per symbol, heaviest first: ~80% tail symbols with 1..tail_max orders, Zipf-like head."""
    if n < k:
        raise ValueError("fewer orders than symbols")
    if n <= k * tail_max:
        counts, open_slots = [1] * k, list(range(k))
        for _ in range(n - k):
            j = rng.randrange(len(open_slots))
            counts[open_slots[j]] += 1
            if counts[open_slots[j]] == tail_max:
                open_slots.pop(j)
        return sorted(counts, reverse=True)
    n_tail = min(round(0.8 * k), k - 1)
    tail = [rng.randint(1, tail_max) for _ in range(n_tail)]
    n_head = k - n_tail
    head = _largest_remainder(n - sum(tail) - n_head, [1 / (i + 1) ** 1.1 for i in range(n_head)])
    return sorted((c + 1 for c in head), reverse=True) + sorted(tail, reverse=True)


def _ranked_symbols(spec: AccountSpec) -> tuple[list[SymbolInfo], dict[str, list[SymbolInfo]]]:
    """Traded symbols ranked by popularity across types (first is USDT-margined) and per-type contracts."""
    fam_order = {"USDT": 0, "COIN": 1, "USDC": 2}
    types = sorted(spec.product_types, key=lambda t: (fam_order[family(t)], t.startswith("S")))
    per_type = allocate_types(spec.symbols, tuple(types))
    keyed, contracts = [], {}
    for ti, (pt, n) in enumerate(zip(types, per_type, strict=True)):
        names = [symbol_name(pt, i) for i in range(n + NEVER_TRADED_PER_TYPE)]
        if spec.exotic_symbols and spec.symbols >= EXOTIC_MIN_SYMBOLS and pt == "USDT-FUTURES" and n >= 4:
            names[n - len(EXOTIC_SYMBOLS):n] = EXOTIC_SYMBOLS  # the least popular traded ones
        infos = [symbol_info(pt, name) for name in names]
        contracts[pt] = infos
        keyed += [((i + 0.5) / n, ti, infos[i]) for i in range(n)]
    keyed.sort(key=lambda x: (x[0], x[1]))
    return [x[2] for x in keyed], contracts


def _bursty_times(rng: random.Random, n: int, lo: int, hi: int) -> list[int]:
    """Times in [lo, hi] clustered in trading sessions of varying intensity and length."""
    if n <= 0:
        return []
    n_sessions = max(1, n // 20)
    starts = [lo + rng.random() * (hi - lo) for _ in range(n_sessions)]
    lengths = [rng.expovariate(1 / 2_700_000) for _ in range(n_sessions)]
    weights = [rng.expovariate(1.0) for _ in range(n_sessions)]
    picks = rng.choices(range(n_sessions), weights=weights, k=n)
    rnd = rng.random
    return [min(hi, int(starts[s] + rnd() * lengths[s])) for s in picks]


def _batch_ties(rng: random.Random, T: list[int], S: list[int], n_fin: int, n_exp: int) -> None:
    """~3% of finished orders share a cTime with the next order of the same symbol (batch orders)."""
    n = n_fin + n_exp
    keys = sorted(((S[i] * 2 + (i >= n_fin)) << _GROUP_SHIFT) | (T[i] << _IDX_BITS) | i for i in range(n))
    mask, group_shift = (1 << _IDX_BITS) - 1, _GROUP_SHIFT
    rnd, chain = rng.random, False
    for a, b in itertools.pairwise(keys):
        if a >> group_shift != b >> group_shift:
            chain = False
            continue
        if chain or rnd() < 0.01:
            T[b & mask] = T[a & mask]
            chain = rnd() < 0.25
        else:
            chain = False


def _desc(idxs: list[int], T: list[int]) -> list[int]:
    return sorted(idxs, key=lambda i: (T[i] << _IDX_BITS) | i, reverse=True)


def _pick(rng: random.Random, cands: list[int], S: list[int], sym: int, avoid: set[int]) -> int | None:
    for _ in range(40):
        d = cands[rng.randrange(len(cands))]
        if S[d] == sym and d not in avoid:
            return d
    return None


def _page_boundary_ties(rng, T, S, n_fin, symbols: list[SymbolInfo]) -> None:
    """Make batch ties straddle 100-order page boundaries (product-type listing, then per-symbol listing)."""
    by_type, by_sym = defaultdict(list), defaultdict(list)
    for i in range(n_fin):
        by_type[symbols[S[i]].product_type].append(i)
        by_sym[S[i]].append(i)
    pairs = []
    for pt in sorted(by_type):
        listing = _desc(by_type[pt], T)
        pairs += [(listing[b - 1], listing[b]) for b in range(100, len(listing), 100)
                  if b == 100 or rng.random() < 0.3]
    protected = {i for p in pairs for i in p}
    for a, c in pairs:
        sa, sc = S[a], S[c]
        if sa != sc:
            # Swap symbols with another order so per-symbol counts stay exact.
            d = _pick(rng, by_sym[sa], S, sa, protected)
            if d is not None:
                S[c], S[d] = sa, sc
                by_sym[sa].append(c)
                by_sym[sc].append(d)
            else:
                d = _pick(rng, by_sym[sc], S, sc, protected)
                if d is None:
                    continue
                S[a], S[d] = sc, sa
                by_sym[sc].append(a)
                by_sym[sa].append(d)
        T[c] = T[a]
    tie_times = sorted(T[i] for i in protected)
    members = defaultdict(list)
    for i in range(n_fin):
        members[S[i]].append(i)
    for s in sorted(members):
        if len(members[s]) <= 100:
            continue
        listing = _desc(members[s], T)
        for b in range(100, len(listing), 100):
            x, y = listing[b - 1], listing[b]
            if b != 100 and rng.random() >= 0.3 or x in protected or y in protected:
                continue
            # Moving y up must not shift a product-type boundary tie made above.
            if bisect_left(tie_times, T[y]) < bisect_right(tie_times, T[x]):
                continue
            T[y] = T[x]


@contextmanager
def _no_gc():
    # Millions of short-lived objects and no cycles: the cyclic GC only costs time here.
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def generate_account(spec: AccountSpec) -> Account:
    """Generate the account described by `spec` (same spec -> identical bytes)."""
    with _no_gc():
        return _generate(spec)


def _generate(spec: AccountSpec) -> Account:
    rng = random.Random(f"{spec.seed}:{spec.name}")
    now = int(time.time() * 1000) if spec.now_ms is None else int(spec.now_ms)
    symbols, contracts = _ranked_symbols(spec)
    counts = symbol_counts(rng, spec.orders, spec.symbols, spec.tail_max)
    n_open = spec.open_count
    n_exp = round(spec.expired_fraction * spec.orders)
    n_fin = spec.orders - n_open

    ret_syms = [j for j, c in enumerate(counts) for _ in repeat(None, c)]
    rng.shuffle(ret_syms)
    exp_syms = rng.choices(range(len(counts)), weights=counts, k=n_exp)
    # Index layout: [0, n_fin) finished in retention, then expired, then open.
    S = ret_syms[n_open:] + exp_syms + ret_syms[:n_open]

    keep = min(spec.history_days, spec.retention_days) * DAY_MS
    T = _bursty_times(rng, n_fin, now - keep + HOUR_MS, now - 1000)
    exp_hi = now - spec.retention_days * DAY_MS - HOUR_MS
    exp_lo = min(now - spec.history_days * DAY_MS, exp_hi - DAY_MS)  # history_days <= retention: one day
    T += _bursty_times(rng, n_exp, exp_lo, exp_hi)
    open_lo = max(now - 7 * DAY_MS, now - keep + HOUR_MS)
    T += [open_lo + int(rng.random() * (now - 1000 - open_lo)) for _ in range(n_open)]

    _batch_ties(rng, T, S, n_fin, n_exp)
    _page_boundary_ties(rng, T, S, n_fin, symbols)

    total = n_fin + n_exp + n_open
    order = sorted(range(total), key=lambda i: (T[i] << _IDX_BITS) | i)
    maker = OrderMaker(rng)
    oids, ctimes, sym_idx = array("q"), array("q"), array("i")
    is_open, blobs = bytearray(total), []
    prev_t, rank = None, 0
    for pos, i in enumerate(order):
        t = T[i]
        rank = rank + 1 if t == prev_t else 0
        prev_t = t
        oid = t * 1_000_000 + rank  # 19 digits for any ms timestamp of this century
        oids.append(oid)
        ctimes.append(t)
        sym_idx.append(S[i])
        info = symbols[S[i]]
        if i >= n_fin + n_exp:
            is_open[pos] = 1
            blobs.append(maker.open(oid, info, t, now))
        else:
            blobs.append(maker.finished(oid, info, t, now))
    relabelled = _relabel_position_tpsl(spec, is_open, blobs)
    key, secret, passphrase, uid = credentials_for(spec.seed, spec.name)
    return Account(spec=spec, now_ms=now, api_key=key, api_secret=secret, passphrase=passphrase, uid=uid,
                   symbols=symbols, contracts=contracts, oids=oids, ctimes=ctimes, sym_idx=sym_idx,
                   is_open=is_open, blobs=blobs, relabelled=relabelled)


_RELABEL = ((b'"orderSource":"profit_market"', b'"orderSource":"pos_profit_market"'),
            (b'"orderSource":"loss_market"', b'"orderSource":"pos_loss_market"'))


def _relabel_position_tpsl(spec: AccountSpec, is_open: bytearray, blobs: list[bytes]) -> list[int]:
    """A few filled TP/SL market orders become position-wide TP/SL orders (what pos_profit/pos_loss plans
    spawn). Random probes from a separate RNG: the main stream, hence every other order, is unchanged."""
    if spec.plan_fraction <= 0 or not blobs:
        return []
    rng = random.Random(f"{spec.seed}:{spec.name}:relabel")
    want = max(3, round(0.002 * len(blobs)))
    out = []
    for old, new in _RELABEL:
        found = 0
        for _ in range(400 * want):
            p = int(rng.random() * len(blobs))
            b = blobs[p]
            if not is_open[p] and old in b and b'"baseVolume":"0"' not in b:
                blobs[p] = b.replace(old, new)
                out.append(p)
                found += 1
                if found == want:
                    break
    return sorted(out)
