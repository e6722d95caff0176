"""The client's transport against a scripted exchange: release-window retries, 40808's tight bound, 429 pauses of
the shared budget with a bounded patience, the per-IP budget, the clock offset, account mode and UID."""

import itertools
import logging
import threading
import time

import pytest

from bitget_assets.bitget import BitgetAuthError, BitgetClient, BitgetParameterError, BitgetTransientError
from bitget_assets.bitget.account import AccountModeTimeoutError, detect_account_mode
from bitget_assets.bitget.errors import (
    BitgetAccountModeError,
    BitgetRateLimitExhaustedError,
    BitgetUnifiedAccountError,
)
from bitget_assets.ratelimit import FileLimiter, ThreadLimiter
from tests.fake_exchange import TIME_PATH, Answer, FakeExchange, error, ok

HISTORY = "/api/v2/mix/order/orders-history"
PENDING = "/api/v2/mix/order/orders-pending"


def client_of(fake: FakeExchange, limiter=None, **kwargs) -> BitgetClient:
    kwargs.setdefault("max_backoff_s", 0.01)
    return BitgetClient(fake.credentials(), limiter or ThreadLimiter(200), **kwargs)


def first_then_ok(answers: list[Answer], data=None):
    """Answer `answers` in turn, then success with `data`."""
    queue = list(answers)
    lock = threading.Lock()

    def route(req):
        with lock:
            return queue.pop(0) if queue else ok(data if data is not None else {"n": 1})

    return route


@pytest.mark.parametrize("code", ["45001", "40725", "40015", "40200"])
@pytest.mark.parametrize("status", [200, 400])
def test_release_window_codes_are_retried_on_200_and_400_bodies(code, status):
    with FakeExchange(route=first_then_ok([error(code, "please retry", status)] * 3)) as fake:
        client = client_of(fake)
        assert client.request(HISTORY, {"productType": "USDT-FUTURES"}) == {"n": 1}
        assert len(fake.requests_to(HISTORY)) == 4
        assert client.stats.retries == 3


def test_retryable_codes_are_bounded_by_max_attempts():
    with FakeExchange(route=lambda r: error("45001", "Unknown error")) as fake:
        client = client_of(fake, max_attempts=4)
        with pytest.raises(BitgetTransientError, match="45001"):
            client.request(HISTORY, {"productType": "USDT-FUTURES"})
        assert len(fake.requests_to(HISTORY)) == 4


def test_40808_is_retried_twice_then_raised_as_a_parameter_error():
    with FakeExchange(route=lambda r: error("40808", "Parameter verification exception symbol")) as fake:
        client = client_of(fake)
        with pytest.raises(BitgetParameterError, match="40808") as err:
            client.request(HISTORY, {"productType": "USDT-FUTURES"})
        assert err.value.code == "40808"
        assert len(fake.requests_to(HISTORY)) == 3
    with FakeExchange(route=first_then_ok([error("40808", "Parameter verification exception {0}", 200)] * 2)) as fake:
        assert client_of(fake).request(HISTORY, {"productType": "USDT-FUTURES"}) == {"n": 1}
        assert len(fake.requests_to(HISTORY)) == 3


def test_429s_pause_the_shared_budget_with_a_growing_backoff(caplog):
    """Four 429s in a row: pauses of 0.1, 0.2, 0.4, 0.8 s (the IP budget too from the second), then success."""
    with FakeExchange(route=first_then_ok([error("429", "Too Many Requests", 429)] * 4)) as fake:
        limiter = ThreadLimiter(200)
        pauses = []
        real_pause = limiter.pause
        limiter.pause = lambda key, s: pauses.append((key, round(s, 3))) or real_pause(key, s)
        client = client_of(fake, limiter, rate_limited_pause_s=0.1, rate_limited_patience_s=30)
        with caplog.at_level(logging.WARNING, logger="bitget_assets.client"):
            assert client.request(HISTORY, {"productType": "USDT-FUTURES"}) == {"n": 1}
        budget, ip = client.budget_key(HISTORY), f"bitget-ip:127.0.0.1:{fake.port}"
        assert pauses == [(budget, 0.1), (budget, 0.2), (ip, 0.2), (budget, 0.4), (ip, 0.4), (budget, 0.8), (ip, 0.8)]
        arrivals = [r.at for r in fake.requests_to(HISTORY)]
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
        assert [g >= p - 0.02 for g, p in zip(gaps, (0.1, 0.2, 0.4, 0.8), strict=True)] == [True] * 4, gaps
        assert client.stats.rate_limited == 4
        lines = [r.getMessage() for r in caplog.records if "HTTP 429" in r.getMessage()]
        assert len(lines) == 4
        assert "pausing the request budget of key-" in lines[0] and "for 0.1 s" in lines[0]
        assert "and of this IP" in lines[1] and "retrying until 30 s have passed" in lines[1]
        assert fake.credentials().api_key not in " ".join(lines)


def test_a_lockout_longer_than_the_patience_fails_clearly_without_hammering():
    with FakeExchange(route=lambda r: error("429", "Too Many Requests", 429)) as fake:
        client = client_of(fake, rate_limited_pause_s=0.1, rate_limited_max_pause_s=0.4, rate_limited_patience_s=2)
        began = time.monotonic()
        with pytest.raises(BitgetRateLimitExhaustedError, match="still rate limited after 2 s") as err:
            client.request(HISTORY, {"productType": "USDT-FUTURES"})
        assert 2.0 <= time.monotonic() - began < 3.0
        assert err.value.http_status == 429
        # 0.1 + 0.2 + 0.4 + 0.4 + 0.4 + 0.4 + 0.1 (the rest of the patience): 8 requests, not thousands.
        assert len(fake.requests_to(HISTORY)) == 8


def test_429_body_with_http_200_is_rate_limited_too():
    with FakeExchange(route=first_then_ok([error("429", "Too Many Requests", 200)])) as fake:
        client = client_of(fake, rate_limited_pause_s=0.05)
        assert client.request(HISTORY, {"productType": "USDT-FUTURES"}) == {"n": 1}
        assert client.stats.rate_limited == 1


def test_a_pause_after_a_429_holds_another_client_of_the_same_uid(tmp_path):
    """Two API keys of one account (one UID) in two clients over one file limiter: one's 429 holds the other."""
    with FakeExchange(route=first_then_ok([error("429", "Too Many Requests", 429)])) as fake:
        a = client_of(fake, FileLimiter(200, tmp_path), uid="7494337077", rate_limited_pause_s=0.6)
        b = client_of(fake, FileLimiter(200, tmp_path), uid="7494337077")
        assert a.budget_key(HISTORY) == b.budget_key(HISTORY) == f"bitget:uid-7494337077:{HISTORY}"
        t = threading.Thread(target=a.request, args=(HISTORY, {"productType": "USDT-FUTURES"}))
        t.start()
        while not fake.requests_to(HISTORY):
            time.sleep(0.005)
        time.sleep(0.05)  # a has paused the budget by now
        began = time.monotonic()
        b.request(HISTORY, {"productType": "USDT-FUTURES"})
        assert time.monotonic() - began >= 0.45
        t.join()


def test_every_request_also_draws_on_the_ip_budget():
    """Two endpoints at 200/s each, the IP at 20/s: arrivals are 50 ms apart whatever the endpoint."""
    with FakeExchange() as fake:
        client = client_of(fake, ThreadLimiter(200), ip_requests_per_second=20)
        for path in itertools.islice(itertools.cycle((HISTORY, PENDING)), 10):
            client.request(path, {"productType": "USDT-FUTURES"})
        arrivals = sorted(r.at for r in fake.log)
        assert len(arrivals) == 11  # one time request + ten
        assert min(b - a for a, b in zip(arrivals, arrivals[1:], strict=False)) >= 0.035  # arrival jitter
        assert arrivals[-1] - arrivals[0] >= 10 * 0.05 - 0.02


def test_signatures_carry_the_exchange_clock_measured_once():
    with FakeExchange(skew_s=3600) as fake:  # the exchange's clock is an hour ahead of this machine's
        client = client_of(fake)
        assert client.clock_offset_ms is None
        for _ in range(3):
            client.request(HISTORY, {"productType": "USDT-FUTURES"})
        assert len(fake.requests_to(TIME_PATH)) == 1
        assert abs(client.clock_offset_ms - 3_600_000) < 1000
        assert [r.path for r in fake.log] == [TIME_PATH] + [HISTORY] * 3  # measured before the first signed one


def test_40008_measures_the_clock_again_and_retries_once():
    with FakeExchange(skew_s=0) as fake:
        client = client_of(fake)
        client.request(HISTORY, {"productType": "USDT-FUTURES"})
        fake.skew_s = -120  # the exchange's clock moved (or ours jumped)
        client.request(HISTORY, {"productType": "USDT-FUTURES"})
        assert [r.path for r in fake.log] == [TIME_PATH, HISTORY, HISTORY, TIME_PATH, HISTORY]
        assert abs(client.clock_offset_ms + 120_000) < 1000
        # A clock the exchange keeps refusing: one re-measurement, one retry, then the error.
        fake.tolerance_s = -1
        with pytest.raises(BitgetAuthError, match="40008"):
            client.request(HISTORY, {"productType": "USDT-FUTURES"})
        assert [r.path for r in fake.log[5:]] == [HISTORY, TIME_PATH, HISTORY]


def _modes(script: list[str], uid="7494337077"):
    """v3 settings answer the modes in `script` in turn (the last one repeats); classic accounts answer 40084."""
    modes = iter(script)
    state = {"mode": None}

    def route(req):
        if req.path == "/api/v3/account/settings":
            state["mode"] = next(modes, state["mode"])
            if state["mode"] == "classic":
                return error("40084", "Classic Account mode")
            return ok({"uid": uid, "accountMode": state["mode"], "assetMode": "single", "holdMode": "one_way_mode"})
        if req.path == "/api/v2/spot/account/info":
            if state["mode"] != "classic":
                return error("40085", "Unified Account mode, Classic Account API not supported")
            return ok({"userId": uid, "inviterId": "1", "ips": "10.0.0.1", "authorities": ["coor"], "parentId": 1})
        if req.path.startswith("/api/v2/") and state["mode"] != "classic":
            return error("40085", "Unified Account mode, Classic Account API not supported")
        return ok({"entrustedList": [], "endId": None})

    return route


def test_a_unified_account_is_detected_and_its_uid_keys_the_budget():
    with FakeExchange(route=_modes(["unified"])) as fake:
        client = client_of(fake)
        key_budget = client.budget_key(HISTORY)
        assert key_budget.startswith("bitget:key-") and fake.credentials().api_key not in key_budget
        mode = detect_account_mode(client)
        assert (mode.mode, mode.uid, client.uid) == ("unified", "7494337077", "7494337077")
        assert mode.raw_state == {"uid": "7494337077", "accountMode": "unified", "assetMode": "single",
                                  "holdMode": "one_way_mode"}
        assert client.budget_key(HISTORY) == f"bitget:uid-7494337077:{HISTORY}"
        assert len(fake.requests_to("/api/v3/account/settings")) == 1
        assert not fake.requests_to("/api/v2/spot/account/info")
        with pytest.raises(BitgetUnifiedAccountError, match="40085"):
            client.request(HISTORY, {"productType": "USDT-FUTURES"})
        assert len(fake.requests_to(HISTORY)) == 1  # never retried


def test_a_classic_account_answers_40084_and_its_uid_comes_from_account_info():
    with FakeExchange(route=_modes(["classic"])) as fake:
        client = client_of(fake)
        mode = detect_account_mode(client)
        assert (mode.mode, mode.uid) == ("classic", "7494337077")
        assert mode.raw_state == {"userId": "7494337077", "authorities": ["coor"], "parentId": 1}  # no IP list
        assert [r.path for r in fake.log[1:]] == ["/api/v3/account/settings", "/api/v2/spot/account/info"]
        assert client.request(HISTORY, {"productType": "USDT-FUTURES"}) == {"entrustedList": [], "endId": None}


def test_an_upgrading_account_is_waited_for_then_probed_again(caplog):
    slept = []
    with FakeExchange(route=_modes(["upgrading", "upgrading", "unified"])) as fake:
        with caplog.at_level(logging.WARNING, logger="bitget_assets.client"):
            mode = detect_account_mode(client_of(fake), poll_s=7, sleep=slept.append)
        assert mode.mode == "unified" and slept == [7, 7]
        assert len(fake.requests_to("/api/v3/account/settings")) == 3
        assert "Bitget account is upgrading" in caplog.text
    with FakeExchange(route=_modes(["switching"])) as fake:
        with pytest.raises(AccountModeTimeoutError, match="still switching"):
            detect_account_mode(client_of(fake), transition_wait_s=0.2, poll_s=0.05)
        assert 3 <= len(fake.requests_to("/api/v3/account/settings")) <= 6


def test_a_run_that_reads_server_time_first_measures_the_clock_with_it():
    with FakeExchange(skew_s=-50) as fake:
        client = client_of(fake)
        client.request(TIME_PATH, signed=False)
        client.request(HISTORY, {"productType": "USDT-FUTURES"})
        assert [r.path for r in fake.log] == [TIME_PATH, HISTORY]
        assert abs(client.clock_offset_ms + 50_000) < 1000


def test_order_endpoints_during_a_mode_switch_fail_typed_and_unretried():
    with FakeExchange(route=lambda r: error("25007", "Account in an irregular status")) as fake:
        with pytest.raises(BitgetAccountModeError, match="switching between classic and unified"):
            client_of(fake).request(HISTORY, {"productType": "USDT-FUTURES"})
        assert len(fake.requests_to(HISTORY)) == 1


def test_bad_settings_are_refused_up_front():
    with FakeExchange() as fake:
        with pytest.raises(ValueError, match="ip_requests_per_second must be > 0"):
            client_of(fake, ip_requests_per_second=0)
        with pytest.raises(ValueError, match="max_attempts must be >= 1"):
            client_of(fake, max_attempts=0)
        with pytest.raises(ValueError, match="rate_limited_patience_s must be >= 0"):
            client_of(fake, rate_limited_patience_s=-1)
        assert not fake.log


def test_each_request_claims_half_its_clients_fastest_round_trip_as_window_credit():
    """The window releases a request sooner by half the round trip every answer took at least (the client's
    fastest), once a few answers came back; a slow answer never raises that credit (it may have been stamped
    late), and none is credited while the client starts."""
    passes = []

    class Recording(ThreadLimiter):
        def sending(self, key, *args, **kwargs):
            cm = super().sending(key, *args, **kwargs)

            class Recorder:
                def __enter__(self):
                    passes.append((key.rsplit(":", 1)[-1], cm.__enter__()))
                    return passes[-1][1]

                def __exit__(self, *exc):
                    return cm.__exit__(*exc)

            return Recorder()

    delays = iter([0.2, 0.12, 0.2, 0.15, 0.08, 0.2, 0.1])

    def route(req):
        time.sleep(next(delays))
        return ok({"n": 1})

    with FakeExchange(route=route) as fake:
        client = client_of(fake, Recording(200))
        client.server_clock.offset_ms = 0  # no clock request of the client's own: every answer is delayed
        for _ in range(7):
            client.request(HISTORY, {"productType": "USDT-FUTURES"})
    assert [path for path, _ in passes] == [HISTORY] * 7
    credits = [p.credit_s for _, p in passes]
    assert credits[:4] == [0.0] * 4
    assert 0.04 <= credits[4] < 0.06  # half the fastest so far, the fifth answer's 0.08 s
    assert credits[5] == credits[6] == credits[4]  # slower answers leave it
