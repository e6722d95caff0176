"""The HTTP server: aiohttp app on 127.0.0.1 in a background thread with its own event loop.

Per API request, in this order (all before the first await, so log order = decision order):
arrival time -> authentication (signed endpoints) -> fault draw -> 429 burst / rate limit -> endpoint logic
-> fault applied -> log entry. Then the latency sleep (and the `slow` fault) and the answer.
Admin routes (/admin/...) need X-Admin-Token and are never logged, limited, delayed or faulted.
The server thread asks the OS for a higher priority than its clients' (where permitted), as a remote exchange's
arrival stamps do not wait for our client's processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import json
import os
import random
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from .accounts import DAY_MS, Account, AccountSpec, generate_account
from .activity_admin import ActivityAdmin
from .api import ACTIVITY_KINDS, ApiError, Exchange, error_body
from .auth import AuthError, authenticate
from .clock import DataClock, skewed_specs, timestamp_ok
from .config import SimulatorConfig
from .endpoints import EXTRA_KINDS, EXTRA_ROUTES, ExtraEndpoints, signed_limit
from .faults import FaultConfig, FaultInjector
from .lockout import IpCeiling
from .modes import AccountModes
from .ratelimit import SlidingWindowLimiter, max_in_window
from .reqlog import RequestLog
from .store import OrderStore
from .v3 import V3Orders, v3_truth
from .v3activity import v3_activity_truth

ROUTES = {  # path -> (endpoint kind, signed)
    "/api/v2/public/time": ("time", False),
    "/api/v2/mix/market/contracts": ("contracts", False),
    "/api/v2/mix/order/orders-history": ("history", True),
    "/api/v2/mix/order/orders-pending": ("pending", True),
}
ROUTES.update(EXTRA_ROUTES)  # v3 orders, account info (endpoints.py)
ROUTES.update({path: ("activity", True) for path in ACTIVITY_KINDS})  # plan orders, fills (api.py)
_HTML_5XX = ("<html>\r\n<head><title>{0}</title></head>\r\n<body>\r\n<center><h1>{0}</h1></center>\r\n"
             "<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n")
_5XX = ((502, "502 Bad Gateway"), (503, "503 Service Temporarily Unavailable"))


class Simulator(ActivityAdmin):  # plan-order and fill mutations: activity_admin.py
    """A Bitget v2 futures API simulator serving one or more generated accounts (distinct keys, separate
    rate limits). The data clock starts at the first account's `now_ms`; give every account the same
    `now_ms` unless you want the others' retention to be off by the difference."""

    def __init__(self, specs: Sequence[AccountSpec] | AccountSpec, config: SimulatorConfig | None = None):
        specs = [specs] if isinstance(specs, AccountSpec) else list(specs)
        if not specs or len({s.name for s in specs}) != len(specs):
            raise ValueError("need at least one account spec and unique account names")
        self.config = config = config or SimulatorConfig()
        specs = skewed_specs(specs, config.clock_skew_s)
        self.accounts: dict[str, Account] = {s.name: generate_account(s) for s in specs}
        self._by_key = {a.api_key: a for a in self.accounts.values()}
        self._by_uid = {a.uid: a for a in self.accounts.values()}
        self.stores = {name: OrderStore(a) for name, a in self.accounts.items()}
        self.clock = DataClock(self.accounts[specs[0].name].now_ms, frozen=config.frozen)
        self.exchange = Exchange(self.stores, self.clock, config)
        self.admin_token = config.admin_token or secrets.token_hex(16)
        self.faults = FaultInjector(config.faults, config.seed)
        self.limiter = SlidingWindowLimiter(1.0)
        self.modes = AccountModes(self.accounts, config.account_modes, config.mode_transition_s)
        self.extra = ExtraEndpoints(V3Orders(self.exchange), self.modes)
        self.ip_ceiling = (None if config.ip_limit is None
                           else IpCeiling(config.ip_limit, config.ip_window_s, config.ip_lockout_s))
        self._latency_rng = random.Random(f"{config.seed}:latency")
        self._log = RequestLog(config.request_log_path)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> Simulator:
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        # The accounts (and whatever the host process has loaded) live as long as the server: out of the cyclic
        # collector's walks, a full collection (100+ ms with dagster loaded) never stalls the event loop, which
        # would stamp the requests that queued meanwhile as arriving together and answer 429s nobody caused.
        gc.freeze()
        loop = self._loop = asyncio.new_event_loop()
        ready, failure = threading.Event(), []

        def run() -> None:
            _outrank_the_clients()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # surfaced to the caller of start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="bitget-sim", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    @property
    def thread_native_id(self) -> int | None:
        """The OS id of the thread that stamps arrivals (None before start)."""
        return self._thread.native_id if self._thread is not None else None

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/admin/{op}", self._admin)
        app.router.add_route("*", "/{tail:.*}", self._api)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the real port when port=0

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
        self._loop = self._thread = self._runner = None
        self._log.close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("simulator not started")
        return f"http://{self.config.host}:{self.port}"

    def _call(self, fn: Callable[..., Any], *args, **kwargs) -> Any:
        """Run on the server's loop thread (the only thread touching the stores) and wait."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return fn(*args, **kwargs)

        async def job():
            return fn(*args, **kwargs)
        return asyncio.run_coroutine_threadsafe(job(), loop).result()

    # -- Python API ------------------------------------------------------------------------------------------
    def credentials(self, name: str) -> dict:
        return self.accounts[name].credentials()

    def _retention_ms(self) -> int:
        return int(self.config.retention_days * DAY_MS)

    def _truth_blobs(self, name: str, shape: str = "v2", dataset: str = "orders",
                     include_expired: bool = False) -> list[bytes]:
        store = self.stores[name]
        if shape == "v3" and dataset != "orders":  # plan orders / fills as the v3 endpoints show them
            cut = None if include_expired else self.clock.now_ms() - self._retention_ms()
            return v3_activity_truth(store, dataset, cut)
        if dataset != "orders" or include_expired:  # plan_orders, fills; or everything ever created
            return store.truth_blobs(self.clock.now_ms(), self._retention_ms(), dataset, include_expired)
        positions = store.truth_positions(self.clock.now_ms(), self._retention_ms())
        if shape == "v3":
            return v3_truth(store, positions)
        if shape != "v2":
            raise ValueError(f"shape must be 'v2' or 'v3', not {shape!r}")
        return [store.blobs[p] for p in positions]

    def truth_bytes(self, name: str, shape: str = "v2", dataset: str = "orders",
                    include_expired: bool = False) -> list[bytes]:
        """Ground truth as the exact bytes the API returns per order, sorted by (cTime, orderId); `shape`
        "v3" = as the v3 endpoints return them (standard product types only). `dataset` "plan_orders" /
        "fills" (sorted by (cTime, orderId / tradeId)); `include_expired` = every row ever created."""
        return self._call(self._truth_blobs, name, shape, dataset, include_expired)

    def truth(self, name: str, shape: str = "v2", dataset: str = "orders",
              include_expired: bool = False) -> list[dict]:
        return [json.loads(b) for b in self.truth_bytes(name, shape, dataset, include_expired)]

    def account_mode(self, name: str) -> str:
        """`classic`, `unified`, `upgrading` or `switching`."""
        return self._call(self.modes.mode, name)

    def set_account_mode(self, name: str, mode: str, transition_s: float | None = None) -> dict:
        """Switch an account to `classic` or `unified`, through upgrading/switching for `transition_s`
        seconds (default config.mode_transition_s; 0 = at once)."""
        return self._call(self.modes.set, name, mode, transition_s)

    def _timestamp_ok(self, ts_ms: int) -> bool:
        cfg = self.config
        wall = int(time.time() * 1000) if cfg.accept_wall_clock and cfg.clock_skew_s is None else None
        return timestamp_ok(self.clock, ts_ms, int(cfg.timestamp_tolerance_s * 1000), wall)

    def request_log(self, since: float | None = None) -> list[dict]:
        return self._log.entries(since)

    def _uid(self, account: str) -> str:
        return self.accounts[account].uid if account in self.accounts else account

    def max_requests_per_window(self, account: str | None = None, endpoint: str | None = None,
                                window_s: float = 1.0, status: int | None = 200) -> int:
        """Most logged requests in any window [t, t + window_s), counting only HTTP `status` (200 = accepted;
        None = all), for one account (name or uid; None = any) and endpoint (path; None = any)."""
        uid = None if account is None else self._uid(account)
        times = [e["t"] for e in self._log.entries()
                 if (uid is None or e["account"] == uid) and (endpoint is None or e["endpoint"] == endpoint)
                 and (status is None or e["status"] == status)]
        return max_in_window(times, window_s)

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def freeze(self) -> int:
        return self.clock.freeze()

    def unfreeze(self) -> int:
        return self.clock.unfreeze()

    def advance(self, ms: int) -> int:
        return self.clock.advance(ms)

    def set_now(self, ms: int) -> int:
        return self.clock.set(ms)

    def _add(self, name: str, orders, generate: int, symbols, open_count: int) -> list[bytes]:
        store = self.stores[name]
        before = len(store.account.contracts), sum(map(len, store.account.contracts.values()))
        created = store.add_orders(self.clock.now_ms(), orders, generate, symbols, open_count)
        if (len(store.account.contracts), sum(map(len, store.account.contracts.values()))) != before:
            self.exchange.refresh_contracts()
        return created

    def add_orders(self, name: str, orders: list[dict] | None = None, generate: int = 0,
                   symbols: list[str] | None = None, open: int = 0) -> list[dict]:  # noqa: A002
        """Add orders to an account (ids above every existing id): partial dicts, and/or `generate` new
        finished plus `open` new open orders at the data clock's now."""
        return [json.loads(b) for b in self._call(self._add, name, orders, generate, symbols, open)]

    def _close(self, name: str, order_ids, status: str) -> list[bytes]:
        return self.stores[name].close_open(self.clock.now_ms(), order_ids, status)

    def close_open_orders(self, name: str, order_ids: list | None = None, status: str = "filled") -> list[dict]:
        """End open orders (all or the given ids) with `status`; they move from pending to history."""
        return [json.loads(b) for b in self._call(self._close, name, order_ids, status)]

    def set_faults(self, faults: FaultConfig) -> None:
        self._call(self.faults.set, faults)

    # -- API requests ----------------------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        t = time.time()  # arrival: the same float feeds the limiter and the log
        entry = {"t": t, "endpoint": request.path, "params": dict(request.rel_url.query), "account": None,
                 "status": None, "code": None, "fault": None}
        try:
            status, payload, ctype = self._decide(request, body, t, entry)
        except Exception as exc:  # a simulator bug must still answer and be logged
            status, ctype = 500, "application/json"
            payload = error_body("50000", f"simulator error: {exc!r}", self.clock.now_ms())
            entry.update(status=500, code="50000")
        headers = entry.pop("headers", None)  # answer headers, not logged
        self._log.append(entry)
        if self.config.latency is not None:
            await asyncio.sleep(self._latency_rng.uniform(*self.config.latency))
        fault = entry["fault"]
        if fault == "slow":
            await asyncio.sleep(self.faults.config.slow_seconds)
        elif fault == "reset":
            _reset(request)
            raise asyncio.CancelledError  # nothing may be written on the aborted connection
        return web.Response(body=payload, status=status, content_type=ctype, headers=headers)

    def _decide(self, request: web.Request, body: bytes, t: float, entry: dict) -> tuple[int, bytes, str]:
        cfg, now = self.config, self.clock.now_ms()
        json_ct = "application/json"
        if self.ip_ceiling is not None and not self.ip_ceiling.admit(request.remote or "?", t):
            entry.update(status=429, code="429", fault="ip_lockout")
            return 429, error_body("429", "Too Many Requests", now), json_ct
        route = ROUTES.get(request.path) if request.method == "GET" else None
        if route is None:
            entry.update(status=404, code="40404")
            return 404, error_body("40404", "Request URL NOT FOUND", now), json_ct
        kind, signed = route
        account = None
        if signed:
            try:
                account = authenticate(request.headers, request.method, request.rel_url.raw_path,
                                       request.rel_url.raw_query_string, body.decode("utf-8", "replace"),
                                       self._by_key, int(t * 1000), cfg.timestamp_tolerance_s,
                                       clock_ok=self._timestamp_ok)
            except AuthError as e:
                entry.update(status=400, code=e.code)
                return 400, error_body(e.code, e.msg, now), json_ct
            entry["account"] = who = account.uid
            limit = signed_limit(request.path, cfg)
        else:
            who, limit = request.remote or "?", cfg.public_rate_limit
        fault = self.faults.decide(who, signed)
        entry["fault"] = fault
        allowed = fault != "burst_429" and self.limiter.allow((who, request.path), t, limit)
        remain = self.limiter.remaining((who, request.path), t, limit)
        if remain is not None:
            entry["headers"] = {"x-mbx-used-remain-limit": str(remain if allowed else 0)}
        if not allowed:
            entry.update(status=429, code="429")
            return 429, error_body("429", "Too Many Requests", now), json_ct
        q = request.rel_url.query
        try:
            if signed:
                self.modes.check(account.name, request.path)
            if kind == "time":
                payload = self.exchange.server_time()
            elif kind == "contracts":
                payload = self.exchange.contracts_page(q)
            elif kind in EXTRA_KINDS:
                payload = self.extra.answer(kind, account, q, now)
            elif kind == "activity":
                payload = self.exchange.activity_page(request.path, account, q)
            else:
                payload = self.exchange.orders_page(account, q, pending=kind == "pending")
            status, code = 200, "00000"
        except ApiError as e:
            status, code, payload = e.status, e.code, error_body(e.code, e.msg, now)
        if fault == "error_5xx":
            status, title = self.faults.pick(_5XX)
            entry.update(status=status, code=None)
            return status, _HTML_5XX.format(title).encode(), "text/html"
        if fault == "reset":
            return 0, b"", json_ct  # status stays None in the log
        if fault == "truncated":
            status, payload = 200, payload[: len(payload) // 2]
        elif fault == "error_200":
            status, code = 200, "40015"
            payload = error_body(code, "System error, please try again later", now)
        elif fault == "release_window":
            status, code, msg = self.faults.release_answer()
            payload = error_body(code, msg, now)
        entry.update(status=status, code=code)
        return status, payload, json_ct

    # -- admin -----------------------------------------------------------------------------------------------
    async def _admin(self, request: web.Request) -> web.Response:
        token = request.headers.get("X-Admin-Token", "")
        if not hmac.compare_digest(token.encode(), self.admin_token.encode()):
            return web.json_response({"error": "admin token required"}, status=403)
        op, method = request.match_info["op"], request.method
        try:
            body = await request.json() if method == "POST" and request.can_read_body else {}
            return self._admin_op(op, method, request.rel_url.query, body or {})
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": repr(exc)}, status=400)

    def _admin_op(self, op: str, method: str, q, body: dict) -> web.Response:
        if op == "clock":
            if method == "POST":
                if body.get("set_ms") is not None:
                    self.clock.set(int(body["set_ms"]))
                if body.get("advance_ms"):
                    self.clock.advance(int(body["advance_ms"]))
                if body.get("freeze") is True:
                    self.clock.freeze()
                elif body.get("freeze") is False:
                    self.clock.unfreeze()
            return web.json_response(self.clock.state())
        if op == "orders" and method == "POST":
            created = self._add(body["account"], body.get("orders"), int(body.get("generate") or 0),
                                body.get("symbols"), int(body.get("open") or 0))
            return _json_bytes(b'{"created":[' + b",".join(created) + b"]}")
        if op == "close-open" and method == "POST":
            closed = self._close(body["account"], body.get("order_ids"), body.get("status") or "filled")
            return _json_bytes(b'{"closed":[' + b",".join(closed) + b"]}")
        if op == "requests":
            since = q.get("since")
            return web.json_response({"requests": self._log.entries(float(since) if since else None)})
        if op == "truth":
            dataset = q.get("dataset") or "orders"
            blobs = self._truth_blobs(q["account"], q.get("shape") or "v2", dataset, q.get("all") in ("1", "true"))
            return _json_bytes(b'{"%s":[' % dataset.encode() + b",".join(blobs) + b"]}")
        activity = self._activity_admin_op(op, method, body)  # plans, plan-trigger, plan-cancel, fills
        if activity is not None:
            return activity
        if op == "mode":
            if method == "POST":
                return web.json_response(self.modes.set(body["account"], body["mode"], body.get("transition_s")))
            return web.json_response(self.modes.state(q["account"]))
        if op == "faults":
            if method == "POST":
                self.faults.set(FaultConfig.from_dict(body))
            return web.json_response(self.faults.config.to_dict())
        if op == "accounts":
            return web.json_response({n: a.credentials() for n, a in self.accounts.items()})
        return web.json_response({"error": f"unknown admin route {method} /admin/{op}"}, status=404)


def _json_bytes(payload: bytes) -> web.Response:
    return web.Response(body=payload, content_type="application/json")


def _reset(request: web.Request) -> None:
    """Abort the connection with a TCP RST (linger 0) so the client sees 'connection reset'."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


# The exchange is another machine: its arrival stamps do not wait for our client's processes to yield a CPU.
# On a starved 2-core runner a late-scheduled server thread stamps one request late and the next ten on time,
# a 1-s window the client never sent (seen in CI: one 429 at 9.5/s). Without the privilege it stays as it was.
SERVER_NICE = -10


def _outrank_the_clients() -> None:
    # Not permitted, or no per-thread priority on this platform: the default priority.
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SERVER_NICE)
