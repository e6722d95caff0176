import time
from collections import defaultdict
from decimal import Decimal

import pytest
import requests

from bitget_assets.simulator import AccountSpec, AdminClient, Simulator, SimulatorConfig

from .activity import FILL_HISTORY, FILLS, walk
from .conftest import NOW
from .helpers import TYPES, signed_get

DAY = 86_400_000


def _key(f):
    return int(f["cTime"]), int(f["tradeId"])


def call(sim, creds, query, path=FILLS):
    r = signed_get(sim.base_url, creds, path, query)
    return r.status_code, r.json()


def _volumes(fills):
    out = defaultdict(Decimal)
    for f in fills:
        out[f["orderId"]] += Decimal(f["baseVolume"])
    return out


def test_fills_add_up_to_every_orders_base_volume(sim):
    orders = {o["orderId"]: o for o in sim.truth("demo", include_expired=True)}
    fills = sim.truth("demo", dataset="fills", include_expired=True)
    sums = _volumes(fills)
    filled = {k for k, o in orders.items() if Decimal(o["baseVolume"]) > 0}
    assert set(sums) == filled
    assert all(sums[k] == Decimal(orders[k]["baseVolume"]) for k in filled)
    per_order = defaultdict(int)
    for f in fills:
        per_order[f["orderId"]] += 1
        o = orders[f["orderId"]]
        assert int(o["cTime"]) <= int(f["cTime"]) <= int(o["uTime"])
        assert int(f["tradeId"]) > int(f["orderId"]) and len(f["tradeId"]) == 19
        assert (f["symbol"], f["side"], f["tradeSide"], f["posMode"]) == (o["symbol"], o["side"], o["tradeSide"],
                                                                          o["posMode"])
        assert f["tradeScope"] in ("taker", "maker")
        [fee] = f["feeDetail"]
        assert fee["deduction"] in ("yes", "no") and Decimal(fee["totalFee"]) < 0
        assert fee["totalDeductionFee"] in ("0", "", None) or fee["feeCoin"] == "BGB"
    assert max(per_order.values()) >= 5 and sum(1 for n in per_order.values() if n > 1) > 1000
    open_partial = [o for o in orders.values() if o["status"] == "partially_filled"
                    and sim.stores["demo"].is_open[sim.stores["demo"].position_of(int(o["orderId"]))]]
    assert open_partial and all(o["orderId"] in sums for o in open_partial)
    assert {f["tradeScope"] for f in fills} == {"taker", "maker"}
    assert {f["feeDetail"][0]["feeCoin"] for f in fills} >= {"USDT", "BGB", "BTC"}


def test_fill_walk_per_product_type_equals_truth(sim, creds):
    s = requests.Session()
    got, longest = [], 0
    for pt in TYPES:
        rows = walk(sim.base_url, creds, FILLS, f"productType={pt}", session=s)
        ids = [int(f["tradeId"]) for f in rows]
        assert ids == sorted(ids, reverse=True)
        longest = max(longest, len(rows))
        got += rows
    truth = sim.truth("demo", dataset="fills")
    assert sorted(got, key=_key) == truth and longest > 1000
    every = sim.truth("demo", dataset="fills", include_expired=True)
    assert len(every) > len(truth) and all(int(f["cTime"]) < NOW - 90 * DAY for f in every[: len(every) - len(truth)])


def test_fill_history_in_7_day_windows_equals_truth(sim):
    creds = sim.credentials("small")
    s = requests.Session()
    got, start = [], NOW - 90 * DAY
    while start <= NOW:
        end = min(start + 7 * DAY - 1, NOW)
        for pt in TYPES:
            got += walk(sim.base_url, creds, FILL_HISTORY, f"productType={pt}&startTime={start}&endTime={end}",
                        session=s)
        start = end + 1
    assert sorted(got, key=_key) == sim.truth("small", dataset="fills")


def test_fill_history_default_window_is_the_last_week(sim, creds):
    week = [f for f in sim.truth("demo", dataset="fills") if int(f["cTime"]) >= NOW - 7 * DAY
            and f["symbol"] == "ETHUSDT"]
    got = walk(sim.base_url, creds, FILL_HISTORY, "productType=USDT-FUTURES&symbol=ETHUSDT")
    assert sorted(got, key=_key) == week and week


def test_order_id_and_symbol_filters(sim, creds):
    fills = sim.truth("demo", dataset="fills")
    by_order = defaultdict(list)
    for f in fills:
        by_order[f["orderId"]].append(f)
    oid, rows = next((k, v) for k, v in by_order.items() if len(v) >= 3)
    sym = rows[0]["symbol"]
    pt = next(s.product_type for s in sim.accounts["demo"].symbols if s.name == sym)
    _, body = call(sim, creds, f"productType={pt}&orderId={oid}")
    assert sorted(body["data"]["fillList"], key=_key) == rows
    other = next(t for t in TYPES if t != pt)
    _, body = call(sim, creds, f"productType={other}&orderId={oid}")
    assert not body["data"]["fillList"]
    got = walk(sim.base_url, creds, FILLS, f"productType={pt}&symbol={sym}")
    assert sorted(got, key=_key) == [f for f in fills if f["symbol"] == sym]


@pytest.mark.parametrize(("query", "code"), [
    ("", "40019"),
    ("symbol=BTCUSDT", "40019"),
    ("productType=SPOT", "40034"),
    ("productType=USDT-FUTURES&symbol=BTCUSD", "40034"),
    ("productType=USDT-FUTURES&limit=abc", "40020"),
    ("productType=USDT-FUTURES&limit=0", "40017"),
    ("productType=USDT-FUTURES&startTime=x", "40020"),
    (f"productType=USDT-FUTURES&startTime={NOW - DAY}&endTime={NOW - 2 * DAY}", "40707"),
    (f"productType=USDT-FUTURES&startTime={NOW - 91 * DAY}&endTime={NOW - 89 * DAY}", "40704"),
])
@pytest.mark.parametrize("path", [FILLS, FILL_HISTORY])
def test_parameter_errors(sim, creds, query, code, path):
    status, body = call(sim, creds, query, path)
    assert (status, body["code"]) == (400, code), body
    assert body["data"] is None and body["msg"]


def test_spans(sim, creds):
    status, body = call(sim, creds, f"productType=USDT-FUTURES&startTime={NOW - 8 * DAY}&endTime={NOW}",
                        FILL_HISTORY)
    assert (status, body["code"]) == (400, "00001")
    assert body["msg"] == "startTime and endTime interval cannot be greater than 7 days"
    assert call(sim, creds, f"productType=USDT-FUTURES&startTime={NOW - 8 * DAY}", FILL_HISTORY)[1]["code"] == "00001"
    assert call(sim, creds, f"productType=USDT-FUTURES&startTime={NOW - 7 * DAY}&endTime={NOW}", FILL_HISTORY)[0] \
        == 200
    assert call(sim, creds, f"productType=USDT-FUTURES&startTime={NOW - 80 * DAY}&endTime={NOW}")[0] == 200
    assert call(sim, creds, f"productType=USDT-FUTURES&startTime={NOW - 80 * DAY}&endTime={NOW + 20 * DAY}")[1][
        "code"] == "40705"
    status, body = call(sim, creds, "productType=USDT-FUTURES&limit=500")
    assert len(body["data"]["fillList"]) == 100


def test_spans_are_configurable():
    spec = AccountSpec(name="c", seed=2, orders=200, symbols=3, now_ms=NOW)
    cfg = SimulatorConfig(frozen=True, rate_limit=None, fill_history_span_days=3, fills_span_days=30,
                          empty_style="list")
    with Simulator([spec], cfg) as sim:
        creds = sim.credentials("c")
        _, body = call(sim, creds, f"productType=USDT-FUTURES&startTime={NOW - 4 * DAY}", FILL_HISTORY)
        assert body["msg"] == "startTime and endTime interval cannot be greater than 3 days"
        _, body = call(sim, creds, f"productType=USDT-FUTURES&startTime={NOW - 31 * DAY}")
        assert body["code"] == "40705"
        _, body = call(sim, creds, f"productType=USDT-FUTURES&endTime={NOW - 95 * DAY}")
        assert body["data"] == {"fillList": [], "endId": ""}


def test_rate_limit_is_per_endpoint():
    spec = AccountSpec(name="r", seed=2, orders=200, symbols=3, now_ms=NOW)
    with Simulator([spec], SimulatorConfig(frozen=True, rate_limit=10)) as sim:
        creds, s = sim.credentials("r"), requests.Session()
        paths = [FILLS, FILL_HISTORY, "/api/v2/mix/order/orders-plan-history"]
        statuses = defaultdict(list)
        until = time.time() + 1.5
        while time.time() < until:  # round robin, as fast as this machine goes
            for path in paths:
                query = "productType=USDT-FUTURES" + ("&planType=normal_plan" if "plan" in path else "")
                statuses[path].append(signed_get(sim.base_url, creds, path, query, session=s).status_code)
        for path in paths:
            assert 429 in statuses[path], (path, len(statuses[path]))
            assert sim.max_requests_per_window("r", endpoint=path) == 10, path
        # Each endpoint has its own 10/s: together they were accepted 30 times within one second.
        assert sim.max_requests_per_window("r") == 30


@pytest.fixture()
def fsim():
    spec = AccountSpec(name="f", seed=6, orders=500, symbols=5, now_ms=NOW, open_orders=6)
    with Simulator([spec], SimulatorConfig(rate_limit=None, frozen=True, admin_token="tok")) as s:
        yield s


def _order(sim, oid):
    return next(o for o in sim.truth("f") if o["orderId"] == oid)


def test_admin_orders_and_closes_get_consistent_fills(fsim):
    admin = AdminClient(fsim.base_url, "tok")
    made = admin.add_orders("f", generate=6, open=2, orders=[{"symbol": "BTCUSDT", "status": "filled"}])
    closed = admin.close_open_orders("f")
    sums = _volumes(admin.truth("f", dataset="fills"))
    for o in [_order(fsim, x["orderId"]) for x in made] + closed:
        assert sums.get(o["orderId"], Decimal(0)) == Decimal(o["baseVolume"]), o
    assert any(o["status"] == "filled" for o in closed)


def test_admin_late_fills(fsim):
    admin = AdminClient(fsim.base_url, "tok")
    creds = fsim.credentials("f")
    target = next(o for o in fsim.truth("f") if o["status"] == "canceled" and o["baseVolume"] == "0"
                  and o["symbol"] == "BTCUSDT" and int(o["cTime"]) > NOW - 20 * DAY)
    late_time = int(target["cTime"]) + 1000
    made = admin.add_fills("f", target["orderId"], base_volume=None, count=3, ctime=late_time)
    assert len(made) == 3 and all(f["cTime"] == str(late_time) for f in made)
    order = _order(fsim, target["orderId"])
    assert Decimal(order["baseVolume"]) == Decimal(target["size"]) == sum(Decimal(f["baseVolume"]) for f in made)
    got = walk(fsim.base_url, creds, FILLS, f"productType=USDT-FUTURES&orderId={target['orderId']}")
    assert sorted(got, key=_key) == sorted(made, key=_key)
    window = walk(fsim.base_url, creds, FILL_HISTORY,
                  f"productType=USDT-FUTURES&startTime={late_time}&endTime={late_time}")
    assert {f["tradeId"] for f in made} <= {f["tradeId"] for f in window}
    with pytest.raises(RuntimeError, match="volume"):
        admin.add_fills("f", target["orderId"])  # nothing left to fill
    opened = fsim.add_orders("f", open=1, symbols=["ETHUSDT"])[0]
    half = (Decimal(opened["size"]) - Decimal(opened["baseVolume"])) / 2
    fsim.add_fills("f", opened["orderId"], base_volume=format(half, "f"))
    after = _order(fsim, opened["orderId"])
    assert Decimal(after["baseVolume"]) == Decimal(opened["baseVolume"]) + half
    assert after["status"] == "partially_filled" and int(after["uTime"]) == NOW
    fills = [f for f in fsim.truth("f", dataset="fills") if f["orderId"] == opened["orderId"]]
    assert sum(Decimal(f["baseVolume"]) for f in fills) == Decimal(after["baseVolume"])
