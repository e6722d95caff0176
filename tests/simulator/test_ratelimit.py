import json
import multiprocessing as mp
import time

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


def test_four_processes_never_exceed_ten_accepted_per_second():
    with Simulator([SPEC], SimulatorConfig(rate_limit=10, seed=2)) as sim:
        creds = sim.credentials("rl")
        ctx = mp.get_context("spawn")
        start_at = time.time() + 2.0  # all processes start hammering together
        with ctx.Pool(4) as pool:
            results = pool.starmap(hammer, [(sim.base_url, creds, 40, start_at)] * 4)
        answers = [a for r in results for a in r]
        statuses = [s for s, _ in answers]
        assert len(answers) == 160 and set(statuses) <= {200, 429}
        assert statuses.count(429) > 0 and statuses.count(200) >= 10
        for status, text in answers:
            if status == 429:
                body = json.loads(text)
                assert body["code"] == "429" and body["msg"] == "Too Many Requests" and body["data"] is None
        assert sim.max_requests_per_window(account="rl", endpoint=HISTORY) <= 10
        accepted = [e["t"] for e in sim.request_log() if e["status"] == 200]
        assert max_in_window(accepted) <= 10
        assert statuses.count(200) == len(accepted)


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
