import requests

from bitget_assets.simulator import AccountSpec, AdminClient, FaultConfig, Simulator, SimulatorConfig
from bitget_assets.simulator.faults import RELEASE_CODES

from .conftest import NOW
from .signing import TIME, V2_HISTORY, get

SPEC = AccountSpec(name="rw", seed=4, orders=300, symbols=4, now_ms=NOW)
Q = {"productType": "USDT-FUTURES", "limit": "5"}
MESSAGES = dict(RELEASE_CODES)


def _run(n: int, seed: int) -> tuple[list[tuple[int, dict]], list[dict]]:
    cfg = SimulatorConfig(rate_limit=None, frozen=True, seed=seed,
                          faults=FaultConfig(release_window=0.5, release_http400=0.4))
    with Simulator([SPEC], cfg) as s:
        creds, sess = s.credentials("rw"), requests.Session()
        answers = [(r.status_code, r.json()) for r in (get(s.base_url, creds, V2_HISTORY, Q, session=sess)
                                                       for _ in range(n))]
        public = [requests.get(s.base_url + TIME, timeout=10).status_code for _ in range(20)]
        assert public == [200] * 20  # public endpoints are spared (only_signed)
        return answers, s.request_log()[:n]


def test_release_window_answers_retryable_codes_with_200_and_400_logged_and_seeded():
    answers, log = _run(120, seed=8)
    released = 0
    for (status, body), entry in zip(answers, log, strict=True):
        assert entry["status"] == status and entry["code"] == body["code"]
        if entry["fault"] == "release_window":
            released += 1
            assert status in (200, 400)
            assert body == {"code": body["code"], "msg": MESSAGES[body["code"]], "requestTime": NOW, "data": None}
        else:
            assert entry["fault"] is None and (status, body["code"]) == (200, "00000")
            assert len(body["data"]["entrustedList"]) == 5
    assert 40 <= released <= 80
    seen = {(s, b["code"]) for s, b in answers if b["code"] != "00000"}
    assert {c for _, c in seen} == set(MESSAGES)  # all five codes ...
    assert {s for s, _ in seen} == {200, 400}     # ... with both statuses
    again, _ = _run(120, seed=8)
    assert [(s, b["code"]) for s, b in again] == [(s, b["code"]) for s, b in answers]
    other, _ = _run(120, seed=9)
    assert [(s, b["code"]) for s, b in other] != [(s, b["code"]) for s, b in answers]


def test_release_window_is_admin_settable():
    with Simulator([SPEC], SimulatorConfig(rate_limit=None, frozen=True)) as s:
        admin = AdminClient(s.base_url, s.admin_token)
        creds = s.credentials("rw")
        assert get(s.base_url, creds, V2_HISTORY, Q).json()["code"] == "00000"
        assert admin.set_faults(release_window=1.0, release_http400=1.0)["release_window"] == 1.0
        codes = [get(s.base_url, creds, V2_HISTORY, Q) for _ in range(10)]
        assert {r.status_code for r in codes} == {400} and all(r.json()["code"] in MESSAGES for r in codes)
        admin.set_faults(FaultConfig())
        assert get(s.base_url, creds, V2_HISTORY, Q).json()["code"] == "00000"
