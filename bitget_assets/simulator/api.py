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
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping

from .accounts import DAY_MS, Account
from .clock import DataClock
from .config import SimulatorConfig
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


def _int_param(q: Mapping[str, str], name: str) -> int | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise ApiError("40020", f"Parameter {name} error")
    return int(raw)


class Exchange:
    """All accounts of one server plus the shared contract list and the data clock."""

    def __init__(self, stores: Mapping[str, OrderStore], clock: DataClock, config: SimulatorConfig):
        self.stores = dict(stores)
        self.clock = clock
        self.config = config
        self._empty_rng = random.Random(f"{config.seed}:empty")
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
        end_or_now = now if end is None else end
        if start is not None:
            if start > end_or_now:
                raise ApiError("40707", "The start time is greater than the end time")
            if start < cut - GRACE_MS:
                raise ApiError("40704", "Only supports querying data within the last three months")
            if end_or_now - start > span + (GRACE_MS if end is None else 0):
                raise ApiError("40705", "The start and end time cannot exceed 90 days")
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
