"""Rate limiters that space requests evenly (GCRA: each caller takes the next free slot).

An evenly spaced stream keeps every sliding 1-second window at the budget, where a token bucket
admits bursts that a strict exchange answers with 429 (measured: docs/performance.md).
The file backend shares one schedule between all processes of a machine through `fcntl.flock`;
the Redis backend shares it between any number of machines.
"""

import fcntl
import hashlib
import os
import struct
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

# A further budget one request also draws on (e.g. the exchange's per-IP ceiling): (key, requests per second).
Budget = tuple[str, float]


class Limiter(Protocol):
    def acquire(self, key: str, requests_per_second: float | None = None, *, also: Sequence[Budget] = ()) -> float:
        """Block until `key` (at `requests_per_second`, else the limiter's rate) and every budget in `also` may
        send one request; returns the seconds waited."""
        ...

    def pause(self, key: str, seconds: float) -> float:
        """Give `key` no slot for the next `seconds`, in every process sharing it; returns the pause in force."""
        ...


class _Gcra:
    """Reserve the next free slot, sleep until it, send. Backends differ only in where the slot is kept.

    A caller that wakes late (a starved CPU) would send right beside the next slot's request: measured
    under load, that puts 11-12 requests in one server-side second. So a send must stay within a quarter
    interval of its slot (at 9.5/s any 1-s window then holds at most 10); a caller later than that gives
    its slot up and takes a new one, a few times at most so that progress never stalls.

    Budgets in `also` are reserved once the main slot is reached, so they count the request when it is sent
    (reserving them early would hold their slots while this key's queue drains, starving other keys). A
    pause pushes a key's next free slot out: every caller of every process sharing it then waits it out.
    """

    MAX_LATE_RETRIES = 8

    def __init__(self, requests_per_second: float, max_late_s: float | None = None):
        self.interval = _interval(requests_per_second)
        self.max_late_s = max_late_s

    def _reserve(self, key: str, interval: float) -> float:
        """Take the next free slot of `key`, spaced `interval` s from the one after; return the seconds until it."""
        raise NotImplementedError

    def _pause(self, key: str, seconds: float) -> float:
        """Push the next free slot of `key` to at least now + `seconds`; return the seconds until it."""
        raise NotImplementedError

    def acquire(self, key: str, requests_per_second: float | None = None, *, also: Sequence[Budget] = ()) -> float:
        interval = self.interval if requests_per_second is None else _interval(requests_per_second)
        max_late = 0.25 * interval if self.max_late_s is None else self.max_late_s
        extra = [(k, _interval(rate)) for k, rate in also]
        waited = 0.0
        for _ in range(self.MAX_LATE_RETRIES):
            wait = self._reserve(key, interval)
            slot = time.monotonic() + wait
            if wait > 0:
                time.sleep(wait)
            waited += max(wait, 0.0)
            for extra_key, extra_interval in extra:
                extra_wait = self._reserve(extra_key, extra_interval)
                if extra_wait > 0:
                    time.sleep(extra_wait)
                    waited += extra_wait
            extra = []  # held: a late send only needs a new slot of the main key
            if time.monotonic() - slot <= max_late:
                break
        return waited

    def pause(self, key: str, seconds: float) -> float:
        if seconds < 0:
            raise ValueError(f"a pause cannot be negative ({seconds} s)")
        return self._pause(key, seconds)


def _interval(requests_per_second: float) -> float:
    if not requests_per_second > 0:
        raise ValueError(f"requests_per_second must be > 0, got {requests_per_second!r}")
    return 1.0 / requests_per_second


class ThreadLimiter(_Gcra):
    """In-process GCRA: one schedule per key shared by the threads of this process."""

    def __init__(self, requests_per_second: float, max_late_s: float | None = None):
        super().__init__(requests_per_second, max_late_s)
        self._next_free: dict[str, float] = {}
        self._lock = threading.Lock()

    def _reserve(self, key: str, interval: float) -> float:
        with self._lock:
            now = time.time()
            slot = max(now, self._next_free.get(key, 0.0))
            self._next_free[key] = slot + interval
        return slot - now

    def _pause(self, key: str, seconds: float) -> float:
        with self._lock:
            now = time.time()
            until = self._next_free[key] = max(now + seconds, self._next_free.get(key, 0.0))
        return until - now


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

    def _update(self, key: str, step) -> float:
        """Apply `step(next_free, now) -> (slot, new_next_free)` under the key's lock; return slot - now."""
        fd = os.open(self._path(key), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, self._SLOT.size, 0)
            next_free = self._SLOT.unpack(raw)[0] if len(raw) == self._SLOT.size else 0.0
            now = time.time()
            slot, new_next_free = step(next_free, now)
            if new_next_free != next_free:
                os.pwrite(fd, self._SLOT.pack(new_next_free), 0)
        finally:
            os.close(fd)  # closing releases the lock
        return slot - now

    def _reserve(self, key: str, interval: float) -> float:
        def take(next_free: float, now: float) -> tuple[float, float]:
            slot = max(now, next_free)
            return slot, slot + interval

        return self._update(key, take)

    def _pause(self, key: str, seconds: float) -> float:
        def push(next_free: float, now: float) -> tuple[float, float]:
            until = max(now + seconds, next_free)
            return until, until

        return self._update(key, push)


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
    # KEYS[1] slot key; ARGV[1] pause (µs); ARGV[2] TTL margin (ms). Returns the µs until the next free slot.
    _PAUSE_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_us = math.max(now + tonumber(ARGV[1]), tonumber(redis.call('GET', KEYS[1]) or '0'))
local ttl_ms = math.ceil((until_us - now) / 1000) + tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.0f', until_us), 'PX', ttl_ms)
return until_us - now
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
        self.ttl_margin_ms = int(ttl_margin_ms)
        if client is None:
            import redis  # optional extra: pip install 'bitget_assets[redis]'

            client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=3)
        self.client = client
        self._take_slot = client.register_script(self._SCRIPT)  # EVALSHA, falling back to EVAL once
        self._push_slot = client.register_script(self._PAUSE_SCRIPT)

    def redis_key(self, key: str) -> str:
        # Keys may carry account identifiers: hash them, as FileLimiter does, so none reaches Redis.
        return f"{self.key_prefix}{hashlib.sha256(key.encode()).hexdigest()[:24]}"

    def _reserve(self, key: str, interval: float) -> float:
        args = (round(interval * 1_000_000), self.ttl_margin_ms)
        return int(self._take_slot(keys=[self.redis_key(key)], args=args)) / 1_000_000

    def _pause(self, key: str, seconds: float) -> float:
        args = (round(seconds * 1_000_000), self.ttl_margin_ms)
        return int(self._push_slot(keys=[self.redis_key(key)], args=args)) / 1_000_000
