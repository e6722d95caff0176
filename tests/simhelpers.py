"""Helpers for tests that run against the simulator: clients, ground truth, sliding-window counts."""

import os
import threading
from collections import defaultdict

from bitget_assets.bitget import BitgetClient, Credentials
from bitget_assets.ratelimit import ThreadLimiter

NOW_MS = 1_790_000_000_000  # a fixed data clock: every run sees the same account
DAY_MS = 86_400_000
HISTORY = "/api/v2/mix/order/orders-history"
PENDING = "/api/v2/mix/order/orders-pending"


def client_for(sim, account="demo", *, rate=50.0, **kwargs) -> BitgetClient:
    c = sim.credentials(account)
    creds = Credentials(c["api_key"], c["api_secret"], c["passphrase"], base_url=sim.base_url)
    kwargs.setdefault("timeout", (2.0, 3.0))
    kwargs.setdefault("max_backoff_s", 0.5)
    kwargs.setdefault("rate_limited_pause_s", 0.05)  # 429 pauses grow from 0.05 s, not Bitget's 1 s
    kwargs.setdefault("rate_limited_max_pause_s", 0.4)
    return BitgetClient(creds, ThreadLimiter(rate), **kwargs)


class PagesInMemory:
    """A Scanner sink that keeps every page, (slot, product type) -> frames: the scan as it was before the spool."""

    def __init__(self):
        self.frames: dict[tuple[str, str], list] = defaultdict(list)
        self._lock = threading.Lock()

    def add(self, slot: str, product_type: str, spec, frame) -> None:
        with self._lock:
            self.frames[(slot, product_type)].append(frame)

    def of(self, slot: str, product_type: str) -> list:
        return self.frames.get((slot, product_type), [])


def truth_ids(sim, account="demo") -> set[str]:
    return {o["orderId"] for o in sim.truth(account)}


def extract_ids(client: BitgetClient, product_types, now_ms: int, symbol=None) -> list[str]:
    """The straightforward sequential walk: history over the retention plus pending, per product type."""
    from bitget_assets.paging import walk
    from bitget_assets.streams import ORDERS_HISTORY, ORDERS_PENDING

    ids = []
    for pt in product_types:
        for rows in walk(client, ORDERS_HISTORY, pt, symbol=symbol, start_ms=now_ms - 90 * DAY_MS, end_ms=now_ms):
            ids += [o["orderId"] for o in rows]
        for rows in walk(client, ORDERS_PENDING, pt, symbol=symbol):
            ids += [o["orderId"] for o in rows]
    return ids


def sim_env(sim, account="demo", **extra) -> dict[str, str]:
    """This process's environment minus any BITGET_*/DAGSTER_* setting, pointed at the simulator's account."""
    c = sim.credentials(account)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BITGET_", "DAGSTER_"))}
    return env | {
        "BITGET_API_KEY": c["api_key"],
        "BITGET_API_SECRET": c["api_secret"],
        "BITGET_API_PASSPHRASE": c["passphrase"],
        "BITGET_BASE_URL": sim.base_url,
        **extra,
    }


def requests_to(sim, endpoint=None) -> list[dict]:
    return [r for r in sim.request_log() if endpoint is None or r["endpoint"] == endpoint]
