"""Rate limiters that space requests evenly (GCRA: each caller takes the next free slot).

An evenly spaced stream keeps every sliding 1-second window at the budget, where a token bucket
admits bursts that a strict exchange answers with 429 (measured in shared/dagster-notes.md).
The file backend shares one schedule between all processes of a machine through `fcntl.flock`.
"""

import fcntl
import hashlib
import os
import struct
import threading
import time
from pathlib import Path
from typing import Protocol


class Limiter(Protocol):
    def acquire(self, key: str) -> float:
        """Block until `key` may send one request; returns the seconds waited."""
        ...


class ThreadLimiter:
    """In-process GCRA: one schedule per key shared by the threads of this process."""

    def __init__(self, requests_per_second: float):
        self.interval = 1.0 / requests_per_second
        self._next_free: dict[str, float] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        with self._lock:
            now = time.time()
            slot = max(now, self._next_free.get(key, 0.0))
            self._next_free[key] = slot + self.interval
        return _sleep_until(slot, now)


class FileLimiter:
    """Cross-process GCRA: the next free slot of each key lives in a small file under an exclusive lock."""

    _SLOT = struct.Struct("<d")

    def __init__(self, requests_per_second: float, state_dir: str | os.PathLike):
        self.interval = 1.0 / requests_per_second
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        # Keys may carry account identifiers: hash them so nothing readable lands in file names.
        return self.state_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.gcra"

    def acquire(self, key: str) -> float:
        fd = os.open(self._path(key), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, self._SLOT.size, 0)
            next_free = self._SLOT.unpack(raw)[0] if len(raw) == self._SLOT.size else 0.0
            now = time.time()
            slot = max(now, next_free)
            os.pwrite(fd, self._SLOT.pack(slot + self.interval), 0)
        finally:
            os.close(fd)  # closing releases the lock
        return _sleep_until(slot, now)


def _sleep_until(slot: float, now: float) -> float:
    wait = slot - now
    if wait > 0:
        time.sleep(wait)
    return max(wait, 0.0)
