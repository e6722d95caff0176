import json
import time

import pytest
import requests

from bitget_assets.simulator import AccountSpec, FaultConfig, Simulator, SimulatorConfig

from .conftest import NOW
from .helpers import HISTORY, signed_get

SPEC = AccountSpec(name="f", seed=5, orders=500, symbols=6, now_ms=NOW)
Q = "productType=USDT-FUTURES&limit=20"


@pytest.fixture(scope="module")
def fsim():
    with Simulator([SPEC], SimulatorConfig(rate_limit=None, seed=3, frozen=True)) as sim:
        yield sim


def _get(sim):
    return signed_get(sim.base_url, sim.credentials("f"), HISTORY, Q, timeout=20)


def test_5xx_is_html(fsim):
    fsim.set_faults(FaultConfig(error_5xx=1.0))
    r = _get(fsim)
    assert r.status_code in (502, 503) and r.headers["Content-Type"].startswith("text/html")
    assert "<html>" in r.text
    assert fsim.request_log()[-1]["fault"] == "error_5xx"
    # public endpoints are spared by default
    assert requests.get(fsim.base_url + "/api/v2/public/time", timeout=10).status_code == 200


def test_429_burst(fsim):
    fsim.set_faults(FaultConfig(burst_429=0.15, burst_len=5))
    statuses = [_get(fsim) for _ in range(80)]
    fsim.set_faults(FaultConfig())
    faults = [e["fault"] for e in fsim.request_log()[-80:]]
    for r, fault in zip(statuses, faults, strict=True):
        assert (r.status_code == 429) == (fault == "burst_429")
        if fault:
            assert r.json() == {"code": "429", "msg": "Too Many Requests", "requestTime": NOW, "data": None}
            assert "Retry-After" not in r.headers
    # a burst is the starting request plus the next 5: complete runs are multiples of 6
    runs, n = [], 0
    for fault in faults:
        if fault:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    assert runs and all(r % 6 == 0 for r in runs)


def test_reset_raises_connection_error(fsim):
    fsim.set_faults(FaultConfig(reset=1.0))
    with pytest.raises(requests.exceptions.ConnectionError):
        _get(fsim)
    entry = fsim.request_log()[-1]
    assert entry["fault"] == "reset" and entry["status"] is None


def test_slow(fsim):
    fsim.set_faults(FaultConfig(slow=1.0, slow_seconds=1.0))
    t = time.time()
    r = _get(fsim)
    assert r.status_code == 200 and r.json()["code"] == "00000" and time.time() - t >= 0.95


def test_truncated(fsim):
    fsim.set_faults(FaultConfig(truncated=1.0))
    r = _get(fsim)
    assert r.status_code == 200 and r.text.startswith('{"code":"00000"')
    with pytest.raises(ValueError):
        json.loads(r.text)


def test_error_200(fsim):
    fsim.set_faults(FaultConfig(error_200=1.0))
    r = _get(fsim)
    assert r.status_code == 200 and r.json()["code"] == "40015" and r.json()["data"] is None


def test_mixed_faults_are_seeded_and_logged(fsim):
    fsim.set_faults(FaultConfig(error_5xx=0.2, truncated=0.2, error_200=0.2))
    kinds = set()
    for _ in range(40):
        _get(fsim)
        kinds.add(fsim.request_log()[-1]["fault"])
    fsim.set_faults(FaultConfig())
    assert {None, "error_5xx", "truncated", "error_200"} <= kinds
    with pytest.raises(ValueError):
        FaultConfig(error_5xx=0.7, reset=0.7)
