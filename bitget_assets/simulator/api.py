"""The Bitget endpoints' logic, free of HTTP plumbing: parameters in, (HTTP status, code, body bytes) out.

Choices where the shared API notes are unsure (see also the package docstring):
- `limit` above 100 is capped at 100 (guess); not an integer -> 40020; below 1 -> 40017.
- Non-numeric idLessThan/startTime/endTime -> 40020; a non-numeric orderId matches nothing.
- Check order: 40019 productType, 40034 productType/symbol/status, 40020/40017 numbers, 40707 start > end,
  40704 start before the retention (5 minutes grace), 40705 span too long.
- Missing endTime = now for every check (the span check then allows the same 5 minutes grace, so
  "startTime = serverTime - 90 days" keeps working for a while).
- Missing startTime = max(endTime - span, now - retention); an empty page (not 40707) when that lies
  after an old endTime.
- Pending: the same parameters, but without times there is no window (an open order of any age is listed).
- Plan orders and fills (`_activity_page`): the same checks and defaults; planType is required (40019, then
  40034 for a value other than normal_plan/track_plan/profit_loss), planStatus `fail_trigger` is read as
  `fail_execute`; fills span SimulatorConfig.fills_span_days (40705), fill-history fill_history_span_days
  (00001); retention as orders (by the plan's/fill's cTime); plan-pending like orders-pending (no window) and,
  with empty_style "mixed", without an `endId` key on about half of its non-empty pages.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping

from .accounts import DAY_MS, Account
from .clock import DataClock
from .config import SimulatorConfig
from .plans import GROUPS, HISTORY_STATUSES, STATUS_ALIASES
from .store import OrderStore
from .symbols import DEMO_TYPES, STANDARD_TYPES, SymbolInfo, contract

GRACE_MS = 5 * 60_000
_EMPTY = (
    b'{"entrustedList":[],"endId":""}', b'{"entrustedList":[],"endId":null}',
    b'{"entrustedList":null,"endId":""}', b'{"entrustedList":null,"endId":null}',
)


class ApiError(Exception):
    def __init__(self, code: str, msg: str, status: int = 400):
        super().__init__(f"{code} {msg}")
        self.code, self.msg, self.status = code, msg, status


def error_body(code: str, msg: str, now_ms: int) -> bytes:
    return json.dumps({"code": code, "msg": msg, "requestTime": now_ms, "data": None},
                      separators=(",", ":")).encode()


def ok_body(data: bytes, now_ms: int) -> bytes:
    return b'{"code":"00000","msg":"success","requestTime":%d,"data":%s}' % (now_ms, data)


def _int_param(q: Mapping[str, str], name: str, code: str = "40020", msg: str = "Parameter {} error") -> int | None:
    """A non-negative integer parameter, None when absent; anything else answers `code` (v2 40020, v3 40017)."""
    raw = q.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise ApiError(code, msg.format(name))
    return int(raw)


def check_window(start: int | None, end: int | None, now: int, span_ms: int, cut: int,
                 span_error: tuple[str, str]) -> int:
    """Refuse a window as Bitget does (40707 start after end, 40704 older than retention, `span_error` too wide);
    return its end (now when none was given)."""
    end_or_now = now if end is None else end
    if start is not None:
        if start > end_or_now:
            raise ApiError("40707", "The start time is greater than the end time")
        if start < cut - GRACE_MS:
            raise ApiError("40704", "Only supports querying data within the last three months")
        if end_or_now - start > span_ms + (GRACE_MS if end is None else 0):
            raise ApiError(*span_error)
    return end_or_now


class Exchange:
    """All accounts of one server plus the shared contract list and the data clock."""

    def __init__(self, stores: Mapping[str, OrderStore], clock: DataClock, config: SimulatorConfig):
        self.stores = dict(stores)
        self.clock = clock
        self.config = config
        self._empty_rng = random.Random(f"{config.seed}:empty")
        self._endid_rng = random.Random(f"{config.seed}:endid")
        self.refresh_contracts()

    def refresh_contracts(self) -> None:
        """Union of every account's contracts (contract fields depend only on the symbol)."""
        by_type: dict[str, dict[str, SymbolInfo]] = {t: {} for t in STANDARD_TYPES}
        for store in self.stores.values():
            for pt, infos in store.account.contracts.items():
                for info in infos:
                    by_type.setdefault(pt, {}).setdefault(info.name, info)
        self.contracts = by_type
        self._contract_json = {
            pt: {name: json.dumps(contract(i), separators=(",", ":")).encode() for name, i in infos.items()}
            for pt, infos in by_type.items()
        }

    # -- public ----------------------------------------------------------------------------------------------
    def server_time(self) -> bytes:
        now = self.clock.now_ms()
        return ok_body(b'{"serverTime":"%d"}' % now, now)

    def contracts_page(self, q: Mapping[str, str]) -> bytes:
        pt = q.get("productType")
        if not pt:
            raise ApiError("40019", "Parameter productType cannot be empty")
        if pt not in self._contract_json:
            raise ApiError("40034", "Parameter productType does not exist")
        items = self._contract_json[pt]
        symbol = q.get("symbol")
        if symbol:
            if symbol not in items:
                raise ApiError("40034", "Parameter symbol does not exist")
            chosen = [items[symbol]]
        else:
            chosen = list(items.values())
        return ok_body(b"[" + b",".join(chosen) + b"]", self.clock.now_ms())

    # -- signed ----------------------------------------------------------------------------------------------
    def product_types(self, account: Account) -> set[str]:
        return set(STANDARD_TYPES) | {t for t in account.spec.product_types if t in DEMO_TYPES}

    def orders_page(self, account: Account, q: Mapping[str, str], pending: bool) -> bytes:
        pt = q.get("productType")
        if not pt:
            raise ApiError("40019", "Parameter productType cannot be empty")
        if pt not in self.product_types(account):
            raise ApiError("40034", "Parameter productType does not exist")
        symbol = q.get("symbol") or None
        if symbol is not None and symbol not in self.contracts.get(pt, {}):
            raise ApiError("40034", "Parameter symbol does not exist")
        status = q.get("status") or None
        if pending and status is not None and status not in ("live", "partially_filled"):
            raise ApiError("40034", "Parameter status does not exist")
        raw_limit = q.get("limit")
        if raw_limit is None or raw_limit == "":
            limit = 100
        else:
            try:
                limit = int(raw_limit)
            except ValueError:
                raise ApiError("40020", "Parameter limit error") from None
            if limit < 1:
                raise ApiError("40017", "Parameter verification failed")
            limit = min(limit, 100)
        id_lt = _int_param(q, "idLessThan")
        start = _int_param(q, "startTime")
        end = _int_param(q, "endTime")
        raw_oid = q.get("orderId") or None
        order_id = int(raw_oid) if raw_oid and raw_oid.isascii() and raw_oid.isdigit() else None

        now = self.clock.now_ms()
        cfg = self.config
        span, cut = int(cfg.max_span_days * DAY_MS), now - int(cfg.retention_days * DAY_MS)
        end_or_now = check_window(start, end, now, span, cut, ("40705", "The start and end time cannot exceed 90 days"))
        if pending:
            lower, upper = start or 0, 2**62 if end is None else end
        else:
            upper = end_or_now
            lower = max(start if start is not None else upper - span, cut)
        store = self.stores[account.name]
        positions = []
        if raw_oid is None or order_id is not None:  # a non-numeric orderId matches nothing
            positions = store.query(
                pending=pending, product_type=pt, symbol=symbol, lower=lower, upper=upper, id_lt=id_lt,
                limit=limit, order_id=order_id, client_oid=q.get("clientOid") or None,
                source=q.get("orderSource") or None, status=status)
        if positions:
            blobs = store.blobs
            data = (b'{"entrustedList":[' + b",".join([blobs[p] for p in positions])
                    + b'],"endId":"%d"}' % store.oids[positions[-1]])
        else:
            data = self._empty()
        return ok_body(data, now)

    def _empty(self) -> bytes:
        style = self.config.empty_style
        if style == "list":
            return _EMPTY[0]
        if style == "null":
            return _EMPTY[3]
        return _EMPTY[self._empty_rng.randrange(4)]

    def _empty_activity(self, plans: bool) -> bytes:
        return self._empty() if plans else _EMPTY_FILLS[_EMPTY.index(self._empty())]

    def activity_page(self, path: str, account: Account, q: Mapping[str, str]) -> bytes:
        """orders-plan-history/-pending, fills, fill-history (by request path)."""
        return _activity_page(self, ACTIVITY_KINDS[path], account, q)


# -- plan orders and fills ----------------------------------------------------------------------------------
# Paths of the endpoints below; server.py routes them to Exchange.activity_page.
PLAN_HISTORY = "/api/v2/mix/order/orders-plan-history"
PLAN_PENDING = "/api/v2/mix/order/orders-plan-pending"
FILLS = "/api/v2/mix/order/fills"
FILL_HISTORY = "/api/v2/mix/order/fill-history"
ACTIVITY_KINDS = {PLAN_HISTORY: "plan_history", PLAN_PENDING: "plan_pending", FILLS: "fills",
                  FILL_HISTORY: "fill_history"}
_EMPTY_FILLS = tuple(b.replace(b"entrustedList", b"fillList") for b in _EMPTY)


def _limit(q: Mapping[str, str]) -> int:
    raw = q.get("limit")
    if raw is None or raw == "":
        return 100
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError("40020", "Parameter limit error") from None
    if limit < 1:
        raise ApiError("40017", "Parameter verification failed")
    return min(limit, 100)


def _activity_page(ex: Exchange, kind: str, account: Account, q: Mapping[str, str]) -> bytes:
    """Plan history/pending and fills/fill-history: the orders endpoints' checks, in the same order, plus
    planType (plans) and the endpoint's own span (fill-history: 00001 beyond 7 days)."""
    pt = q.get("productType")
    if not pt:
        raise ApiError("40019", "Parameter productType cannot be empty")
    plans = kind.startswith("plan")
    group = q.get("planType") or None
    if plans and group is None:
        raise ApiError("40019", "Parameter planType cannot be empty")
    if pt not in ex.product_types(account):
        raise ApiError("40034", "Parameter productType does not exist")
    if plans and group not in GROUPS:
        raise ApiError("40034", "Parameter planType does not exist")
    symbol = q.get("symbol") or None
    if symbol is not None and symbol not in ex.contracts.get(pt, {}):
        raise ApiError("40034", "Parameter symbol does not exist")
    plan_status = q.get("planStatus") or None
    if kind == "plan_history" and plan_status is not None:
        plan_status = STATUS_ALIASES.get(plan_status, plan_status)
        if plan_status not in HISTORY_STATUSES:
            raise ApiError("40034", "Parameter planStatus does not exist")
    limit = _limit(q)
    id_lt, start, end = _int_param(q, "idLessThan"), _int_param(q, "startTime"), _int_param(q, "endTime")
    raw_oid = q.get("orderId") or None
    order_id = int(raw_oid) if raw_oid and raw_oid.isascii() and raw_oid.isdigit() else None

    now, cfg = ex.clock.now_ms(), ex.config
    span_days = {"fills": cfg.fills_span_days, "fill_history": cfg.fill_history_span_days}.get(
        kind, cfg.max_span_days)
    span, cut = int(span_days * DAY_MS), now - int(cfg.retention_days * DAY_MS)
    span_error = (("00001", f"startTime and endTime interval cannot be greater than {span_days:g} days")
                  if kind == "fill_history" else ("40705", f"The start and end time cannot exceed {span_days:g} days"))
    end_or_now = check_window(start, end, now, span, cut, span_error)
    if kind == "plan_pending":
        lower, upper = start or 0, 2**42 if end is None else end  # no window (2**42 ms: year 2109)
    else:
        upper = end_or_now
        lower = max(start if start is not None else upper - span, cut)
    store = ex.stores[account.name]
    si = store.symbol_index.get(symbol) if symbol else None
    positions: list[int] = []
    known_symbol = symbol is None or (si is not None and store.account.symbols[si].product_type == pt)
    if known_symbol and (raw_oid is None or order_id is not None):  # a non-numeric orderId matches nothing
        if plans:
            needles = []
            if plan_status is not None:
                needles.append(b'"planStatus":"%s"' % plan_status.encode())
            if q.get("clientOid"):
                needles.append(b'"clientOid":' + json.dumps(q["clientOid"], ensure_ascii=False).encode() + b",")
            book = store.plans
            positions = book.query(live=kind == "plan_pending", product_type=pt, group=group, symbol_idx=si,
                                   lower=lower, upper=upper, id_lt=id_lt, limit=limit, order_id=order_id,
                                   needles=needles)
            ids = book.ids
        else:
            book = store.fills
            if order_id is not None:  # the order's own symbol and [cTime, uTime] bound its fills
                bounds = store.order_bounds(order_id)
                if bounds is None or (si is not None and si != bounds[0]) \
                        or store.account.symbols[bounds[0]].product_type != pt:
                    bounds = None
                else:
                    si, lower, upper = bounds[0], max(lower, bounds[1]), min(upper, bounds[2])
            if order_id is None or bounds is not None:
                positions = book.query(product_type=pt, symbol_idx=si, lower=lower, upper=upper, id_lt=id_lt,
                                       limit=limit, order_id=order_id)
            ids = book.tids
    list_key = b"entrustedList" if plans else b"fillList"
    if not positions:
        return ok_body(ex._empty_activity(plans), now)
    data = b'{"%s":[%s]' % (list_key, b",".join([book.blobs[p] for p in positions]))
    # Live pending answers were seen without `endId`: "mixed" leaves it out of some pending pages.
    if kind == "plan_pending" and ex.config.empty_style == "mixed" and ex._endid_rng.random() < 0.5:
        return ok_body(data + b"}", now)
    return ok_body(data + b',"endId":"%d"}' % ids[positions[-1]], now)
