"""Live progress from the steps of a run to the `bitget-orders` command that shows it.

Steps send small JSON datagrams of counter increments over UDP on loopback to the address the command gives
them through the `progress` resource's run config; the command sums them. Fire and forget: a step never waits
on, nor fails for, a listener that is slow or gone, and with no address nothing is sent at all. Increments are
batched per sender (at most a few datagrams a second), so progress costs nothing per page.
"""

import contextlib
import json
import socket
import threading
import time


class ProgressSender:
    def __init__(self, address: str, stage: str, min_interval_s: float = 0.25):
        self.target = _parse(address) if address else None
        self.stage = stage
        self.min_interval_s = min_interval_s
        self._pending: dict[str, float] = {}
        self._last = 0.0
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM) if self.target else None

    def add(self, **counts: float) -> None:
        if self.target is None:
            return
        with self._lock:
            for name, n in counts.items():
                self._pending[name] = self._pending.get(name, 0) + n
            if time.monotonic() - self._last >= self.min_interval_s:
                self._flush()

    def close(self) -> None:
        if self.target is None:
            return
        with self._lock:
            self._flush()
        self._sock.close()

    def _flush(self) -> None:
        self._last = time.monotonic()
        if not self._pending:
            return
        with contextlib.suppress(OSError):  # a listener that went away must not fail the step
            self._sock.sendto(json.dumps(self._pending).encode(), self.target)
        self._pending = {}


def _parse(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


class ProgressListener:
    """Receives the datagrams on 127.0.0.1 (a free port) and keeps the running totals."""

    def __init__(self):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.totals: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._sock.getsockname()
        return f"{host}:{port}"

    def __enter__(self) -> "ProgressListener":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self.totals)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except (TimeoutError, OSError):
                continue
            try:
                counts = json.loads(data)
            except ValueError:
                continue
            with self._lock:
                for name, n in counts.items():
                    self.totals[name] = self.totals.get(name, 0) + n
