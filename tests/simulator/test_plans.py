import json

import pytest
import requests

from bitget_assets.simulator import AccountSpec, AdminClient, Simulator, SimulatorConfig
from bitget_assets.simulator.plans import KINDS, SPAWN_SOURCES

from .activity import PLAN_HISTORY, PLAN_PENDING, PLAN_TYPES, walk
from .conftest import NOW
from .helpers import HISTORY, TYPES, signed_get

DAY = 86_400_000
GROUP = {"normal_plan": "normal_plan", "track_plan": "track_plan"}


def _group(kind):
    return GROUP.get(kind, "profit_loss")


def _key(p):
    return int(p["cTime"]), int(p["orderId"])


def call(sim, creds, query, path=PLAN_HISTORY):
    r = signed_get(sim.base_url, creds, path, query)
    return r.status_code, r.json()


def test_every_kind_and_status_is_returnable(sim):
    plans = sim.truth("demo", dataset="plan_orders")
    assert {p["planType"] for p in plans} == set(KINDS)
    assert {p["planStatus"] for p in plans} == {"executed", "cancelled", "fail_execute", "live"}
    for kind in KINDS:
        assert {p["planStatus"] for p in plans if p["planType"] == kind} == {"executed", "cancelled",
                                                                             "fail_execute", "live"}, kind
    assert 1500 <= len(plans) <= 3000  # ~12% of 17,000 orders plus the expired share


def test_executed_plans_link_to_the_orders_they_spawned(sim):
    orders = {o["orderId"]: o for o in sim.truth("demo", include_expired=True)}
    plans = sim.truth("demo", dataset="plan_orders", include_expired=True)
    executed = [p for p in plans if p["planStatus"] == "executed"]
    assert len(executed) > 300
    linked = set()
    for p in executed:
        o = orders[p["executeOrderId"]]
        assert o["orderSource"] in SPAWN_SOURCES[p["planType"]], (p, o)
        assert (o["symbol"], o["baseVolume"], o["priceAvg"]) == (p["symbol"], p["baseVolume"], p["priceAvg"])
        assert int(p["cTime"]) < int(o["cTime"]) == int(p["uTime"])
        linked.add(p["executeOrderId"])
    assert len(linked) == len(executed)  # one plan per spawned order
    assert {o["orderSource"] for o in orders.values()} >= {"pos_profit_market", "pos_loss_market"}
    for p in plans:
        if p["planStatus"] == "live":
            assert "executeOrderId" not in p and p["uTime"] == p["cTime"]
        elif p["planStatus"] != "executed":
            assert (p["executeOrderId"], p["baseVolume"]) == ("", "0")
        assert ("price" in p) == (p["planType"] != "track_plan")
        assert (p["callbackRatio"] != "") == (p["planType"] in ("track_plan", "moving_plan"))
        if p["planType"] in ("pos_profit", "pos_loss"):
            assert p["size"] == "0"


def test_plan_ids_share_the_order_space_without_collisions(sim):
    plans = sim.truth("demo", dataset="plan_orders", include_expired=True)
    ids = [p["orderId"] for p in plans]
    assert all(len(i) == 19 and i.isdigit() for i in ids) and len(set(ids)) == len(ids)
    order_ids = {o["orderId"] for o in sim.truth("demo", include_expired=True)}
    trade_ids = {f["tradeId"] for f in sim.truth("demo", dataset="fills", include_expired=True)}
    assert not set(ids) & order_ids and not set(ids) & trade_ids and not order_ids & trade_ids
    assert all(abs(int(p["orderId"]) // 1_000_000 - int(p["cTime"])) == 0 for p in plans)  # time-ordered


def test_full_walk_returns_exactly_the_truth(sim, creds):
    s = requests.Session()
    got, longest, pending_pages = [], 0, []
    for pt in TYPES:
        for group in PLAN_TYPES:
            history = walk(sim.base_url, creds, PLAN_HISTORY, f"productType={pt}&planType={group}", session=s)
            ids = [int(p["orderId"]) for p in history]
            assert ids == sorted(ids, reverse=True)
            assert {_group(p["planType"]) for p in history} <= {group}
            longest = max(longest, len(history))
            got += history + walk(sim.base_url, creds, PLAN_PENDING, f"productType={pt}&planType={group}",
                                  session=s, pages=pending_pages)
    truth = sim.truth("demo", dataset="plan_orders")
    assert sorted(got, key=_key) == truth
    assert longest > 300  # several pages, through page boundaries


def test_pending_lists_the_live_plans_sometimes_without_end_id(sim, creds):
    live = [p for p in sim.truth("demo", dataset="plan_orders") if p["planStatus"] == "live"]
    assert 7 <= len(live) <= 50 and all(int(p["cTime"]) >= NOW - 7 * DAY for p in live)
    shapes = set()
    for _ in range(30):
        _, body = call(sim, creds, "productType=USDT-FUTURES&planType=profit_loss", PLAN_PENDING)
        assert body["data"]["entrustedList"]
        shapes.add("endId" in body["data"])
    assert shapes == {True, False}


@pytest.mark.parametrize("status", ["executed", "cancelled", "fail_execute", "fail_trigger"])
def test_plan_status_filter(sim, creds, status):
    want = "fail_execute" if status == "fail_trigger" else status
    truth = [p for p in sim.truth("demo", dataset="plan_orders")
             if p["planStatus"] == want and _group(p["planType"]) == "normal_plan"
             and p["symbol"] in {s.name for s in sim.accounts["demo"].symbols if s.product_type == "USDT-FUTURES"}]
    got = walk(sim.base_url, creds, PLAN_HISTORY, f"productType=USDT-FUTURES&planType=normal_plan&planStatus={status}")
    assert sorted(got, key=_key) == truth and truth


def test_symbol_order_id_and_window_filters(sim, creds):
    truth = sim.truth("demo", dataset="plan_orders")
    eth = [p for p in truth if p["symbol"] == "ETHUSDT" and p["planStatus"] != "live"
           and _group(p["planType"]) == "profit_loss"]
    got = walk(sim.base_url, creds, PLAN_HISTORY, "productType=USDT-FUTURES&planType=profit_loss&symbol=ETHUSDT")
    assert sorted(got, key=_key) == eth
    start, end = NOW - 20 * DAY, NOW - 10 * DAY
    window = [p for p in eth if start <= int(p["cTime"]) <= end]
    got = walk(sim.base_url, creds, PLAN_HISTORY,
               f"productType=USDT-FUTURES&planType=profit_loss&symbol=ETHUSDT&startTime={start}&endTime={end}")
    assert sorted(got, key=_key) == window and window
    target = eth[len(eth) // 2]
    _, body = call(sim, creds, f"productType=USDT-FUTURES&planType=profit_loss&orderId={target['orderId']}")
    assert body["data"]["entrustedList"] == [target]
    _, body = call(sim, creds, f"productType=USDT-FUTURES&planType=normal_plan&orderId={target['orderId']}")
    assert not body["data"]["entrustedList"]


def test_expired_plans_are_never_returned(sim, creds):
    returnable = {p["orderId"] for p in sim.truth("demo", dataset="plan_orders")}
    every = sim.truth("demo", dataset="plan_orders", include_expired=True)
    expired = [p for p in every if p["orderId"] not in returnable]
    assert expired and all(int(p["cTime"]) < NOW - 90 * DAY for p in expired)
    newest = max(int(p["orderId"]) for p in expired)
    for group in PLAN_TYPES:
        _, body = call(sim, creds, f"productType=USDT-FUTURES&planType={group}&idLessThan={newest + 1}")
        assert not body["data"]["entrustedList"]


@pytest.mark.parametrize(("query", "code"), [
    ("", "40019"),
    ("planType=normal_plan", "40019"),
    ("productType=USDT-FUTURES", "40019"),
    ("productType=USDT-FUTURES&planType=", "40019"),
    ("productType=usdt-futures&planType=normal_plan", "40034"),
    ("productType=USDT-FUTURES&planType=profit_plan", "40034"),  # a sub-kind cannot be asked for alone
    ("productType=USDT-FUTURES&planType=normal_plan&symbol=NOPEUSDT", "40034"),
    ("productType=USDT-FUTURES&planType=normal_plan&limit=x", "40020"),
    ("productType=USDT-FUTURES&planType=normal_plan&limit=0", "40017"),
    ("productType=USDT-FUTURES&planType=normal_plan&idLessThan=1e5", "40020"),
    (f"productType=USDT-FUTURES&planType=normal_plan&startTime={NOW - DAY}&endTime={NOW - 2 * DAY}", "40707"),
    (f"productType=USDT-FUTURES&planType=normal_plan&startTime={NOW - 91 * DAY}&endTime={NOW - 85 * DAY}",
     "40704"),
    (f"productType=USDT-FUTURES&planType=normal_plan&startTime={NOW - 80 * DAY}&endTime={NOW + 20 * DAY}",
     "40705"),
])
@pytest.mark.parametrize("path", [PLAN_HISTORY, PLAN_PENDING])
def test_parameter_errors(sim, creds, query, code, path):
    status, body = call(sim, creds, query, path)
    assert (status, body["code"]) == (400, code), body
    assert body["data"] is None and body["msg"]


def test_history_status_value_is_checked(sim, creds):
    status, body = call(sim, creds, "productType=USDT-FUTURES&planType=track_plan&planStatus=live")
    assert (status, body["code"]) == (400, "40034")
    status, body = call(sim, creds, "productType=USDT-FUTURES&planType=track_plan&limit=500")
    assert status == 200 and len(body["data"]["entrustedList"]) == 100


SPEC = AccountSpec(name="pl", seed=4, orders=900, symbols=8, now_ms=NOW)


@pytest.fixture()
def psim():
    with Simulator([SPEC], SimulatorConfig(rate_limit=None, frozen=True, admin_token="tok")) as s:
        yield s


def test_admin_adds_triggers_and_cancels_plans(psim):
    admin = AdminClient(psim.base_url, "tok")
    creds = psim.credentials("pl")
    before = {p["orderId"] for p in admin.truth("pl", dataset="plan_orders")}
    made = admin.add_plans("pl", plans=[{"planType": "pos_loss", "symbol": "ETHUSDT"},
                                        {"planType": "track_plan", "symbol": "BTCUSDT"}], generate=3)
    assert len(made) == 5 and all(p["planStatus"] == "live" and p["cTime"] == str(NOW) for p in made)
    assert made[0]["planType"] == "pos_loss" and made[0]["size"] == "0" and "callbackRatio" in made[1]
    ids = [int(p["orderId"]) for p in made]
    assert ids == sorted(set(ids)) and not {p["orderId"] for p in made} & before
    pending = walk(psim.base_url, creds, PLAN_PENDING, "productType=USDT-FUTURES&planType=profit_loss")
    assert made[0]["orderId"] in {p["orderId"] for p in pending}

    fired = admin.trigger_plan("pl", made[1]["orderId"])
    plan, order, fills = fired["plan"], fired["order"], fired["fills"]
    assert plan["planStatus"] == "executed" and plan["executeOrderId"] == order["orderId"]
    assert (order["orderSource"], order["symbol"], order["status"]) == ("market", "BTCUSDT", "filled")
    assert order["size"] == order["baseVolume"] == made[1]["size"] == plan["baseVolume"]
    assert sum(float(f["baseVolume"]) for f in fills) == pytest.approx(float(order["baseVolume"]))
    assert all(f["orderId"] == order["orderId"] and int(f["tradeId"]) > int(order["orderId"]) for f in fills)
    history = walk(psim.base_url, creds, PLAN_HISTORY, "productType=USDT-FUTURES&planType=track_plan")
    assert plan in history
    r = signed_get(psim.base_url, creds, HISTORY, f"productType=USDT-FUTURES&orderId={order['orderId']}")
    assert r.json()["data"]["entrustedList"] == [order]
    pos = admin.trigger_plan("pl", made[0]["orderId"])
    assert pos["order"]["orderSource"] == "pos_loss_market" and pos["order"]["symbol"] == "ETHUSDT"

    cancelled = admin.cancel_plans("pl", [made[2]["orderId"]], status="fail_execute")
    assert [p["planStatus"] for p in cancelled] == ["fail_execute"] and cancelled[0]["executeOrderId"] == ""
    with pytest.raises(RuntimeError, match="not live"):
        admin.trigger_plan("pl", made[2]["orderId"])
    rest = psim.cancel_plans("pl")
    assert rest and all(p["planStatus"] == "cancelled" for p in rest)
    assert not [p for p in psim.truth("pl", dataset="plan_orders") if p["planStatus"] == "live"]
    truth = {p["orderId"]: p for p in psim.truth("pl", dataset="plan_orders")}
    assert truth[plan["orderId"]] == plan and truth[made[2]["orderId"]] == cancelled[0]
    raw = requests.get(psim.base_url + "/admin/truth", params={"account": "pl", "dataset": "plan_orders"},
                       headers={"X-Admin-Token": "tok"}, timeout=10).json()
    assert raw["plan_orders"] == list(json.loads(json.dumps(list(truth.values()))))


def test_walks_equal_truth_while_the_clock_moves(psim):
    creds = psim.credentials("pl")

    def walks():
        plans, fills = [], []
        for pt in TYPES:
            fills += walk(psim.base_url, creds, "/api/v2/mix/order/fills", f"productType={pt}")
            for group in PLAN_TYPES:
                for path in (PLAN_HISTORY, PLAN_PENDING):
                    plans += walk(psim.base_url, creds, path, f"productType={pt}&planType={group}")
        return plans, fills

    for step in range(3):
        psim.advance(40 * DAY)
        live = [p for p in psim.truth("pl", dataset="plan_orders") if p["planStatus"] == "live"]
        fired = psim.trigger_plan("pl", live[-1]["orderId"])
        old = [p for p in live[:-1] if int(p["cTime"]) < psim.now_ms() - 90 * DAY]
        gone = psim.cancel_plans("pl", [p["orderId"] for p in old])
        late = psim.add_orders("pl", generate=2, open=1)
        psim.add_plans("pl", generate=2)
        plans, fills = walks()
        assert sorted(plans, key=_key) == psim.truth("pl", dataset="plan_orders"), step
        assert sorted(fills, key=lambda f: (int(f["cTime"]), int(f["tradeId"]))) == psim.truth("pl", dataset="fills")
        assert fired["plan"] in plans and {f["tradeId"] for f in fired["fills"]} <= {f["tradeId"] for f in fills}
        assert {f["orderId"] for f in fills} >= {o["orderId"] for o in late if o["baseVolume"] != "0"}
        assert all(int(f["cTime"]) >= psim.now_ms() - 90 * DAY for f in fills)
        # A plan live for more than the retention drops out of every answer once it ends (retention by cTime).
        assert not {p["orderId"] for p in gone} & {p["orderId"] for p in plans}
        assert (len(gone) > 0) == (step == 2)
