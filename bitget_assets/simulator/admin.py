"""Client for the simulator's admin routes, for tests and tools in other processes."""

from __future__ import annotations

import requests

from .faults import FaultConfig
from .ratelimit import max_in_window


class AdminClient:
    def __init__(self, base_url: str, token: str, timeout: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["X-Admin-Token"] = token

    def _req(self, method: str, route: str, **kw):
        r = self.session.request(method, f"{self.base_url}/admin/{route}", timeout=self.timeout, **kw)
        if r.status_code != 200:
            raise RuntimeError(f"admin {route}: HTTP {r.status_code} {r.text[:300]}")
        return r.json()

    # clock
    def clock(self) -> dict:
        return self._req("GET", "clock")

    def set_clock(self, *, freeze: bool | None = None, advance_ms: int | None = None,
                  set_ms: int | None = None) -> dict:
        body = {k: v for k, v in (("freeze", freeze), ("advance_ms", advance_ms), ("set_ms", set_ms))
                if v is not None}
        return self._req("POST", "clock", json=body)

    def now_ms(self) -> int:
        return self.clock()["now_ms"]

    def freeze(self) -> dict:
        return self.set_clock(freeze=True)

    def unfreeze(self) -> dict:
        return self.set_clock(freeze=False)

    def advance(self, ms: int) -> dict:
        return self.set_clock(advance_ms=ms)

    def set_now(self, ms: int) -> dict:
        return self.set_clock(set_ms=ms)

    # orders
    def add_orders(self, account: str, orders: list[dict] | None = None, generate: int = 0,
                   symbols: list[str] | None = None, open: int = 0) -> list[dict]:  # noqa: A002
        body = {"account": account, "orders": orders, "generate": generate, "symbols": symbols, "open": open}
        return self._req("POST", "orders", json=body)["created"]

    def close_open_orders(self, account: str, order_ids: list | None = None, status: str = "filled") -> list[dict]:
        body = {"account": account, "order_ids": order_ids, "status": status}
        return self._req("POST", "close-open", json=body)["closed"]

    def truth(self, account: str, shape: str = "v2", dataset: str = "orders",
              include_expired: bool = False) -> list[dict]:
        """Rows of `dataset` (orders, plan_orders, fills) the API can return now, sorted by (cTime, id);
        `include_expired`: every row ever created."""
        params = {"account": account, "shape": shape, "dataset": dataset, "all": "1" if include_expired else ""}
        return self._req("GET", "truth", params=params)[dataset]

    # plan orders and fills (activity_admin.py)
    def add_plans(self, account: str, plans: list[dict] | None = None, generate: int = 0,
                  symbols: list[str] | None = None) -> list[dict]:
        body = {"account": account, "plans": plans, "generate": generate, "symbols": symbols}
        return self._req("POST", "plans", json=body)["created"]

    def trigger_plan(self, account: str, plan_id: str | int) -> dict:
        """{"plan": ..., "order": ..., "fills": [...]}"""
        return self._req("POST", "plan-trigger", json={"account": account, "plan_id": str(plan_id)})

    def cancel_plans(self, account: str, plan_ids: list | None = None, status: str = "cancelled") -> list[dict]:
        body = {"account": account, "plan_ids": plan_ids, "status": status}
        return self._req("POST", "plan-cancel", json=body)["plans"]

    def add_fills(self, account: str, order_id: str | int, base_volume: str | None = None, count: int = 1,
                  ctime: int | None = None) -> list[dict]:
        body = {"account": account, "order_id": str(order_id), "base_volume": base_volume, "count": count,
                "ctime": ctime}
        return self._req("POST", "fills", json=body)["fills"]

    # account mode (classic / unified, upgrading / switching while a switch lasts)
    def account_mode(self, account: str) -> dict:
        """{"account", "mode", "target", "seconds_left"}."""
        return self._req("GET", "mode", params={"account": account})

    def set_account_mode(self, account: str, mode: str, transition_s: float | None = None) -> dict:
        body = {"account": account, "mode": mode, "transition_s": transition_s}
        return self._req("POST", "mode", json=body)

    # observation and faults
    def request_log(self, since: float | None = None) -> list[dict]:
        params = {} if since is None else {"since": repr(since)}
        return self._req("GET", "requests", params=params)["requests"]

    def max_requests_per_window(self, uid: str | None = None, endpoint: str | None = None,
                                window_s: float = 1.0, status: int | None = 200) -> int:
        times = [e["t"] for e in self.request_log()
                 if (uid is None or e["account"] == uid) and (endpoint is None or e["endpoint"] == endpoint)
                 and (status is None or e["status"] == status)]
        return max_in_window(times, window_s)

    def faults(self) -> dict:
        return self._req("GET", "faults")

    def set_faults(self, faults: FaultConfig | dict | None = None, **fields) -> dict:
        body = faults.to_dict() if isinstance(faults, FaultConfig) else dict(faults or {})
        body.update(fields)
        FaultConfig.from_dict(body)  # validate here: a clear error instead of an HTTP 400
        return self._req("POST", "faults", json=body)

    def accounts(self) -> dict:
        return self._req("GET", "accounts")
