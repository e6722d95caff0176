"""The Redis limiter: one evenly spaced budget per key across OS processes, keys independent, nothing left behind."""

import multiprocessing as mp
import statistics
import time

import pytest

from bitget_assets.ratelimit import RedisLimiter
from bitget_assets.resources import RateLimiterResource
from tests.scaleout.cluster import require_module
from tests.scaleout.hammer import hammer
from tests.test_ratelimit import counted, max_in_window, stalled_then_on_time

KEY = "acct-7494337077:/api/v2/mix/order/orders-history"
PROCESSES, PER_PROCESS, RATE = 5, 10, 9.5


def test_processes_share_one_evenly_spaced_budget(redis_url, redis_prefix):
    ctx = mp.get_context("spawn")
    out, ready, start = ctx.Queue(), ctx.Semaphore(0), ctx.Event()
    args = (redis_url, redis_prefix, KEY, RATE, ready, start, PER_PROCESS, out)
    procs = [ctx.Process(target=hammer, args=args) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    try:
        for _ in procs:  # all connected: the grants below are a real race between processes
            assert ready.acquire(timeout=60)
        start.set()
        # While the processes hammer one key, another key (another account or endpoint) does not wait.
        time.sleep(1.0)
        other = RedisLimiter(RATE, redis_url, redis_prefix)
        assert other.acquire("acct-other:/api/v2/mix/order/orders-history") == 0
        sent = sorted(t for _ in procs for t in out.get(timeout=60))
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    n, interval = PROCESSES * PER_PROCESS, 1 / RATE
    assert len(sent) == n
    assert max_in_window(sent) <= 10
    # Evenly spaced: gaps sit at the interval; none is a burst (a late waker takes a new slot instead of
    # sending beside the next one); no idle time while work waits (a re-taken slot costs one interval).
    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    assert abs(statistics.median(gaps) - interval) < 0.1 * interval, statistics.median(gaps)
    assert min(gaps) > 0.5 * interval, min(gaps)
    span = sent[-1] - sent[0]
    assert (n - 1) * interval - 0.2 < span < (n - 1) * interval + 1.0, span
    print(f"\n{n} requests from {PROCESSES} processes over {span:.2f} s; max in a 1-s window {max_in_window(sent)}; "
          f"gaps min/median/max {min(gaps) * 1000:.0f}/{statistics.median(gaps) * 1000:.0f}/{max(gaps) * 1000:.0f} ms")


def test_a_caller_that_wakes_late_takes_a_new_slot(redis_url, redis_prefix, monkeypatch):
    limiter = RedisLimiter(10, redis_url, redis_prefix)
    takes = []
    take = limiter._take_slot
    limiter._take_slot = lambda **kw: takes.append(1) or take(**kw)
    real_sleep = time.sleep
    # A starved CPU: the second caller's first wake-up comes 80 ms after its slot.
    monkeypatch.setattr(time, "sleep", lambda s: real_sleep(s + (0.08 if len(takes) == 2 else 0)))
    assert limiter.acquire(KEY) == 0
    began = time.monotonic()
    limiter.acquire(KEY)
    assert len(takes) == 3  # gave the late slot up and took the next one
    assert time.monotonic() - began > 0.15


def test_keys_have_separate_budgets(redis_url, redis_prefix):
    limiter = RedisLimiter(2, redis_url, redis_prefix)
    assert limiter.acquire("a") == 0
    assert limiter.acquire("b") == 0
    assert 0.4 < limiter.acquire("a") <= 0.5


def test_slot_keys_are_hashed_and_expire(redis_url, redis_prefix):
    limiter = RedisLimiter(RATE, redis_url, redis_prefix, ttl_margin_ms=300)
    limiter.acquire(KEY)
    keys = [k.decode() for k in limiter.client.scan_iter(match=f"{redis_prefix}*")]
    assert keys == [limiter.redis_key(KEY)]
    assert "7494337077" not in keys[0] and "orders-history" not in keys[0]
    ttl_ms = limiter.client.pttl(keys[0])
    assert 0 < ttl_ms <= round(1000 / RATE) + 300 + 1, ttl_ms
    # Nothing outlives its last slot by more than the margin: a dead worker leaves no state behind.
    time.sleep((ttl_ms + 200) / 1000)
    assert not limiter.client.exists(keys[0])


def test_resource_selects_the_redis_backend(redis_url, redis_prefix):
    limiter = RateLimiterResource(backend="redis", redis_url=redis_url, redis_key_prefix=redis_prefix).get_limiter()
    assert isinstance(limiter, RedisLimiter)
    assert limiter.acquire("k") == 0
    assert limiter.client.exists(limiter.redis_key("k"))


def test_unreachable_redis_raises_instead_of_running_unlimited():
    redis = require_module("redis")
    limiter = RedisLimiter(RATE, "redis://127.0.0.1:1/0")  # nothing listens on port 1
    with pytest.raises(redis.ConnectionError):
        limiter.acquire(KEY)


def test_a_pause_holds_every_client_of_the_key(redis_url, redis_prefix):
    """A 429 pauses the budget in Redis: another client (another worker) waits too; other keys do not."""
    pauser, other = RedisLimiter(RATE, redis_url, redis_prefix), RedisLimiter(RATE, redis_url, redis_prefix)
    assert 0.55 < pauser.pause(KEY, 0.6) <= 0.6
    assert pauser.pause(KEY, 0.1) > 0.45  # a shorter pause never shortens the one in force
    assert 0.4 < other.acquire(KEY) <= 0.6
    assert other.acquire("acct-other:/api/v2/mix/order/orders-history") == 0
    ttl_ms = pauser.client.pttl(pauser.redis_key(KEY))
    assert 0 < ttl_ms <= 1000 / RATE + 1000 + 1  # expires after its last slot, as acquired keys do


def test_a_second_budget_is_shared_in_redis(redis_url, redis_prefix):
    limiter = RedisLimiter(50, redis_url, redis_prefix)
    stamps = []
    for i in range(12):
        limiter.acquire(f"{KEY}-{i % 4}", also=[("ip", 20)])
        stamps.append(time.time())
    assert min(b - a for a, b in zip(stamps, stamps[1:], strict=False)) >= 0.045


def test_a_stalled_request_holds_the_window_in_redis(redis_url, redis_prefix):
    """The window of requests lives in Redis too: a request that stalls after its slot holds the tenth next one
    back, and what it leaves in Redis is hashed and expires."""
    limiter = RedisLimiter(10, redis_url, redis_prefix, ttl_margin_ms=300)
    arrivals = stalled_then_on_time(limiter, counted)
    assert len(arrivals) == 13 and max_in_window(arrivals) <= 10
    keys = {k.decode() for k in limiter.client.scan_iter(match=f"{redis_prefix}*")}
    unanswered, answered = limiter._window_keys("uid:/orders")
    assert answered in keys and keys <= {limiter.redis_key("uid:/orders"), unanswered, answered}
    assert all("orders" not in k for k in keys)
    time.sleep(1.5)  # a second after the last answer, plus the margin: nothing is left behind
    assert not list(limiter.client.scan_iter(match=f"{redis_prefix}*"))


def test_a_dead_workers_request_stops_counting_in_redis(redis_url, redis_prefix):
    limiter = RedisLimiter(1, redis_url, redis_prefix)
    assert limiter._enter(KEY, "deadbeefdeadbeef", 1, 0.3) == 0  # counted, never answered
    assert limiter._enter(KEY, "other", 1, 0.3) > 0  # the budget's one request is unanswered: wait
    began = time.monotonic()
    with limiter.sending(KEY):
        held = time.monotonic() - began
    assert 0.25 < held < 0.6
