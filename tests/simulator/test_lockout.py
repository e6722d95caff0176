import time

import requests

from bitget_assets.simulator import AccountSpec, AdminClient, Simulator, SimulatorConfig
from bitget_assets.simulator.lockout import IpCeiling

from .conftest import NOW
from .signing import TIME, V2_HISTORY, code_of, get

SPEC = AccountSpec(name="ip", seed=4, orders=100, symbols=2, now_ms=NOW)
TOO_MANY = {"code": "429", "msg": "Too Many Requests", "requestTime": NOW, "data": None}


def test_ceiling_arithmetic():
    c = IpCeiling(3, window_s=1.0, lockout_s=2.0)
    assert [c.admit("a", t) for t in (0.0, 0.1, 0.2)] == [True] * 3
    assert c.admit("b", 0.3)                       # per IP
    assert not c.admit("a", 0.3) and c.locked_until("a") == 2.3
    assert not c.admit("a", 1.5) and not c.admit("a", 2.29)  # refused calls neither count nor extend
    assert c.admit("a", 2.3) and c.locked_until("a") is None
    assert [c.admit("a", t) for t in (2.4, 2.5, 2.6)] == [True, True, False]  # fresh window after the lock


def test_over_the_ip_ceiling_everything_answers_429_until_the_lockout_ends():
    cfg = SimulatorConfig(rate_limit=None, public_rate_limit=None, frozen=True, ip_limit=30, ip_window_s=5,
                          ip_lockout_s=2)
    with Simulator([SPEC], cfg) as s:
        creds, sess = s.credentials("ip"), requests.Session()
        q = {"productType": "USDT-FUTURES", "limit": "1"}
        first = [sess.get(s.base_url + TIME, timeout=10).status_code for _ in range(20)]
        first += [get(s.base_url, creds, V2_HISTORY, q, session=sess).status_code for _ in range(10)]
        assert first == [200] * 30
        trigger = get(s.base_url, creds, V2_HISTORY, q, session=sess)
        assert trigger.status_code == 429 and trigger.json() == TOO_MANY
        t_trigger = s.request_log()[-1]["t"]
        locked = [sess.get(s.base_url + TIME, timeout=10), sess.get(s.base_url + "/nowhere", timeout=10),
                  get(s.base_url, creds, V2_HISTORY, q, session=sess)]
        assert [(r.status_code, r.json()) for r in locked] == [(429, TOO_MANY)] * 3
        # admin routes are not the exchange: never limited
        assert AdminClient(s.base_url, s.admin_token).clock()["now_ms"] == NOW
        log = s.request_log()
        assert [e["fault"] for e in log[30:]] == ["ip_lockout"] * 4 and {e["status"] for e in log[30:]} == {429}
        time.sleep(max(0.0, t_trigger + 2.05 - time.time()))
        assert code_of(get(s.base_url, creds, V2_HISTORY, q, session=sess)) == (200, "00000")
        assert sess.get(s.base_url + TIME, timeout=10).status_code == 200


def test_ip_ceiling_is_off_by_default():
    with Simulator([SPEC], SimulatorConfig(rate_limit=None, public_rate_limit=None, frozen=True)) as s:
        sess = requests.Session()
        assert s.ip_ceiling is None
        assert {sess.get(s.base_url + TIME, timeout=10).status_code for _ in range(300)} == {200}
