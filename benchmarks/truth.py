"""Ground truth of a scenario's account, and the fewest requests any client could extract it with.

The account is generated from the same AccountSpec as the simulator process (generation is a pure
function of the spec), so nothing here asks the server. Cost model (docs/api-notes.md, cost model): a paging
walk over one window needs `finished // 100 + 1` history pages (a walk only ends on a short page, so
exactly 100 orders cost two), per product type and per server window; open orders cost
`open // 100 + 1` pending pages per product type. The floor is that many requests at 10 per second.
"""

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from bitget_assets.scan import windows  # the same windows the scan walks
from bitget_assets.simulator.accounts import DAY_MS, AccountSpec, generate_account

PAGE = 100
RATE_LIMIT = 10  # Bitget: order-history requests per second per account


@dataclass
class Truth:
    order_ids: set[int]
    orders: int
    symbols: int
    minimal_requests: int
    minimal_by_product_type: dict[str, dict]
    windows_per_product_type: int

    @property
    def floor_s(self) -> float:
        return self.minimal_requests / RATE_LIMIT


def expected(spec: AccountSpec, *, max_span_days: float = 90, retention_days: float = 90,
             product_types: tuple[str, ...] | None = None) -> Truth:
    """What a complete extraction returns, and its minimal request count on a server with this span."""
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
    per_type, minimal = {}, 0
    for pt in types:
        ctimes = sorted(finished_ctimes.get(pt, []))
        counts = [bisect_right(ctimes, hi) - bisect_left(ctimes, lo) for lo, hi in spans]
        history_pages = sum(c // PAGE + 1 for c in counts)
        pending_pages = open_count.get(pt, 0) // PAGE + 1
        per_type[pt] = {"finished": len(ctimes), "open": open_count.get(pt, 0),
                        "history_pages": history_pages, "pending_pages": pending_pages}
        minimal += history_pages + pending_pages
    return Truth(ids, len(ids), len(symbols), minimal, per_type, len(spans))
