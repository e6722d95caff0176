"""Every list endpoint the extraction reads, as data: the paging engine (bitget_assets.paging) knows no endpoint.

A stream spec says where the rows are (path, list field), how to ask for the next page (cursor rule), what the
product-type parameter is called, which window the server accepts and what to do when it refuses one, how
`symbol` is treated, and the endpoint's own rate. Facts and their sources: docs/api-notes.md.
"""

from dataclasses import dataclass

DAY_MS = 86_400_000
RETENTION_MS = 90 * DAY_MS
# v2 history spans: sources say 90 days or one week, so on a span error fall back to 7, then 1 day (no guess between).
V2_SPANS_MS = (90 * DAY_MS, 7 * DAY_MS, DAY_MS)
V3_SPANS_MS = (30 * DAY_MS, 7 * DAY_MS, DAY_MS)  # v3 documents at most 30 days per query
PAGE_LIMIT = 100

# Error codes the exchange uses for "window too wide" (which endpoint sends which is unverified: any shrinks it).
SPAN_ERROR_CODES = frozenset({"40705", "00001", "43111"})

SYMBOL_OPTIONAL, SYMBOL_REQUIRED, SYMBOL_NONE = "optional", "required", "none"
CURSOR_END_ID, CURSOR_V3, CURSOR_NONE = "endId", "cursor", None


@dataclass(frozen=True)
class StreamSpec:
    """One list endpoint (one `planType`/`type` value of it) as the engine reads it."""

    name: str  # unique, e.g. "plan_history:normal_plan"; recorded in coverage
    dataset: str  # the output it feeds: "orders", "plan_orders", "fills"
    source: str  # "history" (finished rows) or "pending" (open rows, read whole each time)
    path: str
    list_field: str | None  # rows under data[list_field]; None: data is a bare array, unpaged
    id_field: str  # the row's key; also the cursor when an answer omits it
    time_field: str  # the row's creation time (ms), on which windows are cut
    cursor: str | None = CURSOR_END_ID  # "endId": data.endId -> idLessThan; "cursor": data.cursor -> cursor
    product_param: str = "productType"  # v3 calls it "category"
    symbol: str = SYMBOL_OPTIONAL  # "optional", "required", or "none" (a symbol read filters an account-wide one)
    fixed: tuple[tuple[str, str], ...] = ()  # sent with every request, e.g. (("planType", "normal_plan"),)
    spans_ms: tuple[int, ...] | None = V2_SPANS_MS  # widest first; None: no startTime/endTime at all
    fallback: str | None = None  # stream read instead when this one refuses a span or is unsupported
    required_fields: tuple[str, ...] = ()
    rate_per_s: float = 10.0
    limit: int = PAGE_LIMIT
    version: int = 2

    @property
    def windowed(self) -> bool:
        return self.spans_ms is not None

    @property
    def paged(self) -> bool:
        return self.cursor is not None

    def params(self, product_type: str, *, symbol: str | None = None, start_ms: int | None = None,
               end_ms: int | None = None, cursor: str | None = None) -> dict:
        """The query of one request, without the parameters that have no value."""
        if self.symbol == SYMBOL_NONE:
            symbol = None  # not accepted: the caller filters rows instead
        elif self.symbol == SYMBOL_REQUIRED and not symbol:
            raise ValueError(f"{self.name}: {self.path} needs a symbol")
        params = {self.product_param: product_type, "symbol": symbol, **dict(self.fixed)}
        if self.windowed:
            params |= {"startTime": start_ms, "endTime": end_ms}
        if self.paged:
            params |= {"limit": self.limit, ("idLessThan" if self.cursor == CURSOR_END_ID else "cursor"): cursor}
        return {k: v for k, v in params.items() if v is not None}


ORDER_FIELDS = ("orderId", "cTime", "symbol")
FILL_FIELDS = ("tradeId", "cTime", "symbol")
V3_ORDER_FIELDS = ("orderId", "createdTime", "symbol")
V3_FILL_FIELDS = ("execId", "createdTime", "symbol")

ORDERS_HISTORY = StreamSpec("orders_history", "orders", "history", "/api/v2/mix/order/orders-history",
                            "entrustedList", "orderId", "cTime", required_fields=ORDER_FIELDS)
ORDERS_PENDING = StreamSpec("orders_pending", "orders", "pending", "/api/v2/mix/order/orders-pending",
                            "entrustedList", "orderId", "cTime", spans_ms=None, required_fields=ORDER_FIELDS)
PLAN_TYPES = ("normal_plan", "track_plan", "profit_loss")  # every sub-kind of TP/SL comes under profit_loss


def _plan(source: str, plan_type: str) -> StreamSpec:
    path = "/api/v2/mix/order/orders-plan-history" if source == "history" else "/api/v2/mix/order/orders-plan-pending"
    return StreamSpec(f"plan_{source}:{plan_type}", "plan_orders", source, path, "entrustedList", "orderId", "cTime",
                      fixed=(("planType", plan_type),), spans_ms=V2_SPANS_MS if source == "history" else None,
                      required_fields=ORDER_FIELDS)


PLAN_HISTORY = tuple(_plan("history", t) for t in PLAN_TYPES)
PLAN_PENDING = tuple(_plan("pending", t) for t in PLAN_TYPES)
# `fills` serves the whole 90-day window in one span where it works; `fill-history` is documented with a one-week
# span in most copies, so it is only the fallback (docs/api-notes.md, "Fills").
FILL_HISTORY = StreamSpec("fill_history", "fills", "history", "/api/v2/mix/order/fill-history", "fillList",
                          "tradeId", "cTime", spans_ms=(7 * DAY_MS, DAY_MS), required_fields=FILL_FIELDS)
FILLS = StreamSpec("fills", "fills", "history", "/api/v2/mix/order/fills", "fillList", "tradeId", "cTime",
                   spans_ms=(90 * DAY_MS,), fallback=FILL_HISTORY.name, required_fields=FILL_FIELDS)

# Bitget's UTA (v3) endpoints: 20/s, cursor paging, 30-day span, `category` instead of `productType`.
_V3 = dict(cursor=CURSOR_V3, product_param="category", spans_ms=V3_SPANS_MS, rate_per_s=20.0, version=3)
V3_ORDERS_HISTORY = StreamSpec("v3_orders_history", "orders", "history", "/api/v3/trade/history-orders", "list",
                               "orderId", "createdTime", required_fields=V3_ORDER_FIELDS, **_V3)
V3_ORDERS_PENDING = StreamSpec("v3_orders_pending", "orders", "pending", "/api/v3/trade/unfilled-orders", "list",
                               "orderId", "createdTime", required_fields=V3_ORDER_FIELDS,
                               **(_V3 | {"spans_ms": None}))
V3_STRATEGY_TYPES = ("tpsl", "trigger")
V3_PLAN_HISTORY = tuple(
    StreamSpec(f"v3_plan_history:{t}", "plan_orders", "history", "/api/v3/trade/history-strategy-orders", "list",
               "orderId", "createdTime", symbol=SYMBOL_NONE, fixed=(("type", t),), required_fields=V3_ORDER_FIELDS,
               **_V3)
    for t in V3_STRATEGY_TYPES
)
V3_PLAN_PENDING = tuple(
    StreamSpec(f"v3_plan_pending:{t}", "plan_orders", "pending", "/api/v3/trade/unfilled-strategy-orders", None,
               "orderId", "createdTime", cursor=CURSOR_NONE, product_param="category", symbol=SYMBOL_NONE,
               fixed=(("type", t),), spans_ms=None, required_fields=V3_ORDER_FIELDS, rate_per_s=20.0, version=3)
    for t in V3_STRATEGY_TYPES
)
V3_FILLS = StreamSpec("v3_fills", "fills", "history", "/api/v3/trade/fills", "list", "execId", "createdTime",
                      symbol=SYMBOL_NONE, required_fields=V3_FILL_FIELDS, **_V3)

V2_STREAMS = (ORDERS_HISTORY, ORDERS_PENDING, *PLAN_HISTORY, *PLAN_PENDING, FILLS, FILL_HISTORY)
V3_STREAMS = (V3_ORDERS_HISTORY, V3_ORDERS_PENDING, *V3_PLAN_HISTORY, *V3_PLAN_PENDING, V3_FILLS)
BY_NAME = {s.name: s for s in (*V2_STREAMS, *V3_STREAMS)}

DATASETS = ("orders", "plan_orders", "fills")
DEFAULT_DATASETS = ("orders", "plan_orders")  # fills are off unless asked for


def streams_of(dataset: str, *, version: int = 2) -> tuple[StreamSpec, ...]:
    """The streams that together read a dataset; a fallback stream is reached through its primary only."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}")
    pool = V2_STREAMS if version == 2 else V3_STREAMS
    fallbacks = {s.fallback for s in pool if s.fallback}
    return tuple(s for s in pool if s.dataset == dataset and s.name not in fallbacks)


def check_datasets(datasets) -> tuple[str, ...]:
    """Datasets in canonical order; orders always come first (everything else keys off their partitions)."""
    return tuple(d for d in DATASETS if d in ordered_datasets(datasets) or d == "orders")


def ordered_datasets(datasets) -> tuple[str, ...]:
    """The named datasets, validated, in canonical order."""
    unknown = set(datasets) - set(DATASETS)
    if unknown:
        raise ValueError(f"unknown dataset(s) {sorted(unknown)}: expected some of {', '.join(DATASETS)}")
    return tuple(d for d in DATASETS if d in datasets)
