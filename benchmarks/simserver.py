"""The simulator as a separate process (its own GIL, as a remote exchange would be), and its request log.

`bitget-sim serve` prints one JSON line (base_url, credentials, admin token) once it listens; the request
log it appends to is the referee: requests (every endpoint), 429s and the busiest 1-second window of each
endpoint's budget are counted there, never from the client's own counters.
"""

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bitget_assets.simulator.ratelimit import max_in_window

HISTORY = "/api/v2/mix/order/orders-history"
PENDING = "/api/v2/mix/order/orders-pending"
ORDER_ENDPOINTS = (HISTORY, PENDING)
LIST_ENDPOINTS = (HISTORY, PENDING, "/api/v2/mix/order/orders-plan-history", "/api/v2/mix/order/orders-plan-pending",
                  "/api/v2/mix/order/fills", "/api/v2/mix/order/fill-history")
SERVER_TIME = "/api/v2/public/time"


class SimulatorProcess:
    """`with SimulatorProcess(flags, log_path) as sim: info = sim.wait()`; stopped (SIGTERM) on exit."""

    def __init__(self, flags: list[str], request_log: Path, lazy_activity: bool = False):
        # lazy_activity: plan orders and fills generated on first use (benchmarks/lazy_sim.py), for orders-only
        # runs of big accounts whose start-up they would dominate.
        module = "benchmarks.lazy_sim" if lazy_activity else "bitget_assets.simulator.cli"
        self.cmd = [sys.executable, "-m", module, "serve", "--port", "0",
                    "--host", "127.0.0.1", "--request-log", str(request_log), *flags]
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self.ready_s = 0.0

    def __enter__(self) -> "SimulatorProcess":
        self.began = time.time()
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
        return self

    def wait(self) -> dict:
        """The simulator's JSON line, once it listens (generating a big account takes a while)."""
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            raise RuntimeError(f"simulator did not start (exit code {self.proc.returncode}): {' '.join(self.cmd)}")
        self.info = json.loads(line)
        if not self.info["base_url"].startswith("http://127.0.0.1:"):
            raise RuntimeError(f"simulator is not on loopback: {self.info['base_url']}")
        self.ready_s = time.time() - self.began
        return self.info

    def __exit__(self, *exc) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def analyse_log(path: Path, uid: str) -> dict:
    """Requests per endpoint and status, 429s, and the busiest 1-s windows of this account (all arrivals).

    `requests`, `rate_limited` and `max_per_second` count every endpoint the run used (each is its own budget
    at Bitget: the busiest one is reported); the `order_*` figures keep the orders endpoints alone."""
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    order = [e for e in entries if e["endpoint"] in ORDER_ENDPOINTS]
    listing = [e for e in entries if e["endpoint"] in LIST_ENDPOINTS]
    by_endpoint = Counter(e["endpoint"].rsplit("/", 1)[-1] for e in order)
    by_path = Counter(e["endpoint"] for e in entries)
    by_status = Counter(str(e["status"]) for e in entries)
    by_code = Counter(str(e["code"]) for e in entries)
    rate_limited_by_path = Counter(e["endpoint"] for e in entries if e["status"] == 429)

    def busiest(endpoint: str, accepted_only: bool = False) -> int:
        return max_in_window(
            [e["t"] for e in entries if e["account"] == uid and e["endpoint"] == endpoint
             and (not accepted_only or e["status"] == 200)],
            1.0,
        )

    max_by_path = {p: busiest(p) for p in sorted(by_path) if p != SERVER_TIME}  # time: public, per IP
    times = [e["t"] for e in listing]
    return {
        "requests": len(entries),
        "requests_by_path": dict(sorted(by_path.items())),
        "order_requests": len(order),
        "requests_by_endpoint": dict(sorted(by_endpoint.items())),
        "requests_by_status": dict(sorted(by_status.items())),
        "requests_by_code": dict(sorted(by_code.items())),
        "rate_limited": sum(rate_limited_by_path.values()),
        "rate_limited_by_path": dict(sorted(rate_limited_by_path.items())),
        "order_rate_limited": sum(1 for e in order if e["status"] == 429),
        "other_requests": len(entries) - len(listing),  # server time, account probes
        # Every arrival counts here, even one the server refused: it is what we sent.
        "max_per_second": max(max_by_path.values(), default=0),
        "max_per_second_by_path": max_by_path,
        "max_per_second_history": busiest(HISTORY),
        "max_per_second_accepted": busiest(HISTORY, accepted_only=True),
        "max_per_second_pending": busiest(PENDING),
        "max_per_second_all_endpoints": max_in_window([e["t"] for e in entries], 1.0),  # the IP's view
        "first_request_t": min(times) if times else None,
        "last_request_t": max(times) if times else None,
        "first_any_request_t": min((e["t"] for e in entries), default=None),
    }
