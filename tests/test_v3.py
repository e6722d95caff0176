"""Bitget's UTA (v3) endpoints through the same engine, and their rows mapped into the v2 schema."""

import json

from bitget_assets.datasets import dataset
from bitget_assets.scan import Scanner, Task
from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig
from bitget_assets.streams import V3_ORDERS_HISTORY, V3_ORDERS_PENDING, streams_of
from bitget_assets.v3map import RAW_COL, fill_row, order_row, plan_row
from tests.simhelpers import DAY_MS, NOW_MS, PagesInMemory, client_for, requests_to

STANDARD = ["USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES"]
# Fields v3 carries without loss; the rest differ by design (v3 spells "" prices "0", net posSide "", ...).
LOSSLESS = ("orderId", "clientOid", "symbol", "size", "baseVolume", "quoteVolume", "side", "orderType", "force",
            "marginMode", "reduceOnly", "posMode", "cTime", "uTime", "presetStopSurplusPrice", "presetStopLossPrice")


def test_v3_orders_map_onto_the_v2_orders_the_simulator_holds():
    spec = AccountSpec(name="demo", seed=12, orders=600, symbols=5, now_ms=NOW_MS, open_orders=10)
    with Simulator([spec], SimulatorConfig(rate_limit=None, latency=None, frozen=True)) as sim:
        v2 = {o["orderId"]: o for o in sim.truth("demo")}
        v3 = sim.truth("demo", shape="v3")
    assert len(v3) == len(v2) == 600
    filled = 0
    for row in v3:
        mapped, want = order_row(row), v2[row["orderId"]]
        assert {f: mapped[f] for f in LOSSLESS} == {f: want[f] for f in LOSSLESS}, row["orderId"]
        assert mapped["status"] == want["status"].replace("canceled", "cancelled")
        assert json.loads(mapped[RAW_COL]) == row
        if want["baseVolume"] not in ("", "0"):
            filled += 1
            assert mapped["fee"] == want["fee"] and mapped["fee"].startswith("-"), row  # paid = negative, as v2
    assert filled > 100


def test_the_engine_reads_v3_cursor_pages_in_30_day_windows_exactly():
    spec = AccountSpec(name="demo", seed=13, orders=900, symbols=4, now_ms=NOW_MS, open_orders=12)
    cfg = SimulatorConfig(rate_limit=None, latency=None, frozen=True, account_modes={"demo": "unified"})
    with Simulator([spec], cfg) as sim:
        client = client_for(sim)
        tasks = [Task(V3_ORDERS_HISTORY, pt, (NOW_MS - 90 * DAY_MS, NOW_MS)) for pt in STANDARD]
        tasks += [Task(V3_ORDERS_PENDING, pt) for pt in STANDARD]
        pages = PagesInMemory()
        Scanner(client, pages, concurrency=3).run(tasks)
        truth = {o["orderId"]: o for o in sim.truth("demo")}
        log = requests_to(sim, V3_ORDERS_HISTORY.path)
    d = dataset("orders")
    df = d.concat(f for frames in pages.frames.values() for f in frames)
    got = df["orderId"].to_list()
    assert len(got) == len(set(got)) and set(got) == set(truth)
    assert all(int(r["params"]["endTime"]) - int(r["params"]["startTime"]) <= 30 * DAY_MS for r in log)
    assert any(r["params"].get("cursor") for r in log), "no second page was asked for: paging untested"
    assert all("productType" not in r["params"] and r["params"]["category"] in STANDARD for r in log)
    # Mapped into the v2 schema: the output table does not care which API a row came from.
    row = df.filter(df["orderId"] == got[0]).row(0, named=True)
    assert (row["cTime"], row["symbol"]) == (truth[got[0]]["cTime"], truth[got[0]]["symbol"])


def test_v3_strategy_orders_and_fills_map_on_sample_rows():
    # Shapes of bitget-api-more.md §3: C's strategy-history sample and a v3 fill, fee positive = paid.
    strategy = {"orderId": "1330960754317619202", "clientOid": "1330960754317619202", "category": "USDT-FUTURES",
                "symbol": "BTCUSDT", "qty": "0.01", "posSide": "long", "tpTriggerBy": "market",
                "slTriggerBy": "mark", "takeProfit": "70000", "stopLoss": "", "tpOrderType": "market",
                "slOrderType": "market", "tpLimitPrice": "", "slLimitPrice": "", "createdTime": "1747000000000",
                "updatedTime": "1747000001000", "triggerType": "takeProfit", "status": "pending"}
    p = plan_row(strategy)
    assert (p["orderId"], p["cTime"], p["uTime"], p["size"], p["planType"], p["planStatus"]) == (
        "1330960754317619202", "1747000000000", "1747000001000", "0.01", "takeProfit", "pending")
    assert (p["stopSurplusTriggerPrice"], p["stopSurplusTriggerType"], p["stopLossTriggerType"]) == (
        "70000", "market", "mark")
    fill = {"execId": "1103122437840805890", "orderId": "1103122437760503816", "category": "USDT-FUTURES",
            "symbol": "ETHUSDT", "orderType": "market", "side": "buy", "execPrice": "2500.1", "execQty": "0.1",
            "execValue": "250.01", "tradeScope": "taker", "tradeSide": "open", "execPnl": "0",
            "feeDetail": [{"feeCoin": "USDT", "fee": "0.15000600"}], "createdTime": "1747000000000",
            "updatedTime": "1747000000000"}
    f = fill_row(fill)
    assert (f["tradeId"], f["orderId"], f["price"], f["baseVolume"], f["quoteVolume"], f["profit"]) == (
        "1103122437840805890", "1103122437760503816", "2500.1", "0.1", "250.01", "0")
    assert json.loads(f["feeDetail"]) == [{"feeCoin": "USDT", "totalFee": "-0.15000600", "deduction": "no",
                                           "totalDeductionFee": None}]
    assert json.loads(f[RAW_COL]) == fill
    # A big integer sent as a JSON number stays exact (never through a float).
    assert order_row({"orderId": 1330960754317619202, "createdTime": 1747000000000})["orderId"] == \
        "1330960754317619202"
    assert {s.name for s in streams_of("plan_orders", version=3)} == {
        "v3_plan_history:tpsl", "v3_plan_history:trigger", "v3_plan_pending:tpsl", "v3_plan_pending:trigger"}


def test_account_scan_of_a_unified_account_stages_v3_orders_in_the_v2_schema(tmp_path):
    from bitget_assets import extraction
    from bitget_assets.storage import LocalStorage

    spec = AccountSpec(name="demo", seed=14, orders=700, symbols=4, now_ms=NOW_MS, open_orders=9)
    cfg = SimulatorConfig(rate_limit=None, latency=None, frozen=True, account_modes={"demo": "unified"})
    with Simulator([spec], cfg) as sim:
        store = LocalStorage(tmp_path)
        summary = extraction.scan_account(client_for(sim), store, STANDARD, scan_id="u1", api_version=3)
        truth = sim.truth("demo")
        product_type_of = {s.name: s.product_type for s in sim.accounts["demo"].symbols}
        v2_requests = [r for r in sim.request_log() if r["endpoint"].startswith("/api/v2/mix/")]
    assert not v2_requests and summary.manifest["api_version"] == 3
    expected: dict[str, dict] = {}
    for o in truth:
        expected.setdefault(f"{o['symbol']}:{product_type_of[o['symbol']]}", {})[o["orderId"]] = o
    assert set(summary.manifest["symbols"]) == set(expected) and summary.orders == len(truth)
    for key, want in expected.items():
        rows = extraction.read_scan_rows(store, summary.manifest, key)
        assert sorted(rows["orderId"].to_list()) == sorted(want), key
        got = {r["orderId"]: r for r in rows.select("orderId", "cTime", "uTime", "size", "symbol").to_dicts()}
        assert got == {i: {f: o[f] for f in ("orderId", "cTime", "uTime", "size", "symbol")} for i, o in want.items()}
