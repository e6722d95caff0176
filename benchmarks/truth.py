"""Ground truth of a scenario's account, and the fewest requests any client could extract it with, per stream.

The account is generated from the same AccountSpec as the simulator process (generation is a pure
function of the spec; plan orders and fills are derived from it by the simulator's own generators), so
nothing here asks the server. Cost model (docs/api-notes.md, "Cost model"): a paging walk over one window
needs `rows // 100 + 1` pages (a walk only ends on a short page, so exactly 100 rows cost two), per product
type, per server window and, for plan orders, per `planType`; a pending list costs `open // 100 + 1` pages
per product type (and planType). Every endpoint is its own budget of 10 requests/s per UID, so the
rate-limit floor is the largest of (minimal requests of an endpoint ÷ that endpoint's rate).

Besides the list requests, every run makes the same fixed probes: the exchange's time, then the account
mode (`/api/v3/account/settings`) and, on a classic account, the UID (`/api/v2/spot/account/info`).
"""

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

from bitget_assets.scan import windows  # the same windows the scan walks
from bitget_assets.simulator.accounts import DAY_MS, AccountSpec, generate_account

PAGE = 100
RATE_LIMIT = 10  # Bitget: requests per second per UID, counted per endpoint (orders, plan orders, fills)

ORDERS_HISTORY = "/api/v2/mix/order/orders-history"
ORDERS_PENDING = "/api/v2/mix/order/orders-pending"
PLAN_HISTORY = "/api/v2/mix/order/orders-plan-history"
PLAN_PENDING = "/api/v2/mix/order/orders-plan-pending"
FILLS = "/api/v2/mix/order/fills"
SERVER_TIME = "/api/v2/public/time"
ACCOUNT_SETTINGS = "/api/v3/account/settings"
ACCOUNT_INFO = "/api/v2/spot/account/info"
# The run's fixed probes and each one's documented rate (docs/api-notes.md, "Account mode and UID").
FIXED_PROBES = {SERVER_TIME: 20, ACCOUNT_SETTINGS: 20, ACCOUNT_INFO: 1}
DATASET_ENDPOINTS = {"orders": (ORDERS_HISTORY, ORDERS_PENDING), "plan_orders": (PLAN_HISTORY, PLAN_PENDING),
                     "fills": (FILLS,)}
ENDPOINT_RATE = {p: RATE_LIMIT for ps in DATASET_ENDPOINTS.values() for p in ps} | FIXED_PROBES
PLAN_TYPES = ("normal_plan", "track_plan", "profit_loss")


@dataclass
class Truth:
    order_ids: set[int]
    orders: int
    symbols: int
    minimal_requests: int  # list requests of the streams that are on (no probes)
    minimal_by_product_type: dict[str, dict]  # orders
    windows_per_product_type: int
    datasets: tuple[str, ...] = ("orders",)
    minimal_by_endpoint: dict[str, int] = field(default_factory=dict)  # list endpoints and probes
    by_dataset: dict[str, dict] = field(default_factory=dict)
    plan_ids: set[int] | None = None

    @property
    def fixed_probes(self) -> int:
        return len(FIXED_PROBES)

    @property
    def minimal_with_probes(self) -> int:
        return self.minimal_requests + self.fixed_probes

    def floor_by_endpoint(self) -> dict[str, float]:
        return {p: round(n / ENDPOINT_RATE[p], 3) for p, n in self.minimal_by_endpoint.items()}

    @property
    def floor_s(self) -> float:
        """Bitget's rate-limit floor: the busiest budget's minimal requests ÷ its rate."""
        return max(self.floor_by_endpoint().values())

    @property
    def binding_endpoint(self) -> str:
        floors = self.floor_by_endpoint()
        return max(floors, key=floors.get)


def _pages(ctimes: list[int], spans: list[tuple[int, int]]) -> int:
    ctimes = sorted(ctimes)
    return sum((bisect_right(ctimes, hi) - bisect_left(ctimes, lo)) // PAGE + 1 for lo, hi in spans)


def expected(spec: AccountSpec, *, max_span_days: float = 90, retention_days: float = 90,
             product_types: tuple[str, ...] | None = None, datasets: tuple[str, ...] = ("orders",),
             fills_span_days: float = 90) -> Truth:
    """What a complete extraction returns, and its minimal requests on a server with this span."""
    unknown = set(datasets) - set(DATASET_ENDPOINTS)
    if unknown or "orders" not in datasets:
        raise ValueError(f"datasets must include 'orders' and be among {sorted(DATASET_ENDPOINTS)}: {datasets}")
    account = generate_account(spec)
    now = account.now_ms
    cut = now - int(retention_days * DAY_MS)
    types = product_types or spec.product_types
    finished_ctimes: dict[str, list[int]] = {pt: [] for pt in types}
    open_count = dict.fromkeys(types, 0)
    ids, symbols = set(), set()
    pt_of = [s.product_type for s in account.symbols]
    for oid, ctime, si, is_open in zip(account.oids, account.ctimes, account.sym_idx, account.is_open, strict=True):
        pt = pt_of[si]
        if is_open:
            open_count[pt] = open_count.get(pt, 0) + 1
        elif ctime >= cut:
            finished_ctimes.setdefault(pt, []).append(ctime)
        else:
            continue  # expired: the API never returns it
        ids.add(oid)
        symbols.add(si)
    spans = windows(cut, now, int(max_span_days * DAY_MS))
    per_type, by_endpoint = {}, dict.fromkeys(DATASET_ENDPOINTS["orders"], 0)
    for pt in types:
        history_pages = _pages(finished_ctimes.get(pt, []), spans)
        pending_pages = open_count.get(pt, 0) // PAGE + 1
        per_type[pt] = {"finished": len(finished_ctimes.get(pt, [])), "open": open_count.get(pt, 0),
                        "history_pages": history_pages, "pending_pages": pending_pages}
        by_endpoint[ORDERS_HISTORY] += history_pages
        by_endpoint[ORDERS_PENDING] += pending_pages
    by_dataset = {"orders": {"rows": len(ids), "minimal_requests": sum(by_endpoint.values()),
                             "by_endpoint": dict(by_endpoint), "by_product_type": per_type}}
    plan_ids = None
    if "plan_orders" in datasets or "fills" in datasets:
        from bitget_assets.simulator.store import OrderStore

        store = OrderStore(account, activity=True)
        if "plan_orders" in datasets:
            by_dataset["plan_orders"], plan_ids = _plan_requests(store.plans, types, spans, cut)
        if "fills" in datasets:
            by_dataset["fills"] = _fill_requests(store.fills, types, windows(cut, now, int(fills_span_days * DAY_MS)),
                                                 cut)
    minimal_by_endpoint = {p: n for d in datasets for p, n in by_dataset[d]["by_endpoint"].items()}
    minimal_by_endpoint |= dict.fromkeys(FIXED_PROBES, 1)
    return Truth(ids, len(ids), len(symbols), sum(by_dataset[d]["minimal_requests"] for d in datasets), per_type,
                 len(spans), tuple(datasets), minimal_by_endpoint, {d: by_dataset[d] for d in datasets}, plan_ids)


def _plan_requests(book, types, spans, cut: int) -> tuple[dict, set[int]]:
    """Plan orders: per product type and planType, history pages per window and pending pages."""
    per = {}
    hist = pend = 0
    for pt in types:
        for group in PLAN_TYPES:
            finished = [book.ctimes[p] for p in book.by_pt.get((False, pt, group), []) if book.ctimes[p] >= cut]
            live = len(book.by_pt.get((True, pt, group), []))
            h, o = _pages(finished, spans), live // PAGE + 1
            per[f"{pt}:{group}"] = {"finished": len(finished), "open": live, "history_pages": h, "pending_pages": o}
            hist, pend = hist + h, pend + o
    ids = {book.ids[p] for p in book.truth_positions(cut)}
    return ({"rows": len(ids), "minimal_requests": hist + pend, "by_endpoint": {PLAN_HISTORY: hist, PLAN_PENDING: pend},
             "by_product_type": per}, ids)


def _fill_requests(book, types, spans, cut: int) -> dict:
    """Fills (`/fills`, one 90-day span where the server allows it): pages per product type and window."""
    per, total, rows = {}, 0, 0
    for pt in types:
        ctimes = [book.ctimes[p] for p in book.by_pt.get(pt, []) if book.ctimes[p] >= cut]
        per[pt] = {"fills": len(ctimes), "pages": _pages(ctimes, spans)}
        total, rows = total + per[pt]["pages"], rows + len(ctimes)
    return {"rows": rows, "minimal_requests": total, "by_endpoint": {FILLS: total}, "by_product_type": per}
