import json

import pytest
import requests

from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig

from .conftest import NOW
from .signing import DAY_MS, code_of, get

STRATEGY_HISTORY = "/api/v3/trade/history-strategy-orders"
STRATEGY_UNFILLED = "/api/v3/trade/unfilled-strategy-orders"
FILLS = "/api/v3/trade/fills"
CATEGORIES = ("USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES")
SPEC = AccountSpec(name="ua", seed=31, orders=2500, symbols=12, now_ms=NOW, open_orders=30)
WINDOWS = [(NOW - (90 - 30 * k) * DAY_MS, NOW if k == 2 else NOW - (60 - 30 * k) * DAY_MS - 1) for k in range(3)]


@pytest.fixture(scope="module")
def asim():
    cfg = SimulatorConfig(rate_limit=None, v3_rate_limit=None, frozen=True, account_modes={"ua": "unified"})
    with Simulator([SPEC, AccountSpec(name="cl", seed=2, orders=50, symbols=2, now_ms=NOW)], cfg) as s:
        yield s


def walk(s, path, params, id_key, session) -> list[dict]:
    """Cursor paging until an empty page; the strategy cursor arrives as a JSON number (parsed exactly)."""
    out, cursor = [], None
    while True:
        r = get(s.base_url, s.credentials("ua"), path, {**params, **({"cursor": cursor} if cursor else {})},
                session=session)
        assert code_of(r) == (200, "00000"), r.text
        data = json.loads(r.text)["data"]
        items = data["list"] or []
        if not items:
            return out
        ids = [int(o[id_key]) for o in items]
        assert ids == sorted(ids, reverse=True) and int(data["cursor"]) == ids[-1]
        out += items
        cursor = str(data["cursor"])


def test_strategy_orders_are_the_v3_plan_truth(asim):
    s, got = requests.Session(), []
    for cat in CATEGORIES:
        for kind in ("tpsl", "trigger"):
            got += walk(asim, STRATEGY_HISTORY, {"category": cat, "type": kind, "limit": 50}, "orderId", s)
            live = get(asim.base_url, asim.credentials("ua"), STRATEGY_UNFILLED, {"category": cat, "type": kind})
            assert code_of(live) == (200, "00000") and isinstance(live.json()["data"], list)
            assert {o["status"] for o in live.json()["data"]} <= {"pending"}
            got += live.json()["data"]
    truth = asim.truth("ua", shape="v3", dataset="plan_orders")
    assert len(truth) == len(asim.truth("ua", dataset="plan_orders")) > 100
    key = lambda o: int(o["orderId"])  # noqa: E731
    assert sorted(got, key=key) == sorted(truth, key=key)
    assert {o["status"] for o in got} == {"pending", "success", "failed", "cancelled"}


def test_strategy_fields_follow_the_v2_plan(asim):
    v2 = {p["orderId"]: p for p in asim.truth("ua", dataset="plan_orders")}
    by = {"fill_price": "market", "mark_price": "mark", "index_price": "mark"}
    for o in asim.truth("ua", shape="v3", dataset="plan_orders"):
        p = v2[o["orderId"]]
        assert (o["symbol"], o["qty"], o["clientOid"]) == (p["symbol"], p["size"], p["clientOid"])
        assert (o["createdTime"], o["updatedTime"]) == (p["cTime"], p["uTime"])
        assert o["status"] == {"live": "pending", "executed": "success", "fail_execute": "failed",
                               "cancelled": "cancelled"}[p["planStatus"]]
        if p["planType"] in ("profit_plan", "pos_profit"):
            assert (o["triggerType"], o["takeProfit"], o["tpTriggerBy"]) == \
                   ("takeProfit", p["triggerPrice"], by[p["triggerType"]])
        elif p["planType"] in ("loss_plan", "moving_plan", "pos_loss"):
            assert (o["triggerType"], o["stopLoss"], o["slTriggerBy"]) == \
                   ("stopLoss", p["triggerPrice"], by[p["triggerType"]])
        else:
            assert (o["triggerType"], o["triggerPrice"], o["triggerOrderType"]) == \
                   ("", p["triggerPrice"], p["orderType"])


def test_fills_are_the_v3_fill_truth_and_fees_are_positive(asim):
    s, got = requests.Session(), []
    for start, end in WINDOWS:  # no category: every futures type
        got += walk(asim, FILLS, {"startTime": start, "endTime": end, "limit": 100}, "execId", s)
    truth = asim.truth("ua", shape="v3", dataset="fills")
    assert len(truth) > 1000 and sorted(got, key=lambda f: int(f["execId"])) == truth
    v2 = {f["tradeId"]: f for f in asim.truth("ua", dataset="fills")}
    orders = {o["orderId"]: o for o in asim.truth("ua")}
    for f in truth:
        a = v2[f["execId"]]
        assert (f["execQty"], f["execValue"], f["execPrice"], f["execPnl"]) == \
               (a["baseVolume"], a["quoteVolume"], a["price"], a["profit"])
        assert f["clientOid"] == orders[f["orderId"]]["clientOid"] and f["createdTime"] == a["cTime"]
        assert [float(x["fee"]) for x in f["feeDetail"]] == [-float(x["totalFee"]) for x in a["feeDetail"]]
        assert all(float(x["fee"]) >= 0 for x in f["feeDetail"])


def test_fills_of_one_order_and_symbol_is_not_a_filter(asim):
    truth = asim.truth("ua", shape="v3", dataset="fills")
    counts = {}
    for f in truth:
        counts.setdefault(f["orderId"], []).append(f["execId"])
    oid, ids = max(counts.items(), key=lambda kv: len(kv[1]))
    recent = int(next(f for f in truth if f["orderId"] == oid)["createdTime"])
    q = {"orderId": oid, "startTime": recent - DAY_MS, "endTime": min(NOW, recent + DAY_MS)}
    r = get(asim.base_url, asim.credentials("ua"), FILLS, q)
    assert sorted(f["execId"] for f in r.json()["data"]["list"]) == sorted(ids) and len(ids) > 1
    r = get(asim.base_url, asim.credentials("ua"), FILLS, {"symbol": "NOPEUSDT", "limit": 5})
    assert code_of(r) == (200, "00000") and len(r.json()["data"]["list"]) == 5


@pytest.mark.parametrize(("path", "params", "code"), [
    (STRATEGY_HISTORY, {}, "40017"),
    (STRATEGY_HISTORY, {"category": "USDT-FUTURES", "type": "grid"}, "40034"),
    (STRATEGY_UNFILLED, {"type": "tpsl"}, "40017"),
    (FILLS, {"startTime": NOW - 31 * DAY_MS, "endTime": NOW}, "00001"),
    (FILLS, {"startTime": NOW - 91 * DAY_MS, "endTime": NOW - 80 * DAY_MS}, "40704"),
    (FILLS, {"limit": "101"}, "40017"),
    (STRATEGY_HISTORY, {"category": "USDT-FUTURES", "startTime": NOW - 91 * DAY_MS}, "40704"),
])
def test_activity_parameter_errors(asim, path, params, code):
    assert code_of(get(asim.base_url, asim.credentials("ua"), path, params)) == (400, code)


def test_classic_account_gets_40084_and_unified_gets_40085_on_v2_fills(asim):
    assert code_of(get(asim.base_url, asim.credentials("cl"), FILLS)) == (400, "40084")
    assert code_of(get(asim.base_url, asim.credentials("cl"), STRATEGY_UNFILLED, {"category": "USDT-FUTURES"})) \
        == (400, "40084")
    r = get(asim.base_url, asim.credentials("ua"), "/api/v2/mix/order/fills", {"productType": "USDT-FUTURES"})
    assert code_of(r) == (400, "40085")
