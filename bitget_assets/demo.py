"""The embedded demo exchange: a Bitget simulator on loopback that serves when no credentials are set.

`bitget-orders extract` runs one for the length of the command. `dagster dev` with no credentials
gets a shared one started on first use, which exits by itself after a quiet spell, so the UI works
with no set-up and nothing is left running for long.
"""

import argparse
import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from bitget_assets.bitget.credentials import Credentials

# The demo account: more than 17,000 orders over 40 symbols, answered with realistic latency
# under Bitget's own limit of 10 order-history requests per second.
DEMO_FLAGS = {
    "seed": 7,
    "orders": 17_000,
    "symbols": 40,
    "latency": "0.08-0.2",
    "rate_limit": 10,
}
# A fixed data clock makes the demo account the same every time (2026-09-21 UTC): re-running merges
# into the same history instead of mixing in a new random account. Pass now_ms to move it.
DEMO_NOW_MS = 1_790_000_000_000
STATE_FILE = Path(tempfile.gettempdir()) / "bitget_assets-demo" / "exchange.json"


def serve_command(now_ms: int, port: int = 0, **overrides) -> list[str]:
    flags = DEMO_FLAGS | overrides
    cmd = [sys.executable, "-m", "bitget_assets.simulator.cli", "serve", "--port", str(port), "--now", str(now_ms)]
    for name, value in flags.items():
        cmd += [f"--{name.replace('_', '-')}", str(value)]
    return cmd + ["--freeze"]


class DemoExchange:
    """A simulator subprocess for the duration of a `with` block."""

    def __init__(self, now_ms: int | None = None, **overrides):
        self.now_ms = now_ms or DEMO_NOW_MS
        self.overrides = overrides
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}

    def __enter__(self) -> "DemoExchange":
        self.proc = subprocess.Popen(
            serve_command(self.now_ms, **self.overrides), stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            raise RuntimeError(f"the demo exchange did not start (exit code {self.proc.returncode})")
        self.info = json.loads(line)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def credentials(self) -> Credentials:
        i = self.info
        return Credentials(i["api_key"], i["api_secret"], i["passphrase"], base_url=i["base_url"])

    def environment(self) -> dict[str, str]:
        """Environment variables that point the pipeline's resources at this exchange."""
        c = self.credentials
        return {
            "BITGET_API_KEY": c.api_key,
            "BITGET_API_SECRET": c.api_secret,
            "BITGET_API_PASSPHRASE": c.passphrase,
            "BITGET_BASE_URL": c.base_url,
        }


def _alive(info: dict) -> bool:
    try:
        return requests.get(info["base_url"] + "/api/v2/public/time", timeout=2).ok
    except (requests.RequestException, KeyError):
        return False


def shared_demo_credentials(state_file: Path = STATE_FILE, idle_exit_s: int = 1800) -> Credentials:
    """Credentials of the shared demo exchange, starting it if no live one is recorded."""
    state_file.parent.mkdir(parents=True, exist_ok=True)
    with open(state_file.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process starts it; the others wait and reuse it
        info = json.loads(state_file.read_text()) if state_file.exists() else {}
        if not _alive(info):
            subprocess.Popen(
                [sys.executable, "-m", "bitget_assets.demo", "--state", str(state_file),
                 "--idle-exit", str(idle_exit_s)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.time() + 60
            while time.time() < deadline:
                info = json.loads(state_file.read_text()) if state_file.exists() else {}
                if info.get("pid") and _alive(info):
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError("the shared demo exchange did not start within 60 s")
    return Credentials(info["api_key"], info["api_secret"], info["passphrase"], base_url=info["base_url"])


def _run_shared(state_file: Path, idle_exit_s: int) -> None:
    """Body of the detached demo process: serve, record where, exit after `idle_exit_s` without requests."""
    with DemoExchange() as demo:
        state_file.unlink(missing_ok=True)
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({**demo.info, "pid": os.getpid()}))
        os.chmod(tmp, 0o600)
        os.replace(tmp, state_file)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        last_seen, last_change = None, time.time()
        while not stop.wait(10) and demo.proc.poll() is None:
            seen = _request_count(demo.info)
            if seen != last_seen:
                last_seen, last_change = seen, time.time()
            elif time.time() - last_change > idle_exit_s:
                break
    state_file.unlink(missing_ok=True)


def _request_count(info: dict) -> int | None:
    try:
        resp = requests.get(
            info["base_url"] + "/admin/requests", headers={"X-Admin-Token": info["admin_token"]}, timeout=5
        )
        return len(resp.json()) if resp.ok else None
    except (requests.RequestException, ValueError):
        return None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="shared demo Bitget exchange (started on demand)")
    parser.add_argument("--state", type=Path, default=STATE_FILE)
    parser.add_argument("--idle-exit", type=int, default=1800)
    args = parser.parse_args()
    _run_shared(args.state, args.idle_exit)
