import json
import multiprocessing as mp
import time
from collections import deque

import requests

from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig
from bitget_assets.simulator.ratelimit import SlidingWindowLimiter, max_in_window

from .conftest import NOW
from .helpers import HISTORY, hammer, signed_get

SPEC = AccountSpec(name="rl", seed=11, orders=400, symbols=8, now_ms=NOW)


def test_limiter_and_window_audit_agree():
    lim = SlidingWindowLimiter(1.0)
    times = [i * 0.05 for i in range(100)]  # 20 requests/s offered
    accepted = [t for t in times if lim.allow("k", t, 10)]
    assert max_in_window(accepted) == 10
    assert len(accepted) in (50, 51)
    assert max_in_window([0.0, 0.5, 0.999, 1.0, 1.5]) == 3
    assert SlidingWindowLimiter().allow("k", 0.0, None)


def refusals_without_full_window(entries: list[dict], limit: int, window_s: float = 1.0) -> list[dict]:
    """The 429 answers among `entries` (one account and endpoint, in log = decision order) that had fewer than
    `limit` accepted requests in the window before them, by the limiter's own rule: an earlier accepted
    arrival `a` still counts for `b` iff not `a <= b - window_s`."""
    accepted: deque[float] = deque()
    unjustified = []
    for e in entries:
        cutoff = e["t"] - window_s
        while accepted and accepted[0] <= cutoff:
            accepted.popleft()
        if e["status"] == 429 and len(accepted) < limit:
            unjustified.append({**e, "accepted_in_window": len(accepted)})
        elif e["status"] == 200:
            accepted.append(e["t"])
    return unjustified


def test_four_processes_never_exceed_ten_accepted_per_second():
    hammer_s = 3.0
    with Simulator([SPEC], SimulatorConfig(rate_limit=10, seed=2)) as sim:
        creds = sim.credentials("rl")
        ctx = mp.get_context("spawn")
        start_at = time.time() + 2.0  # all processes start hammering together ...
        with ctx.Pool(4) as pool:  # ... and keep at it for `hammer_s` seconds, far above 10 requests/s
            results = pool.starmap(hammer, [(sim.base_url, creds, 0, start_at, start_at + hammer_s)] * 4)
        log = sim.request_log()
    answers = [a for r in results for a in r]
    statuses = [s for s, _ in answers]
    assert len(answers) == len(log) and set(statuses) <= {200, 429}
    assert statuses.count(429) > 0 and statuses.count(200) >= 10
    for status, text in answers:
        if status == 429:
            body = json.loads(text)
            assert body["code"] == "429" and body["msg"] == "Too Many Requests" and body["data"] is None
    assert sim.max_requests_per_window(account="rl", endpoint=HISTORY) <= 10
    accepted = [e["t"] for e in log if e["status"] == 200]
    assert max_in_window(accepted) <= 10
    assert statuses.count(200) == len(accepted)

    mine = [e for e in log if e["account"] == creds["uid"] and e["endpoint"] == HISTORY]
    assert len(mine) == len(log)
    # (a) Every 429 was deserved: 10 accepted requests of this account and endpoint in the second before it.
    unjustified = refusals_without_full_window(mine, 10)
    assert len(unjustified) == 0, f"429s without a full window, first: {unjustified[:1]}"
    # (b) The server let the budget through: an over-strict limiter refusing most requests fails here.
    active_s = mine[-1]["t"] - mine[0]["t"]
    assert active_s >= hammer_s * 0.8, f"the processes hammered only {active_s:.2f} s together"
    assert len(accepted) >= 0.8 * 10 * active_s, (len(accepted), active_s)


def test_limit_is_per_account_and_endpoint_and_429_has_no_retry_after():
    other = AccountSpec(name="rl2", seed=12, orders=100, symbols=3, now_ms=NOW)
    with Simulator([SPEC, other], SimulatorConfig(rate_limit=3, public_rate_limit=4)) as sim:
        a, b = sim.credentials("rl"), sim.credentials("rl2")
        s = requests.Session()
        q = "productType=USDT-FUTURES&limit=1"
        first = [signed_get(sim.base_url, a, HISTORY, q, session=s).status_code for _ in range(5)]
        assert first[:3] == [200] * 3 and 429 in first[3:]
        # another account and another endpoint still have their own budget
        assert signed_get(sim.base_url, b, HISTORY, q, session=s).status_code == 200
        assert signed_get(sim.base_url, a, "/api/v2/mix/order/orders-pending", q, session=s).status_code == 200
        r = signed_get(sim.base_url, a, HISTORY, q, session=s)
        assert r.status_code == 429 and "Retry-After" not in r.headers
        public = [s.get(sim.base_url + "/api/v2/public/time", timeout=10).status_code for _ in range(8)]
        assert public[:4] == [200] * 4 and 429 in public
        time.sleep(1.05)
        assert signed_get(sim.base_url, a, HISTORY, q, session=s).status_code == 200


def test_remain_limit_header_counts_down_per_endpoint():
    from .signing import TIME, V2_HISTORY, V3_HISTORY, get

    with Simulator([SPEC], SimulatorConfig(rate_limit=10, public_rate_limit=20, frozen=True,
                                           account_modes={"rl": "classic"})) as sim:
        creds, s = sim.credentials("rl"), requests.Session()
        q = {"productType": "USDT-FUTURES", "limit": "1"}
        heads = [get(sim.base_url, creds, V2_HISTORY, q, session=s) for _ in range(14)]
        log = sim.request_log()
        assert [r.status_code for r in heads] == [e["status"] for e in log] and heads[-1].status_code == 429
        for r, e in zip(heads, log, strict=True):  # calls left = 10 - accepted in the second up to this one
            left = 10 - sum(1 for a in log if a["status"] == 200 and e["t"] - 1 < a["t"] <= e["t"])
            assert r.headers["x-mbx-used-remain-limit"] == str(left if r.status_code == 200 else 0)
        assert heads[0].headers["x-mbx-used-remain-limit"] == "9"
        public = s.get(sim.base_url + TIME, timeout=10)
        assert public.headers["x-mbx-used-remain-limit"] == "19"  # per IP and endpoint, its own budget
        v3 = get(sim.base_url, creds, V3_HISTORY, {"category": "USDT-FUTURES"}, session=s)
        assert v3.json()["code"] == "40084" and v3.headers["x-mbx-used-remain-limit"] == "19"  # 20/s
    with Simulator([SPEC], SimulatorConfig(rate_limit=None, public_rate_limit=None, frozen=True)) as sim:
        r = get(sim.base_url, sim.credentials("rl"), V2_HISTORY, {"productType": "USDT-FUTURES"})
        assert r.status_code == 200 and "x-mbx-used-remain-limit" not in r.headers  # unlimited: no header


def test_v3_endpoints_allow_twenty_per_second():
    from .signing import V3_HISTORY, get

    with Simulator([SPEC], SimulatorConfig(rate_limit=None, frozen=True, account_modes={"rl": "unified"})) as sim:
        creds, s = sim.credentials("rl"), requests.Session()
        answers = [get(sim.base_url, creds, V3_HISTORY, {"category": "USDT-FUTURES", "limit": "1"}, session=s)
                   for _ in range(35)]
        log = sim.request_log()
    assert max_in_window([e["t"] for e in log if e["status"] == 200]) == 20
    assert refusals_without_full_window(log, 20) == []
    assert [r.status_code for r in answers] == [e["status"] for e in log] and 429 in [e["status"] for e in log]
    assert [r.headers["x-mbx-used-remain-limit"] for r in answers[:3]] == ["19", "18", "17"]


def test_the_thread_that_stamps_arrivals_outranks_the_clients_when_permitted():
    """The exchange is another machine: the server thread asks for a higher priority than its clients so a busy
    runner does not stamp one request late beside ten on time. Without the privilege it keeps the default."""
    import os
    import threading

    from bitget_assets.simulator.server import SERVER_NICE

    def try_it(out: list) -> None:  # the same request the server makes, on a throwaway thread
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SERVER_NICE)
            out.append(True)
        except OSError:
            out.append(False)

    permitted: list[bool] = []
    probe = threading.Thread(target=try_it, args=(permitted,))
    probe.start()
    probe.join()
    with Simulator([SPEC], SimulatorConfig(frozen=True)) as sim:
        nice = os.getpriority(os.PRIO_PROCESS, sim.thread_native_id)
    assert nice == (SERVER_NICE if permitted[0] else os.getpriority(os.PRIO_PROCESS, 0))
