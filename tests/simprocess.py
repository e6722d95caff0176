"""A simulator in a process of its own, for tests that judge the client's pace by the server's arrival stamps.

The live exchange is another machine. A simulator inside the suite's process shares one GIL with pytest's main
thread, the batch threads and the other simulators: a long C call there (`json.loads` of a truth, a frame turned
into dicts) holds the GIL for tens of ms, and the server's loop then stamps the requests that queued meanwhile
as arriving late. One late stamp followed by ten on time is a 1-s window the client never sent: CI saw a 429
at 9.5/s twice. Its own process has its own GIL and collector, and (where permitted) outranks the clients
(server.py).

`SimulatorProcess` answers the calls those tests make (base_url, accounts, credentials, truth, request_log,
max_requests_per_window, add_orders, close_open_orders, set_faults, stop) through the admin routes.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from bitget_assets.simulator import AccountSpec, AdminClient, FaultConfig, Simulator, SimulatorConfig

ROOT = Path(__file__).resolve().parents[1]
_CHILD = "from tests.simprocess import serve_from_stdin; serve_from_stdin()"


class SimulatorProcess:
    def __init__(self, specs: Sequence[AccountSpec] | AccountSpec, config: SimulatorConfig | None = None,
                 secrets: dict[str, tuple[str, str]] | None = None):
        """`secrets`: account name -> (api secret, passphrase) the account signs with instead of generated ones."""
        self._payload = ([specs] if isinstance(specs, AccountSpec) else list(specs), config or SimulatorConfig(),
                         dict(secrets or {}))
        self._proc: subprocess.Popen | None = None
        self.admin: AdminClient | None = None
        self.accounts: dict[str, dict] = {}  # name -> credentials
        self.base_url = self.admin_token = ""

    def start(self) -> SimulatorProcess:
        # The child serves until its stdin closes: when stop() closes it, or when this process dies.
        self._proc = subprocess.Popen([sys.executable, "-c", _CHILD], cwd=ROOT, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE)
        pickle.dump(self._payload, self._proc.stdin)
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError(f"the simulator process did not start (exit code {self._proc.returncode})")
        info = json.loads(line)
        self.base_url, self.admin_token, self.accounts = info["base_url"], info["admin_token"], info["accounts"]
        self.admin = AdminClient(self.base_url, self.admin_token)
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if self.admin is not None:
            self.admin.session.close()
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def credentials(self, name: str) -> dict:
        return dict(self.accounts[name])

    def truth(self, name: str, shape: str = "v2", dataset: str = "orders",
              include_expired: bool = False) -> list[dict]:
        return self.admin.truth(name, shape, dataset, include_expired)

    def request_log(self, since: float | None = None) -> list[dict]:
        return self.admin.request_log(since)

    def max_requests_per_window(self, account: str | None = None, endpoint: str | None = None,
                                window_s: float = 1.0, status: int | None = 200) -> int:
        """As `Simulator.max_requests_per_window` (account by name or uid)."""
        uid = self.accounts[account]["uid"] if account in self.accounts else account
        return self.admin.max_requests_per_window(uid, endpoint, window_s, status)

    def add_orders(self, name: str, orders: list[dict] | None = None, generate: int = 0,
                   symbols: list[str] | None = None, open: int = 0) -> list[dict]:  # noqa: A002
        return self.admin.add_orders(name, orders, generate, symbols, open)

    def close_open_orders(self, name: str, order_ids: list | None = None, status: str = "filled") -> list[dict]:
        return self.admin.close_open_orders(name, order_ids, status)

    def set_faults(self, faults: FaultConfig) -> None:
        self.admin.set_faults(faults)


def serve_from_stdin() -> None:
    """The child: (specs, config, secrets) pickled on stdin, one JSON line of its address out, serve until EOF."""
    specs, config, secrets = pickle.load(sys.stdin.buffer)
    sim = Simulator(specs, config)
    for name, (secret, passphrase) in secrets.items():
        sim.accounts[name].api_secret, sim.accounts[name].passphrase = secret, passphrase
    sim.start()
    try:
        info = {"base_url": sim.base_url, "admin_token": sim.admin_token,
                "accounts": {name: sim.credentials(name) for name in sim.accounts}}
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
        sys.stdin.buffer.read()
    finally:
        sim.stop()
