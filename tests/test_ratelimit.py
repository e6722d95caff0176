"""The cross-process limiter spaces requests evenly: no sliding 1-s window ever holds more than the budget."""

import contextlib
import multiprocessing as mp
import threading
import time

import pytest

from bitget_assets.ratelimit import FileLimiter, ThreadLimiter


def max_in_window(times, window=1.0):
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _hammer(state_dir, n, out):
    limiter = FileLimiter(9.5, state_dir)  # the default: a margin for jitter below the 10/s budget
    stamps = []
    for _ in range(n):
        limiter.acquire("acct:/api/v2/mix/order/orders-history")
        stamps.append(time.time())
    out.put(stamps)


def test_file_limiter_holds_across_four_processes(tmp_path):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), 8, out)) for _ in range(4)]
    began = time.time()
    for p in procs:
        p.start()
    stamps = [t for _ in procs for t in out.get(timeout=60)]
    for p in procs:
        p.join()
    assert len(stamps) == 32
    assert max_in_window(stamps) <= 10
    # Never idle while work waits: 32 slots at 9.5/s from the first grant take ~3.3 s, not more than 4.
    assert max(stamps) - min(stamps) < 4.0, max(stamps) - began


def test_keys_have_separate_budgets(tmp_path):
    limiter = FileLimiter(2, tmp_path)
    assert limiter.acquire("a") == 0
    assert limiter.acquire("b") == 0
    assert limiter.acquire("a") > 0.3


def test_thread_limiter_spaces_evenly():
    limiter = ThreadLimiter(20)
    stamps = []
    for _ in range(10):
        limiter.acquire("k")
        stamps.append(time.time())
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert min(gaps) >= 0.045


def _acquire_after(state_dir, key, out):
    out.put(FileLimiter(100, state_dir).acquire(key))


def test_a_pause_holds_every_process_sharing_the_key(tmp_path):
    limiter = FileLimiter(100, tmp_path)
    assert 0.79 < limiter.pause("uid-1:/orders", 0.8) <= 0.8
    # A shorter pause never shortens one in force.
    assert limiter.pause("uid-1:/orders", 0.1) > 0.7
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    p = ctx.Process(target=_acquire_after, args=(str(tmp_path), "uid-1:/orders", out))
    p.start()
    waited = out.get(timeout=60)
    p.join()
    assert 0.0 < waited <= 0.8  # the other process waited for the pause (minus its start-up time)
    assert limiter.acquire("uid-2:/orders") == 0  # other keys are not paused
    began = time.monotonic()
    limiter.acquire("uid-1:/orders")  # the next slot after the pause and the other process's request
    assert time.monotonic() - began < 0.1


def test_thread_limiter_pause_pushes_the_next_slot_out():
    limiter = ThreadLimiter(100)
    limiter.pause("k", 0.3)
    began = time.monotonic()
    assert limiter.acquire("k") > 0.25
    assert time.monotonic() - began > 0.25
    with pytest.raises(ValueError, match="negative"):
        limiter.pause("k", -1)


def test_rate_per_call_overrides_the_limiter_rate():
    limiter = ThreadLimiter(1000)
    stamps = []
    for _ in range(4):
        limiter.acquire("v3", 10)
        stamps.append(time.monotonic())
    assert min(b - a for a, b in zip(stamps, stamps[1:], strict=False)) >= 0.095
    with pytest.raises(ValueError, match="requests_per_second"):
        limiter.acquire("v3", 0)


@pytest.mark.parametrize("backend", ["thread", "file"])
def test_a_second_budget_caps_requests_over_every_key(tmp_path, backend):
    """Per-endpoint budgets at 50/s each, an IP-wide one at 20/s: four endpoints together get 20/s, not 200/s."""
    limiter = limiter_of(backend, 50, tmp_path)
    stamps = []
    for i in range(24):
        limiter.acquire(f"uid:/endpoint-{i % 4}", also=[("ip", 20)])
        stamps.append(time.time())
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert min(gaps) >= 0.045, min(gaps)
    assert 23 * 0.05 - 0.01 <= stamps[-1] - stamps[0] < 23 * 0.05 + 0.5
    # Without the second budget the same keys are limited only per endpoint.
    free = ThreadLimiter(50)
    began = time.monotonic()
    for i in range(8):
        free.acquire(f"uid:/endpoint-{i % 4}")
    assert time.monotonic() - began < 0.1


def test_the_memory_backend_is_one_budget_per_process():
    """Every get_limiter() of the `memory` backend shares one schedule (each call used to get its own)."""
    from bitget_assets.resources import RateLimiterResource

    resource = RateLimiterResource(backend="memory", requests_per_second=7.25)
    assert resource.get_limiter() is resource.get_limiter()
    assert RateLimiterResource(backend="memory", requests_per_second=7.25).get_limiter() is resource.get_limiter()


# -- the window of requests: what spacing alone cannot see ------------------------------------------------------


def stalled_then_on_time(limiter, enter, stall_s=0.15, n=12):
    """Request 0 passes its slot, then its process stalls `stall_s` before the bytes leave; requests 1..n go on
    time. `enter(limiter)` is the context the sender holds around a send. Returns the server's arrival stamps."""
    arrivals, started = [], threading.Event()

    def stalled():
        with enter(limiter):
            started.set()
            time.sleep(stall_s)
            arrivals.append(time.time())

    t = threading.Thread(target=stalled)
    t.start()
    started.wait(5)
    for _ in range(n):
        with enter(limiter):
            arrivals.append(time.time())
    t.join()
    return arrivals


def spaced_only(limiter):
    limiter.acquire("uid:/orders")
    return contextlib.nullcontext()


def counted(limiter):
    return limiter.sending("uid:/orders")


def limiter_of(backend, rate, tmp_path):
    return ThreadLimiter(rate) if backend == "thread" else FileLimiter(rate, tmp_path)


@pytest.mark.parametrize("backend", ["thread", "file"])
def test_a_request_stalled_after_its_slot_cannot_crowd_a_server_second(tmp_path, backend):
    # Spacing alone: the stalled request arrives beside on-time ones, 11 or more in one second, a 429 at Bitget.
    assert max_in_window(stalled_then_on_time(limiter_of(backend, 10, tmp_path / "a"), spaced_only)) > 10
    # Counted from its pass to a second after its answer, it holds the tenth next request back instead.
    arrivals = stalled_then_on_time(limiter_of(backend, 10, tmp_path / "b"), counted)
    assert len(arrivals) == 13 and max_in_window(arrivals) <= 10
    assert max(arrivals) - min(arrivals) < 1.6  # held for the stall, not for a whole second more


@pytest.mark.parametrize("backend", ["thread", "file"])
def test_unanswered_requests_count_until_a_second_after_their_answer(tmp_path, backend):
    limiter = limiter_of(backend, 1000, tmp_path)
    answered = []

    def slow_request():
        with limiter.sending("uid:/orders", 3):  # a budget of 3 a second
            time.sleep(0.5)
        answered.append(time.time())

    threads = [threading.Thread(target=slow_request) for _ in range(3)]
    for t in threads:
        t.start()
        time.sleep(0.02)
    with limiter.sending("uid:/orders", 3) as admitted:  # its slot comes at 1 s; three are still unanswered
        passed = time.time()
    for t in threads:
        t.join()
    assert passed >= min(answered) + 1.0 - 0.005, (passed, answered)
    assert passed < min(answered) + 1.3
    assert admitted.waited > 1.3


@pytest.mark.parametrize("backend", ["thread", "file"])
def test_a_dead_senders_request_stops_counting_after_its_hold(tmp_path, backend):
    limiter = limiter_of(backend, 1, tmp_path)
    assert limiter._enter("uid:/orders", "deadbeefdeadbeef", 1, 0.3) == 0  # counted, never answered
    began = time.monotonic()
    with limiter.sending("uid:/orders"):
        held = time.monotonic() - began
    assert 0.25 < held < 0.6


@pytest.mark.parametrize("backend", ["thread", "file"])
def test_the_round_trip_every_request_pays_is_credited(tmp_path, backend):
    """A sender that saw answers take at least 0.3 s may have its request stop counting 0.3 s sooner after the
    answer (the server stamped it at least that long before); no credit ever shortens the count below 0.5 s."""
    for credit, counts in ((0.0, 1.0), (0.3, 0.7), (5.0, 0.5)):
        limiter = limiter_of(backend, 1, tmp_path / str(credit))
        with limiter.sending("uid:/orders") as first:
            first.credit_s = credit
        # A budget of one a second: the next request waits exactly until the first stops counting.
        assert counts - 0.02 < limiter._enter("uid:/orders", "0123456789abcdef", 1, 60) <= counts, credit


def test_no_window_is_kept_with_the_rate_limit_off(tmp_path):
    """A pace no exchange has (the benchmarks' "rate limit off") keeps no window: a file per request over the
    last second would be rewritten on every request."""
    limiter = FileLimiter(100_000, tmp_path)
    for _ in range(50):
        with limiter.sending("uid:/orders"):
            pass
    assert not list(tmp_path.glob("*.window"))
    with FileLimiter(1000, tmp_path).sending("uid:/orders"):
        assert len(list(tmp_path.glob("*.window"))) == 1
