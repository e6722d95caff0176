import json
import time

import pytest
import requests

from bitget_assets.simulator import AccountSpec, AdminClient, Simulator, SimulatorConfig

from .conftest import NOW
from .signing import DAY_MS, V2_HISTORY, V2_INFO, V3_HISTORY, V3_SETTINGS, V3_UNFILLED, code_of, get

UNI = AccountSpec(name="uni", seed=31, orders=2500, symbols=12, now_ms=NOW, open_orders=30)
CLA = AccountSpec(name="cla", seed=32, orders=200, symbols=4, now_ms=NOW)
CATEGORIES = ("USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES")


@pytest.fixture(scope="module")
def usim():
    cfg = SimulatorConfig(rate_limit=None, v3_rate_limit=None, info_rate_limit=None, frozen=True, seed=5,
                          account_modes={"uni": "unified"})
    with Simulator([UNI, CLA], cfg) as s:
        yield s


def walk(s, account, path, params, session=None) -> list[dict]:
    """Follow data.cursor until an empty page; checks each page is newest first and the cursor is its
    smallest orderId."""
    creds, out, cursor = s.credentials(account), [], None
    while True:
        r = get(s.base_url, creds, path, {**params, **({"cursor": cursor} if cursor else {})}, session=session)
        assert code_of(r) == (200, "00000"), r.text
        data = r.json()["data"]
        items = data["list"] or []
        if not items:
            assert data["cursor"] in ("", None)
            return out
        ids = [int(o["orderId"]) for o in items]
        assert ids == sorted(ids, reverse=True) and data["cursor"] == str(ids[-1])
        out += items
        cursor = data["cursor"]


def test_v3_walk_in_30_day_windows_is_the_v3_truth(usim):
    truth = usim.truth("uni", shape="v3")
    assert len(truth) == 2500 and len(usim.truth("uni")) == 2500
    s, got = requests.Session(), []
    for cat in CATEGORIES:
        for k in range(3):  # [now-90d, now-60d), [now-60d, now-30d), [now-30d, now]
            start = NOW - (90 - 30 * k) * DAY_MS
            end = NOW if k == 2 else start + 30 * DAY_MS - 1
            got += walk(usim, "uni", V3_HISTORY, {"category": cat, "startTime": start, "endTime": end,
                                                  "limit": 100}, session=s)
    history_ids = [o["orderId"] for o in got]
    assert len(history_ids) == len(set(history_ids))
    unfilled = walk(usim, "uni", V3_UNFILLED, {"limit": 7}, session=s)  # no category: every futures type
    assert len(unfilled) == 30 and {o["orderStatus"] for o in unfilled} <= {"live", "partially_filled"}
    served = sorted(got + unfilled, key=lambda o: (int(o["createdTime"]), int(o["orderId"])))
    assert served == truth  # same orders, same v3 bytes-level content, nothing missing or extra


def test_v3_shape_maps_every_v2_field(usim):
    v2 = {o["orderId"]: o for o in usim.truth("uni")}
    v3 = usim.truth("uni", shape="v3")
    symbols = {i.name: pt for pt, infos in usim.accounts["uni"].contracts.items() for i in infos}
    seen = set()
    for o in v3:
        a = v2[o["orderId"]]
        assert o["category"] == symbols[a["symbol"]] and o["symbol"] == a["symbol"]
        assert (o["clientOid"], o["orderType"], o["side"], o["timeInForce"]) == \
               (a["clientOid"], a["orderType"], a["side"], a["force"])
        assert (o["qty"], o["cumExecQty"], o["cumExecValue"]) == (a["size"], a["baseVolume"], a["quoteVolume"])
        assert o["price"] == (a["price"] or "0") and o["avgPrice"] == (a["priceAvg"] or "0")
        assert (o["createdTime"], o["updatedTime"]) == (a["cTime"], a["uTime"])
        assert o["holdMode"] == a["posMode"] and o["reduceOnly"] == a["reduceOnly"]
        assert o["posSide"] == {"long": "long", "short": "short", "net": ""}[a["posSide"]]
        expected_status = "cancelled" if a["status"] == "canceled" else a["status"]
        assert o["orderStatus"] == expected_status
        assert o["cancelReason"] == ("normal_cancel" if expected_status == "cancelled" else "")
        fee = o["feeDetail"]
        assert isinstance(fee, list) and len(fee) == 1
        if float(a["baseVolume"]) > 0:
            assert fee[0]["feeCoin"] == a["marginCoin"] and float(fee[0]["fee"]) == -float(a["fee"]) >= 0
        else:
            assert fee[0] in ({"feeCoin": "", "fee": ""}, {"feeCoin": None, "fee": None})
        kind = a["tradeSide"].split("_")[0]
        assert o["execType"] == {"burst": "liquidation", "offset": "offset", "delivery": "delivery",
                                 "reduce": "reduce"}.get(kind, "normal")
        seen.add((o["orderStatus"], o["execType"], json.dumps(fee[0]["fee"])[:1]))
    statuses = {x[0] for x in seen}
    assert {"filled", "cancelled", "live", "partially_filled"} <= statuses
    assert {"liquidation", "offset", "normal"} <= {x[1] for x in seen}
    assert {'"', "n"} <= {x[2] for x in seen}  # both unfilled fee variants ("" and null)


def test_modes_answer_40085_on_v2_and_40084_on_v3(usim):
    uni, cla = usim.credentials("uni"), usim.credentials("cla")
    r = get(usim.base_url, uni, V2_HISTORY, {"productType": "USDT-FUTURES"})
    assert code_of(r) == (400, "40085") and "Unified Account mode" in r.json()["msg"]
    assert code_of(get(usim.base_url, uni, V2_INFO)) == (400, "40085")
    assert code_of(get(usim.base_url, cla, V3_HISTORY, {"category": "USDT-FUTURES"})) == (400, "40084")
    assert code_of(get(usim.base_url, cla, V3_SETTINGS)) == (400, "40084")
    settings = get(usim.base_url, uni, V3_SETTINGS).json()["data"]
    assert settings["uid"] == uni["uid"] and settings["accountMode"] == "unified"
    assert {"assetMode", "holdMode", "stpMode"} <= set(settings)
    info = get(usim.base_url, cla, V2_INFO).json()
    assert info["code"] == "00000" and info["data"]["userId"] == cla["uid"]


@pytest.mark.parametrize(("params", "code"), [
    ({}, "40017"),                                                   # category required
    ({"category": "FOO"}, "40034"),
    ({"category": "USDT-FUTURES", "symbol": "NOPEUSDT"}, "40034"),
    ({"category": "COIN-FUTURES", "symbol": "BTCUSDT"}, "40034"),     # symbol of another category
    ({"category": "USDT-FUTURES", "limit": "101"}, "40017"),
    ({"category": "USDT-FUTURES", "limit": "0"}, "40017"),
    ({"category": "USDT-FUTURES", "limit": "x"}, "40017"),
    ({"category": "USDT-FUTURES", "cursor": "abc"}, "40017"),
    ({"category": "USDT-FUTURES", "startTime": "1.5"}, "40017"),
    ({"category": "USDT-FUTURES", "startTime": NOW - DAY_MS, "endTime": NOW - 2 * DAY_MS}, "40707"),
    ({"category": "USDT-FUTURES", "startTime": NOW - 31 * DAY_MS, "endTime": NOW}, "00001"),
    ({"category": "USDT-FUTURES", "startTime": NOW - 31 * DAY_MS}, "00001"),
    ({"category": "USDT-FUTURES", "startTime": NOW - 91 * DAY_MS, "endTime": NOW - 80 * DAY_MS}, "40704"),
])
def test_v3_parameter_errors(usim, params, code):
    r = get(usim.base_url, usim.credentials("uni"), V3_HISTORY, params)
    assert code_of(r) == (400, code) and r.json()["data"] is None


def test_v3_defaults_spot_and_symbol_filter(usim):
    uni = usim.credentials("uni")
    v3 = usim.truth("uni", shape="v3")
    finished = [o for o in v3 if o["orderStatus"] not in ("live",) and o["category"] == "USDT-FUTURES"]
    # no times: the last 30 days
    recent = walk(usim, "uni", V3_HISTORY, {"category": "USDT-FUTURES"})
    expect = {o["orderId"] for o in finished if int(o["createdTime"]) >= NOW - 30 * DAY_MS} - \
        {o["orderId"] for o in walk(usim, "uni", V3_UNFILLED, {"category": "USDT-FUTURES"})}
    assert {o["orderId"] for o in recent} == expect
    assert walk(usim, "uni", V3_HISTORY, {"category": "SPOT"}) == []
    sym = finished[-1]["symbol"]
    only = walk(usim, "uni", V3_HISTORY, {"category": "USDT-FUTURES", "symbol": sym, "limit": 3})
    assert only and {o["symbol"] for o in only} == {sym}
    assert [o["orderId"] for o in only] == [o["orderId"] for o in recent if o["symbol"] == sym]
    r = get(usim.base_url, uni, V3_HISTORY, {"category": "USDT-FUTURES", "limit": 1})
    assert len(r.json()["data"]["list"]) == 1


def test_upgrade_and_switch_back_pass_through_transitional_states():
    spec = AccountSpec(name="mover", seed=40, orders=400, symbols=5, now_ms=NOW)
    with Simulator([spec], SimulatorConfig(rate_limit=None, frozen=True)) as s:
        creds, admin = s.credentials("mover"), AdminClient(s.base_url, s.admin_token)
        v2_before = {o["orderId"] for o in s.truth("mover")}
        assert s.account_mode("mover") == "classic"
        state = admin.set_account_mode("mover", "unified", transition_s=1.0)
        assert state["mode"] == "upgrading" and state["target"] == "unified"
        assert get(s.base_url, creds, V3_SETTINGS).json()["data"]["accountMode"] == "upgrading"
        for path, params in ((V2_HISTORY, {"productType": "USDT-FUTURES"}),
                             (V3_HISTORY, {"category": "USDT-FUTURES"})):
            r = get(s.base_url, creds, path, params)
            assert code_of(r) == (400, "25007") and r.json()["msg"] == "Account in an irregular status"
        assert get(s.base_url, creds, V2_INFO).json()["data"]["userId"] == creds["uid"]  # UID still readable
        time.sleep(1.1)
        assert admin.account_mode("mover")["mode"] == "unified"
        assert get(s.base_url, creds, V3_SETTINGS).json()["data"]["accountMode"] == "unified"
        assert code_of(get(s.base_url, creds, V2_HISTORY, {"productType": "USDT-FUTURES"})) == (400, "40085")
        served = []
        for cat in CATEGORIES:
            for k in range(3):
                start = NOW - (90 - 30 * k) * DAY_MS
                end = NOW if k == 2 else start + 30 * DAY_MS - 1
                served += walk(s, "mover", V3_HISTORY, {"category": cat, "startTime": start, "endTime": end})
        served += walk(s, "mover", V3_UNFILLED, {})
        assert {o["orderId"] for o in served} == v2_before  # the history survived the upgrade
        s.set_account_mode("mover", "classic", transition_s=0.5)
        assert get(s.base_url, creds, V3_SETTINGS).json()["data"]["accountMode"] == "switching"
        time.sleep(0.6)
        assert code_of(get(s.base_url, creds, V3_SETTINGS)) == (400, "40084")
        assert code_of(get(s.base_url, creds, V2_HISTORY, {"productType": "USDT-FUTURES"})) == (200, "00000")


def test_bad_mode_and_unknown_account_are_refused():
    with pytest.raises(ValueError, match="account mode"):
        Simulator([CLA], SimulatorConfig(account_modes={"cla": "hybrid"}))
    with pytest.raises(ValueError, match="unknown accounts"):
        Simulator([CLA], SimulatorConfig(account_modes={"nobody": "unified"}))


def test_admin_truth_in_v3_shape_and_config_checks(usim):
    admin = AdminClient(usim.base_url, usim.admin_token)
    assert admin.truth("uni", shape="v3") == usim.truth("uni", shape="v3")
    assert admin.truth("uni", shape="v3", dataset="fills") == usim.truth("uni", shape="v3", dataset="fills")
    with pytest.raises(ValueError, match="ip_window_s"):
        SimulatorConfig(ip_window_s=0)
