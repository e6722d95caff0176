import requests

from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig

from .conftest import NOW
from .helpers import HISTORY, PENDING, TYPES, page_all, signed_get

DAY = 86_400_000


def _key(o):
    return int(o["cTime"]), int(o["orderId"])


def test_paging_by_product_type_returns_exactly_truth(sim, creds):
    s = requests.Session()
    got = []
    for pt in TYPES:
        history = page_all(sim.base_url, creds, HISTORY, f"productType={pt}", session=s)
        ids = [int(o["orderId"]) for o in history]
        assert ids == sorted(ids, reverse=True)  # newest first, no duplicates
        got += history + page_all(sim.base_url, creds, PENDING, f"productType={pt}", session=s)
    truth = sim.truth("demo")
    assert sorted(got, key=_key) == truth
    assert len(truth) == 17000


def test_paging_per_symbol_and_by_windows(sim, creds):
    s = requests.Session()
    truth = [o for o in sim.truth("small") if o["status"] != "live"]
    small = sim.credentials("small")
    got = []
    for info in sim.accounts["small"].symbols:
        # 7-day windows, closed on both ends: walk them without overlap (end = next start - 1).
        start = NOW - 90 * DAY
        while start <= NOW:
            end = min(start + 7 * DAY - 1, NOW)
            got += page_all(sim.base_url, small, HISTORY,
                            f"productType={info.product_type}&symbol={info.name}&startTime={start}&endTime={end}",
                            session=s)
            start = end + 1
    pending = [o for pt in TYPES for o in page_all(sim.base_url, small, PENDING, f"productType={pt}", session=s)]
    expected = [o for o in truth if o["orderId"] not in {p["orderId"] for p in pending}]
    assert sorted(got, key=_key) == expected


def test_empty_page_variants_occur(sim, creds):
    seen = set()
    for _ in range(40):
        r = signed_get(sim.base_url, creds, HISTORY, f"productType=USDT-FUTURES&endTime={NOW - 95 * DAY}")
        data = r.json()["data"]
        seen.add((repr(data["entrustedList"]), repr(data["endId"])))
    assert seen == {("[]", "''"), ("[]", "None"), ("None", "''"), ("None", "None")}


def test_fixed_empty_styles():
    spec = AccountSpec(name="e", seed=1, orders=20, symbols=2, now_ms=NOW)
    for style, expected in (("list", {"entrustedList": [], "endId": ""}),
                            ("null", {"entrustedList": None, "endId": None})):
        with Simulator([spec], SimulatorConfig(empty_style=style, frozen=True)) as sim:
            r = signed_get(sim.base_url, sim.credentials("e"), HISTORY, "productType=USDC-FUTURES&symbol=ETHPERP")
            assert r.json()["data"] == expected


def test_retention_hides_expired_orders(sim, creds):
    account = sim.accounts["demo"]
    expired = [int(account.oids[p]) for p in range(len(account.oids)) if account.ctimes[p] < NOW - 90 * DAY]
    assert expired
    r = signed_get(sim.base_url, creds, HISTORY, f"productType=USDT-FUTURES&idLessThan={min(expired) + 10**9}")
    assert not r.json()["data"]["entrustedList"]
