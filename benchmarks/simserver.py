"""The simulator as a separate process (its own GIL, as a remote exchange would be), and its request log.

`bitget-sim serve` prints one JSON line (base_url, credentials, admin token) once it listens; the request
log it appends to is the referee: requests, 429s and the busiest 1-second window are counted there,
never from the client's own counters.
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


class SimulatorProcess:
    """`with SimulatorProcess(flags, log_path) as sim: info = sim.wait()`; stopped (SIGTERM) on exit."""

    def __init__(self, flags: list[str], request_log: Path):
        self.cmd = [sys.executable, "-m", "bitget_assets.simulator.cli", "serve", "--port", "0",
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
    """Requests per endpoint and status, 429s, and the busiest 1-s windows of this account (all arrivals)."""
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    order = [e for e in entries if e["endpoint"] in ORDER_ENDPOINTS]
    by_endpoint = Counter(e["endpoint"].rsplit("/", 1)[-1] for e in order)
    by_status = Counter(str(e["status"]) for e in order)
    by_code = Counter(str(e["code"]) for e in order)

    def busiest(endpoint: str, accepted_only: bool) -> int:
        return max_in_window(
            [e["t"] for e in order if e["account"] == uid and e["endpoint"] == endpoint
             and (not accepted_only or e["status"] == 200)],
            1.0,
        )

    times = [e["t"] for e in order]
    return {
        "requests": len(order),
        "requests_by_endpoint": dict(sorted(by_endpoint.items())),
        "requests_by_status": dict(sorted(by_status.items())),
        "requests_by_code": dict(sorted(by_code.items())),
        "rate_limited": by_status.get("429", 0),
        "other_requests": len(entries) - len(order),  # server time, contracts
        # Every arrival counts here, even one the server refused: it is what we sent.
        "max_per_second": busiest(HISTORY, accepted_only=False),
        "max_per_second_accepted": busiest(HISTORY, accepted_only=True),
        "max_per_second_pending": busiest(PENDING, accepted_only=False),
        "first_request_t": min(times) if times else None,
        "last_request_t": max(times) if times else None,
    }
