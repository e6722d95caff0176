"""Rate limiters that space requests evenly (GCRA: each caller takes the next free slot).

An evenly spaced stream keeps every sliding 1-second window at the budget, where a token bucket
admits bursts that a strict exchange answers with 429 (measured in shared/dagster-notes.md).
The file backend shares one schedule between all processes of a machine through `fcntl.flock`;
the Redis backend shares it between any number of machines.
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


class _Gcra:
    """Reserve the next free slot, sleep until it, send. Backends differ only in where the slot is kept.

    A caller that wakes late (a starved CPU) would send right beside the next slot's request: measured
    under load, that puts 11-12 requests in one server-side second. So a send must stay within a quarter
    interval of its slot (at 9.5/s any 1-s window then holds at most 10); a caller later than that gives
    its slot up and takes a new one, a few times at most so that progress never stalls.
    """

    MAX_LATE_RETRIES = 8

    def __init__(self, requests_per_second: float, max_late_s: float | None = None):
        self.interval = 1.0 / requests_per_second
        self.max_late_s = 0.25 * self.interval if max_late_s is None else max_late_s

    def _reserve(self, key: str) -> float:
        """Take the next free slot of `key`; return the seconds until it."""
        raise NotImplementedError

    def acquire(self, key: str) -> float:
        waited = 0.0
        for _ in range(self.MAX_LATE_RETRIES):
            wait = self._reserve(key)
            slot = time.monotonic() + wait
            if wait > 0:
                time.sleep(wait)
            waited += max(wait, 0.0)
            if time.monotonic() - slot <= self.max_late_s:
                break
        return waited


class ThreadLimiter(_Gcra):
    """In-process GCRA: one schedule per key shared by the threads of this process."""

    def __init__(self, requests_per_second: float, max_late_s: float | None = None):
        super().__init__(requests_per_second, max_late_s)
        self._next_free: dict[str, float] = {}
        self._lock = threading.Lock()

    def _reserve(self, key: str) -> float:
        with self._lock:
            now = time.time()
            slot = max(now, self._next_free.get(key, 0.0))
            self._next_free[key] = slot + self.interval
        return slot - now


class FileLimiter(_Gcra):
    """Cross-process GCRA: the next free slot of each key lives in a small file under an exclusive lock."""

    _SLOT = struct.Struct("<d")

    def __init__(self, requests_per_second: float, state_dir: str | os.PathLike, max_late_s: float | None = None):
        super().__init__(requests_per_second, max_late_s)
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        # Keys may carry account identifiers: hash them so nothing readable lands in file names.
        return self.state_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.gcra"

    def _reserve(self, key: str) -> float:
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
        return slot - now


class RedisLimiter(_Gcra):
    """Cross-machine GCRA: the next free slot of each key lives in Redis, taken atomically by a Lua script.

    The script reads the server's clock (TIME), so workers on machines whose clocks disagree still share one
    evenly spaced schedule. Each slot key expires just after its last granted slot: a dead worker leaves
    nothing behind, and an idle key costs no memory.
    """

    # KEYS[1] slot key; ARGV[1] interval (µs); ARGV[2] TTL margin (ms). Returns the wait in µs.
    # Integers stay below 2^53 (µs since 1970), so Lua's doubles hold them exactly; '%.0f' keeps every digit.
    _SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local next_free = slot + tonumber(ARGV[1])
local ttl_ms = math.ceil((next_free - now) / 1000) + tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.0f', next_free), 'PX', ttl_ms)
return slot - now
"""

    def __init__(
        self,
        requests_per_second: float,
        redis_url: str = "redis://127.0.0.1:6379/0",
        key_prefix: str = "bitget_assets:ratelimit:",
        ttl_margin_ms: int = 1000,
        client=None,
        max_late_s: float | None = None,
    ):
        super().__init__(requests_per_second, max_late_s)
        self.key_prefix = key_prefix
        self._args = (round(self.interval * 1_000_000), int(ttl_margin_ms))
        if client is None:
            import redis  # optional extra: pip install 'bitget_assets[redis]'

            client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=3)
        self.client = client
        self._take_slot = client.register_script(self._SCRIPT)  # EVALSHA, falling back to EVAL once

    def redis_key(self, key: str) -> str:
        # Keys may carry account identifiers: hash them, as FileLimiter does, so none reaches Redis.
        return f"{self.key_prefix}{hashlib.sha256(key.encode()).hexdigest()[:24]}"

    def _reserve(self, key: str) -> float:
        return int(self._take_slot(keys=[self.redis_key(key)], args=self._args)) / 1_000_000
