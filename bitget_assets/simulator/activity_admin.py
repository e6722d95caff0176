"""Simulator methods and admin routes that change plan orders and fills (mixed into `Simulator`).

Admin routes (POST, JSON body with "account"):
- /admin/plans          {"plans": [partial plan dicts], "generate": n, "symbols": [...]} -> {"created": [...]}
- /admin/plan-trigger   {"plan_id": id} -> {"plan": {...}, "order": {...}, "fills": [...]}
- /admin/plan-cancel    {"plan_ids": [...] | null, "status": "cancelled" | "fail_execute"} -> {"plans": [...]}
- /admin/fills          {"order_id": id, "base_volume": "0.5" | null, "count": 1, "ctime": ms | null}
                        -> {"fills": [...]}
Ground truth per dataset is GET /admin/truth?account=&dataset=&all=1 (server.py).
"""

from __future__ import annotations

import json

from aiohttp import web


def _rows(blobs: list[bytes]) -> bytes:
    return b"[" + b",".join(blobs) + b"]"


class ActivityAdmin:
    """Needs `self.stores`, `self.clock`, `self._call` and `self.exchange` (the Simulator's)."""

    def _add_plans(self, name: str, plans, generate: int, symbols) -> list[bytes]:
        store = self.stores[name]
        before = sum(map(len, store.account.contracts.values()))
        made = store.add_plans(self.clock.now_ms(), plans, generate, symbols)
        if sum(map(len, store.account.contracts.values())) != before:
            self.exchange.refresh_contracts()
        return made

    def add_plans(self, name: str, plans: list[dict] | None = None, generate: int = 0,
                  symbols: list[str] | None = None) -> list[dict]:
        """New plan orders at the data clock's now: partial dicts (`planType` a kind such as `pos_profit`,
        `planStatus` live by default) and/or `generate` random live plans."""
        return [json.loads(b) for b in self._call(self._add_plans, name, plans, generate, symbols)]

    def _trigger(self, name: str, plan_id) -> tuple[bytes, bytes, list[bytes]]:
        return self.stores[name].trigger_plan(self.clock.now_ms(), plan_id)

    def trigger_plan(self, name: str, plan_id: str | int) -> dict:
        """A live plan fires: {"plan": executed plan, "order": the filled order it spawned, "fills": [...]}."""
        plan, order, fills = self._call(self._trigger, name, plan_id)
        return {"plan": json.loads(plan), "order": json.loads(order), "fills": [json.loads(f) for f in fills]}

    def _cancel(self, name: str, plan_ids, status: str) -> list[bytes]:
        return self.stores[name].cancel_plans(self.clock.now_ms(), plan_ids, status)

    def cancel_plans(self, name: str, plan_ids: list | None = None, status: str = "cancelled") -> list[dict]:
        """End live plans (all, or the given ids) as `cancelled` or `fail_execute`."""
        return [json.loads(b) for b in self._call(self._cancel, name, plan_ids, status)]

    def _add_fills(self, name: str, order_id, base_volume, count: int, ctime) -> list[bytes]:
        return self.stores[name].add_fills(self.clock.now_ms(), order_id, base_volume, count, ctime)

    def add_fills(self, name: str, order_id: str | int, base_volume: str | None = None, count: int = 1,
                  ctime: int | None = None) -> list[dict]:
        """Late fills of an order (default: the rest of its size, at now; `ctime` may lie in the past)."""
        return [json.loads(b) for b in self._call(self._add_fills, name, order_id, base_volume, count, ctime)]

    def _activity_admin_op(self, op: str, method: str, body: dict) -> web.Response | None:
        """The admin routes above, or None when `op` is not one of them."""
        if method != "POST" or op not in ("plans", "plan-trigger", "plan-cancel", "fills"):
            return None
        name = body["account"]
        if op == "plans":
            made = self._add_plans(name, body.get("plans"), int(body.get("generate") or 0), body.get("symbols"))
            payload = b'{"created":' + _rows(made) + b"}"
        elif op == "plan-trigger":
            plan, order, fills = self._trigger(name, body["plan_id"])
            payload = b'{"plan":%s,"order":%s,"fills":%s}' % (plan, order, _rows(fills))
        elif op == "plan-cancel":
            payload = b'{"plans":' + _rows(self._cancel(name, body.get("plan_ids"),
                                                         body.get("status") or "cancelled")) + b"}"
        else:
            made = self._add_fills(name, body["order_id"], body.get("base_volume"), int(body.get("count") or 1),
                                   body.get("ctime"))
            payload = b'{"fills":' + _rows(made) + b"}"
        return web.Response(body=payload, content_type="application/json")
