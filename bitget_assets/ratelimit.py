"""Rate limiters that space requests evenly (GCRA: each caller takes the next free slot) and never let more
than the budget's requests fall in one server-side second, whatever our own machine's delays.

An evenly spaced stream keeps every sliding 1-second window at the budget, where a token bucket
admits bursts that a strict exchange answers with 429 (measured: docs/performance.md). Spacing alone
cannot see what happens after a slot: a process descheduled between its slot and its send arrives
late, beside the next request. So `sending()` also keeps a window of the requests themselves: a
request counts from the moment it passes (before its bytes leave) until one window after its answer
came in. Whenever the server stamped it, that stamp lay in this span, so admitting a request only
while fewer than the budget's requests are counted keeps every server-side second within the budget.
The sender may shorten the span by a part of the round trip every answer pays after the server's
stamp (`Pass.credit_s`; the client credits half its fastest round trip): a request stamped late also
answers late by as much, so it still counts as long as it must, and an exchange far away costs less
throughput.
The file backend shares both between all processes of a machine through `fcntl.flock`; the Redis
backend shares them between any number of machines.
"""

import fcntl
import hashlib
import math
import os
import secrets
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# A further budget one request also draws on (e.g. the exchange's per-IP ceiling): (key, requests per second).
Budget = tuple[str, float]


class Limiter(Protocol):
    def acquire(self, key: str, requests_per_second: float | None = None, *, also: Sequence[Budget] = ()) -> float:
        """Block until `key` (at `requests_per_second`, else the limiter's rate) and every budget in `also` may
        send one request; returns the seconds waited."""
        ...

    def sending(self, key: str, requests_per_second: float | None = None, *, also: Sequence[Budget] = (),
                hold_s: float = ...) -> AbstractContextManager["Pass"]:
        """`acquire()`, then wait until fewer than the budget's requests (its rate, rounded up) of `key` are
        unanswered or were answered within the last second; the request is counted so until one second
        (less the yielded Pass's `credit_s`) after the block ends. Send inside the block and leave it as the
        answer arrives."""
        ...

    def pause(self, key: str, seconds: float) -> float:
        """Give `key` no slot for the next `seconds`, in every process sharing it; returns the pause in force."""
        ...


WINDOW_S = 1.0  # the exchange counts requests per second
MAX_CREDIT_S = 0.5  # a request counts at least half a window after its answer, whatever credit it claims
IN_FLIGHT_HOLD_S = 60.0  # an unanswered request counts this long at most (its process may have died)
IN_FLIGHT_POLL_S = 0.01  # the budget's requests are all unanswered: look again after this long
MAX_WINDOW_LIMIT = 1000  # a faster pace is no exchange's (a run with the rate limit off): no window is kept


@dataclass
class Pass:
    """A request admitted by `sending()`: the seconds it waited, and the credit its sender claims."""

    waited: float
    # Time every answer of this sender spends after the server stamped its request, set before the block ends:
    # the request stops counting that much sooner after its answer.
    credit_s: float = 0.0


def window_limit(requests_per_second: float) -> int:
    """Requests one window may hold at this pace: Bitget's 10/s spaced at 9.5/s still allows 10."""
    return max(1, math.ceil(requests_per_second - 1e-9))


def _admission_wait(entries: Sequence[tuple[float, bool]], now: float, limit: int) -> float:
    """Seconds until a request may pass, given each counted request's (release time, still unanswered);
    0 when it may pass now. Unanswered requests release at their hold deadline, so they are never the
    one to wait for: then look again shortly."""
    live = sorted((e for e in entries if e[0] > now), reverse=True)
    if len(live) < limit:
        return 0.0
    release, unanswered = live[limit - 1]
    return IN_FLIGHT_POLL_S if unanswered else release - now


class _Gcra:
    """Reserve the next free slot, sleep until it, send. Backends differ only in where the slot is kept.

    A caller that wakes late (a starved CPU) would send right beside the next slot's request. So a send must
    stay within a quarter interval of its slot, which keeps the spacing even; a caller later than that gives
    its slot up and takes a new one, a few times at most so that progress never stalls. (That bounds only the
    wake-up: `sending()`'s window of requests is what bounds a server-side second.)

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

    def _enter(self, key: str, token: str, limit: int, hold_s: float) -> float:
        """Count `token` as unanswered in `key`'s window if fewer than `limit` requests are counted (return 0),
        else return the seconds to wait before asking again."""
        raise NotImplementedError

    def _answered(self, key: str, token: str, counts_s: float) -> None:
        """`token`'s answer is in: it counts for `counts_s` more."""
        raise NotImplementedError

    @contextmanager
    def sending(self, key: str, requests_per_second: float | None = None, *, also: Sequence[Budget] = (),
                hold_s: float = IN_FLIGHT_HOLD_S) -> Iterator[Pass]:
        rate = 1.0 / self.interval if requests_per_second is None else requests_per_second
        limit = window_limit(rate)
        waited = self.acquire(key, requests_per_second, also=also)
        if limit > MAX_WINDOW_LIMIT:
            yield Pass(waited)
            return
        token = secrets.token_hex(8)
        while (wait := self._enter(key, token, limit, hold_s)) > 0:
            time.sleep(wait)
            waited += wait
        sent = Pass(waited)
        try:
            yield sent
        finally:
            self._answered(key, token, WINDOW_S - min(max(sent.credit_s, 0.0), MAX_CREDIT_S))

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
        self._windows: dict[str, dict[str, tuple[float, bool]]] = {}
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

    def _enter(self, key: str, token: str, limit: int, hold_s: float) -> float:
        with self._lock:
            now = time.time()
            window = {t: e for t, e in self._windows.get(key, {}).items() if e[0] > now}
            self._windows[key] = window
            wait = _admission_wait(list(window.values()), now, limit)
            if wait == 0:
                window[token] = (now + hold_s, True)
        return wait

    def _answered(self, key: str, token: str, counts_s: float) -> None:
        with self._lock:
            self._windows.setdefault(key, {})[token] = (time.time() + counts_s, False)


def _rewrite_locked(path: Path, step):
    """Apply `step(content, now) -> (result, new content or None to keep it)` to the file at `path` under an
    exclusive `flock`, creating it if need be; return the result."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.pread(fd, os.fstat(fd).st_size, 0)
        result, new = step(raw, time.time())
        if new is not None:
            os.pwrite(fd, new, 0)
            os.ftruncate(fd, len(new))
    finally:
        os.close(fd)  # closing releases the lock
    return result


class FileLimiter(_Gcra):
    """Cross-process GCRA: the next free slot of each key lives in a small file under an exclusive lock."""

    _SLOT = struct.Struct("<d")
    _COUNTED = struct.Struct("<8sd?")  # token, release time, unanswered

    def __init__(self, requests_per_second: float, state_dir: str | os.PathLike, max_late_s: float | None = None):
        super().__init__(requests_per_second, max_late_s)
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        # Keys may carry account identifiers: hash them so nothing readable lands in file names.
        return self.state_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.gcra"

    def _update(self, key: str, step) -> float:
        """Apply `step(next_free, now) -> (slot, new_next_free)` under the key's lock; return slot - now."""
        def on_slot(raw: bytes, now: float):
            next_free = self._SLOT.unpack(raw)[0] if len(raw) == self._SLOT.size else 0.0
            slot, new_next_free = step(next_free, now)
            return slot - now, (self._SLOT.pack(new_next_free) if new_next_free != next_free else None)

        return _rewrite_locked(self._path(key), on_slot)

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

    def _update_window(self, key: str, step) -> float:
        """Apply `step(counted, now) -> (result, counted)` to `key`'s counted requests ({token: (release,
        unanswered)}, those still counting) under the window file's lock; return the result."""
        size = self._COUNTED.size

        def on_window(raw: bytes, now: float):
            records = (self._COUNTED.unpack_from(raw, i) for i in range(0, len(raw) - size + 1, size))
            counted = {token: (release, unanswered) for token, release, unanswered in records if release > now}
            result, counted = step(counted, now)
            return result, b"".join(self._COUNTED.pack(t, r, u) for t, (r, u) in counted.items())

        return _rewrite_locked(self._path(key).with_suffix(".window"), on_window)

    def _enter(self, key: str, token: str, limit: int, hold_s: float) -> float:
        def admit(counted, now):
            wait = _admission_wait(list(counted.values()), now, limit)
            if wait == 0:
                counted[bytes.fromhex(token)] = (now + hold_s, True)
            return wait, counted

        return self._update_window(key, admit)

    def _answered(self, key: str, token: str, counts_s: float) -> None:
        def release(counted, now):
            counted[bytes.fromhex(token)] = (now + counts_s, False)
            return None, counted

        self._update_window(key, release)


# Every script starts from the Redis server's clock, in µs (one clock for every machine sharing it).
_NOW = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])"""


class RedisLimiter(_Gcra):
    """Cross-machine GCRA: the next free slot of each key lives in Redis, taken atomically by a Lua script.

    The script reads the server's clock (TIME), so workers on machines whose clocks disagree still share one
    evenly spaced schedule. Each slot key expires just after its last granted slot: a dead worker leaves
    nothing behind, and an idle key costs no memory.
    """

    # KEYS[1] slot key; ARGV[1] interval (µs); ARGV[2] TTL margin (ms). Returns the wait in µs.
    # Integers stay below 2^53 (µs since 1970), so Lua's doubles hold them exactly; '%.0f' keeps every digit.
    _SCRIPT = _NOW + """
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local next_free = slot + tonumber(ARGV[1])
local ttl_ms = math.ceil((next_free - now) / 1000) + tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.0f', next_free), 'PX', ttl_ms)
return slot - now
"""
    # KEYS[1] slot key; ARGV[1] pause (µs); ARGV[2] TTL margin (ms). Returns the µs until the next free slot.
    _PAUSE_SCRIPT = _NOW + """
local until_us = math.max(now + tonumber(ARGV[1]), tonumber(redis.call('GET', KEYS[1]) or '0'))
local ttl_ms = math.ceil((until_us - now) / 1000) + tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.0f', until_us), 'PX', ttl_ms)
return until_us - now
"""

    # KEYS[1] unanswered requests (score: hold deadline, µs), KEYS[2] answered ones (score: release, µs);
    # ARGV[1] limit, ARGV[2] token, ARGV[3] hold (µs), ARGV[4] TTL margin (ms). Returns 0 once counted,
    # -1 while the budget's requests are all unanswered, else the µs until the oldest counted one is released.
    _ENTER_SCRIPT = _NOW + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now))
local limit = tonumber(ARGV[1])
local unanswered = redis.call('ZCARD', KEYS[1])
local answered = redis.call('ZCARD', KEYS[2])
if unanswered + answered < limit then
  redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[3])), ARGV[2])
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) / 1000) + tonumber(ARGV[4]))
  return 0
end
if unanswered >= limit then return -1 end
local rank = limit - unanswered - 1
local oldest = redis.call('ZREVRANGE', KEYS[2], rank, rank, 'WITHSCORES')
return tonumber(oldest[2]) - now
"""
    # KEYS[1], KEYS[2] as above; ARGV[1] token, ARGV[2] how long it still counts (µs), ARGV[3] TTL margin (ms).
    _ANSWERED_SCRIPT = _NOW + """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], string.format('%.0f', now + tonumber(ARGV[2])), ARGV[1])
redis.call('PEXPIRE', KEYS[2], math.ceil(tonumber(ARGV[2]) / 1000) + tonumber(ARGV[3]))
return 0
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
        self._enter_window = client.register_script(self._ENTER_SCRIPT)
        self._leave_window = client.register_script(self._ANSWERED_SCRIPT)

    def redis_key(self, key: str) -> str:
        # Keys may carry account identifiers: hash them, as FileLimiter does, so none reaches Redis.
        return f"{self.key_prefix}{hashlib.sha256(key.encode()).hexdigest()[:24]}"

    def _reserve(self, key: str, interval: float) -> float:
        args = (round(interval * 1_000_000), self.ttl_margin_ms)
        return int(self._take_slot(keys=[self.redis_key(key)], args=args)) / 1_000_000

    def _pause(self, key: str, seconds: float) -> float:
        args = (round(seconds * 1_000_000), self.ttl_margin_ms)
        return int(self._push_slot(keys=[self.redis_key(key)], args=args)) / 1_000_000

    def _window_keys(self, key: str) -> list[str]:
        base = self.redis_key(key)
        return [f"{base}:unanswered", f"{base}:answered"]

    def _enter(self, key: str, token: str, limit: int, hold_s: float) -> float:
        args = (limit, token, round(hold_s * 1_000_000), self.ttl_margin_ms)
        wait_us = int(self._enter_window(keys=self._window_keys(key), args=args))
        return IN_FLIGHT_POLL_S if wait_us < 0 else wait_us / 1_000_000

    def _answered(self, key: str, token: str, counts_s: float) -> None:
        args = (token, round(counts_s * 1_000_000), self.ttl_margin_ms)
        self._leave_window(keys=self._window_keys(key), args=args)
