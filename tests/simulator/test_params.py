import pytest
import requests

from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig

from .conftest import NOW
from .helpers import HISTORY, PENDING, signed_get

DAY = 86_400_000


def call(sim, creds, query, path=HISTORY):
    r = signed_get(sim.base_url, creds, path, query)
    return r.status_code, r.json()


@pytest.mark.parametrize(("query", "code"), [
    ("", "40019"),
    ("productType=", "40019"),
    ("symbol=BTCUSDT", "40019"),
    ("productType=usdt-futures", "40034"),
    ("productType=SUSDT-FUTURES", "40034"),  # demo type the account does not have
    ("productType=SPOT", "40034"),
    ("productType=USDT-FUTURES&symbol=NOPEUSDT", "40034"),
    ("productType=USDT-FUTURES&symbol=BTCUSD", "40034"),  # exists, but in COIN-FUTURES
    ("productType=USDT-FUTURES&limit=abc", "40020"),
    ("productType=USDT-FUTURES&limit=1.5", "40020"),
    ("productType=USDT-FUTURES&limit=0", "40017"),
    ("productType=USDT-FUTURES&idLessThan=x1", "40020"),
    ("productType=USDT-FUTURES&startTime=17e11", "40020"),
    ("productType=USDT-FUTURES&endTime=soon", "40020"),
    (f"productType=USDT-FUTURES&startTime={NOW - DAY}&endTime={NOW - 2 * DAY}", "40707"),
    (f"productType=USDT-FUTURES&startTime={NOW - 91 * DAY}&endTime={NOW - 85 * DAY}", "40704"),
    (f"productType=USDT-FUTURES&startTime={NOW - 80 * DAY}&endTime={NOW + 20 * DAY}", "40705"),
])
@pytest.mark.parametrize("path", [HISTORY, PENDING])
def test_parameter_errors(sim, creds, query, code, path):
    status, body = call(sim, creds, query, path)
    assert (status, body["code"]) == (400, code), body
    assert body["data"] is None and body["msg"]


def test_retention_grace_and_limit_cap(sim, creds):
    status, body = call(sim, creds, f"productType=USDT-FUTURES&startTime={NOW - 90 * DAY - 4 * 60_000}")
    assert status == 200 and body["code"] == "00000"
    status, body = call(sim, creds, "productType=USDT-FUTURES&limit=500")
    assert len(body["data"]["entrustedList"]) == 100  # capped (a guess: Bitget's max is 100)
    status, body = call(sim, creds, "productType=USDT-FUTURES")
    assert len(body["data"]["entrustedList"]) == 100  # default limit


def test_time_window_filters(sim, creds):
    start, end = NOW - 10 * DAY, NOW - 9 * DAY
    open_ids = _open_ids(sim)
    expected = [o for o in sim.truth("demo") if start <= int(o["cTime"]) <= end
                and o["symbol"] == "ETHUSDT" and o["orderId"] not in open_ids]
    expected.sort(key=lambda o: int(o["orderId"]), reverse=True)
    _, body = call(sim, creds, f"productType=USDT-FUTURES&symbol=ETHUSDT&startTime={start}&endTime={end}")
    assert expected and body["data"]["entrustedList"] == expected[:100]


def _open_ids(sim):
    store = sim.stores["demo"]
    return {str(store.oids[p]) for p in store.open_positions()}


def test_order_id_client_oid_and_source_filters(sim, creds):
    finished = [o for o in sim.truth("demo") if o["orderId"] not in _open_ids(sim)]
    target = finished[len(finished) // 2]
    pt = next(s.product_type for s in sim.accounts["demo"].symbols if s.name == target["symbol"])
    _, body = call(sim, creds, f"productType={pt}&orderId={target['orderId']}")
    assert body["data"]["entrustedList"] == [target]
    _, body = call(sim, creds, f"productType={pt}&clientOid={target['clientOid']}")
    assert body["data"]["entrustedList"] == [target]
    _, body = call(sim, creds, "productType=USDT-FUTURES&orderSource=liquidation")
    items = body["data"]["entrustedList"]
    assert items and all(o["orderSource"] == "liquidation" for o in items)
    _, body = call(sim, creds, "productType=USDT-FUTURES&orderId=notanumber")
    assert not body["data"]["entrustedList"]


def test_pending_status_filter(sim, creds):
    open_orders = [o for o in sim.truth("demo") if o["orderId"] in _open_ids(sim)]
    for status in ("live", "partially_filled"):
        got = []
        for pt in ("USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES"):
            _, body = call(sim, creds, f"productType={pt}&status={status}", PENDING)
            got += body["data"]["entrustedList"] or []
        assert sorted(o["orderId"] for o in got) == sorted(o["orderId"] for o in open_orders if o["status"] == status)


def test_public_endpoints(sim):
    t = requests.get(sim.base_url + "/api/v2/public/time", timeout=10).json()
    assert t["code"] == "00000" and t["data"]["serverTime"] == str(NOW)
    r = requests.get(sim.base_url + "/api/v2/mix/market/contracts", params={"productType": "COIN-FUTURES"},
                     timeout=10)
    contracts = r.json()["data"]
    names = {c["symbol"] for c in contracts}
    traded = {s.name for s in sim.accounts["demo"].symbols if s.product_type == "COIN-FUTURES"}
    assert traded <= names and len(names) >= len(traded) + 10
    for c in contracts:
        for k in ("symbol", "baseCoin", "quoteCoin", "symbolType", "symbolStatus", "minTradeNum", "pricePlace",
                  "volumePlace", "sizeMultiplier", "makerFeeRate", "takerFeeRate", "maxLever", "launchTime"):
            assert isinstance(c[k], str)
    one = requests.get(sim.base_url + "/api/v2/mix/market/contracts?productType=USDT-FUTURES&symbol=BTCUSDT",
                       timeout=10).json()["data"]
    assert [c["symbol"] for c in one] == ["BTCUSDT"]
    bad = requests.get(sim.base_url + "/api/v2/mix/market/contracts?productType=FOO", timeout=10)
    assert bad.status_code == 400 and bad.json()["code"] == "40034"
    missing = requests.get(sim.base_url + "/api/v2/mix/market/contracts", timeout=10)
    assert missing.json()["code"] == "40019"
    assert requests.get(sim.base_url + "/api/v2/nope", timeout=10).status_code == 404


def test_short_max_span_and_demo_types():
    spec = AccountSpec(name="d", seed=5, orders=300, symbols=6, now_ms=NOW,
                       product_types=("SUSDT-FUTURES", "SCOIN-FUTURES", "SUSDC-FUTURES"))
    with Simulator([spec], SimulatorConfig(max_span_days=7, frozen=True, rate_limit=None)) as sim:
        creds = sim.credentials("d")
        assert call(sim, creds, f"productType=SUSDT-FUTURES&startTime={NOW - 8 * DAY}&endTime={NOW}")[1]["code"] \
            == "40705"
        assert call(sim, creds, f"productType=SUSDT-FUTURES&startTime={NOW - 8 * DAY}")[1]["code"] == "40705"
        status, body = call(sim, creds, f"productType=SUSDT-FUTURES&startTime={NOW - 7 * DAY}&endTime={NOW}")
        assert status == 200
        names = {s.name for s in sim.accounts["d"].symbols}
        assert "SBTCSUSDT" in names
        # Without times the default window is the last max_span days.
        _, body = call(sim, creds, "productType=SUSDT-FUTURES&limit=100")
        items = body["data"]["entrustedList"] or []
        assert all(int(o["cTime"]) >= NOW - 7 * DAY for o in items)
