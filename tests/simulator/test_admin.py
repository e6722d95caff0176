import pytest
import requests

from bitget_assets.simulator import AccountSpec, AdminClient, Simulator, SimulatorConfig

from .conftest import NOW
from .helpers import HISTORY, PENDING, TYPES, page_all, signed_get

DAY = 86_400_000
SPEC = AccountSpec(name="adm", seed=9, orders=800, symbols=10, now_ms=NOW, open_orders=6)


@pytest.fixture()
def asim():
    with Simulator([SPEC], SimulatorConfig(rate_limit=None, frozen=True, admin_token="tok")) as sim:
        yield sim


def _server_time(sim):
    return int(requests.get(sim.base_url + "/api/v2/public/time", timeout=10).json()["data"]["serverTime"])


def test_admin_needs_token(asim):
    assert requests.get(asim.base_url + "/admin/clock", timeout=10).status_code == 403
    creds = asim.credentials("adm")
    r = requests.get(asim.base_url + "/admin/clock", headers={"X-Admin-Token": creds["api_key"]}, timeout=10)
    assert r.status_code == 403
    r = signed_get(asim.base_url, creds, "/admin/truth", "account=adm")
    assert r.status_code == 403
    assert AdminClient(asim.base_url, "tok").clock() == {"now_ms": NOW, "frozen": True}


def test_clock_controls_server_time_and_retention(asim):
    admin = AdminClient(asim.base_url, "tok")
    before = len(admin.truth("adm"))
    assert admin.advance(30 * DAY)["now_ms"] == NOW + 30 * DAY
    assert _server_time(asim) == NOW + 30 * DAY
    after = admin.truth("adm")
    assert len(after) < before  # the oldest month fell out of retention
    assert all(int(o["cTime"]) >= NOW - 60 * DAY for o in after if o["status"] not in ("live",))
    got = [o for pt in TYPES for o in page_all(asim.base_url, asim.credentials("adm"), HISTORY, f"productType={pt}")]
    assert len(got) + 6 == len(after)
    admin.set_now(NOW)
    admin.unfreeze()
    assert abs(_server_time(asim) - NOW) < 5_000
    assert admin.freeze()["frozen"] is True
    asim.set_now(NOW + 5)
    assert asim.now_ms() == NOW + 5 and asim.advance(5) == NOW + 10


def test_add_orders_appear_in_truth_with_increasing_ids(asim):
    admin = AdminClient(asim.base_url, "tok")
    old_max = max(int(o["orderId"]) for o in admin.truth("adm"))
    made = admin.add_orders("adm", generate=5, symbols=["ETHUSDT"], open=2)
    made += asim.add_orders("adm", orders=[{"symbol": "BTCUSDT", "side": "sell", "status": "canceled"},
                                           {"symbol": "NEWCOINUSDT", "productType": "USDT-FUTURES"}])
    ids = [int(o["orderId"]) for o in made]
    assert len(made) == 9 and min(ids) > old_max and ids == sorted(ids)
    creds = asim.credentials("adm")
    pending = {o["orderId"] for pt in TYPES for o in page_all(asim.base_url, creds, PENDING, f"productType={pt}")}
    assert len(pending & {o["orderId"] for o in made}) == 2 and len(pending) == 8
    assert made[7]["side"] == "sell" and made[7]["status"] == "canceled"
    truth_ids = {o["orderId"] for o in asim.truth("adm")}
    assert {o["orderId"] for o in made} <= truth_ids
    r = signed_get(asim.base_url, creds, HISTORY, "productType=USDT-FUTURES&symbol=NEWCOINUSDT")
    assert [o["orderId"] for o in r.json()["data"]["entrustedList"]] == [made[8]["orderId"]]
    c = requests.get(asim.base_url + "/api/v2/mix/market/contracts?productType=USDT-FUTURES&symbol=NEWCOINUSDT",
                     timeout=10)
    assert c.json()["code"] == "00000"


def test_close_open_moves_orders_from_pending_to_history(asim):
    admin = AdminClient(asim.base_url, "tok")
    creds = asim.credentials("adm")
    pending = [o for pt in TYPES for o in page_all(asim.base_url, creds, PENDING, f"productType={pt}")]
    assert len(pending) == 6
    closed = admin.close_open_orders("adm", order_ids=[pending[0]["orderId"]], status="canceled")
    assert [o["orderId"] for o in closed] == [pending[0]["orderId"]] and closed[0]["status"] == "canceled"
    rest = asim.close_open_orders("adm")
    assert len(rest) == 5 and all(o["status"] == "filled" and o["baseVolume"] == o["size"] for o in rest)
    assert not [o for pt in TYPES for o in page_all(asim.base_url, creds, PENDING, f"productType={pt}")]
    history = {o["orderId"]: o for pt in TYPES for o in page_all(asim.base_url, creds, HISTORY, f"productType={pt}")}
    for o in closed + rest:
        assert history[o["orderId"]] == o and int(o["uTime"]) >= int(o["cTime"])


def test_requests_and_faults_routes(asim):
    admin = AdminClient(asim.base_url, "tok")
    creds = asim.credentials("adm")
    signed_get(asim.base_url, creds, HISTORY, "productType=USDT-FUTURES&limit=1")
    log = admin.request_log()
    assert log[-1]["endpoint"] == HISTORY and log[-1]["account"] == creds["uid"]
    assert log[-1]["params"] == {"productType": "USDT-FUTURES", "limit": "1"}
    assert admin.request_log(since=log[-1]["t"]) == []
    assert admin.max_requests_per_window(uid=creds["uid"]) >= 1
    assert admin.set_faults(error_200=1.0)["error_200"] == 1.0
    assert signed_get(asim.base_url, creds, HISTORY, "productType=USDT-FUTURES").json()["code"] == "40015"
    admin.set_faults()
    assert admin.accounts()["adm"]["api_key"] == creds["api_key"]


def test_request_log_file(tmp_path):
    path = tmp_path / "log.jsonl"
    with Simulator([SPEC], SimulatorConfig(request_log_path=str(path))) as sim:
        requests.get(sim.base_url + "/api/v2/public/time", timeout=10)
        signed_get(sim.base_url, sim.credentials("adm"), HISTORY, "productType=COIN-FUTURES")
        lines = path.read_text().splitlines()
    assert len(lines) == 2 and '"endpoint":"/api/v2/public/time"' in lines[0]
    assert sim.credentials("adm")["api_secret"] not in path.read_text()
