"""Datasets (orders, plan orders, fills): merge rules, storage of any symbol, outputs, state migration."""

import csv
import io
import json
import os

import polars as pl
import pytest

from bitget_assets import extraction
from bitget_assets import history_store as hs
from bitget_assets.coverage import coverage_gaps, merge_intervals
from bitget_assets.datasets import dataset
from bitget_assets.storage import LocalStorage

PT = "USDT-FUTURES"


def plan(oid, ctime, utime, status, **extra):
    return {"orderId": str(oid), "cTime": str(ctime), "uTime": utime, "symbol": "BTCUSDT", "planStatus": status,
            "planType": "normal_plan", **extra}


def test_a_plan_seen_pending_then_in_history_keeps_its_history_copy():
    d = dataset("plan_orders")
    history = d.frame([plan(7, 100, "150", "executed"), plan(8, 90, "", "cancelled")], PT, "history")
    # Read later from the pending list (a stale cache on the exchange's side, or a run that overlaps): its uTime
    # looks newer, or is empty, but a plan in history has ended for good.
    pending = d.frame([plan(7, 100, "999", "live"), plan(8, 90, "5", "live"), plan(9, 95, "", "live")], PT, "pending")
    for frames in ([history, pending], [pending, history]):
        merged = d.merge(frames)
        assert merged["orderId"].to_list() == ["8", "9", "7"]
        assert merged["planStatus"].to_list() == ["cancelled", "live", "executed"]


def test_orders_still_take_the_latest_utime():
    d = dataset("orders")
    order = {"orderId": "1", "cTime": "5", "symbol": "BTCUSDT"}
    merged = d.merge([d.frame([order | {"uTime": "9", "status": "filled"}], PT, "history"),
                      d.frame([order | {"uTime": "6", "status": "live"}], PT, "pending")])
    assert merged["status"].to_list() == ["filled"]


def test_each_dataset_is_keyed_on_its_own_id_so_a_plan_id_never_meets_an_order_id(tmp_path):
    store, key = LocalStorage(tmp_path), f"BTCUSDT:{PT}"
    same_id = "1111491399869075457"
    order = {"orderId": same_id, "cTime": "100", "uTime": "100", "symbol": "BTCUSDT", "status": "filled"}
    fills = [{"tradeId": str(t), "orderId": same_id, "cTime": "100", "symbol": "BTCUSDT", "price": "1"} for t in (2, 1)]
    for ds, rows in (("orders", [order]), ("plan_orders", [plan(same_id, 100, "100", "executed")]), ("fills", fills)):
        extraction.update_partition(store, key, dataset(ds).frame(rows, PT, "history"), read_at_ms=1, scan_id=None,
                                    dataset=ds)
    out = extraction.build_sorted_outputs(store, [key], ("orders", "plan_orders", "fills"), elapsed_seconds=0.5)
    assert {ds: s.count for ds, s in out.items()} == {"orders": 1, "plan_orders": 1, "fills": 2}
    docs = {ds: json.loads((tmp_path / f"{ds}.json").read_bytes()) for ds in out}
    assert docs["orders"]["orders"][0]["status"] == "filled"
    assert docs["plan_orders"]["plan_orders"][0]["planStatus"] == "executed"
    assert [f["tradeId"] for f in docs["fills"]["fills"]] == ["1", "2"]  # (cTime, tradeId) order
    assert pl.read_parquet(tmp_path / "fills.parquet")["tradeId"].to_list() == ["1", "2"]


def test_csv_has_bitget_names_values_as_sent_and_iso_times_beside_the_ms(tmp_path):
    store, key = LocalStorage(tmp_path), f"BTCUSDT:{PT}"
    rows = [{"orderId": "1783408620745000000", "cTime": "1783408620745", "uTime": "1783409789144",
             "symbol": "BTCUSDT", "price": "53633.10", "fee": "-0.02252590", "clientOid": 'a,"b"\nc'},
            {"orderId": "1783408620745000001", "cTime": "1783408620745", "uTime": "", "symbol": "BTCUSDT",
             "price": "", "fee": "0", "clientOid": ""}]
    extraction.update_partition(store, key, dataset("orders").frame(rows, PT, "history"), read_at_ms=1, scan_id=None)
    summary = extraction.build_sorted_orders(store, [key], elapsed_seconds=0)
    assert summary.csv_uri.endswith("orders.csv")
    text = (tmp_path / "orders.csv").read_text()
    got = list(csv.DictReader(io.StringIO(text)))
    header = next(csv.reader(io.StringIO(text)))
    assert header == ["orderId", "cTime", "cTime_iso", "uTime", "uTime_iso", "symbol", "price", "fee", "clientOid"]
    assert got[0] | {} == {"orderId": "1783408620745000000", "cTime": "1783408620745",
                           "cTime_iso": "2026-07-07T07:17:00.745Z", "uTime": "1783409789144",
                           "uTime_iso": "2026-07-07T07:36:29.144Z", "symbol": "BTCUSDT", "price": "53633.10",
                           "fee": "-0.02252590", "clientOid": 'a,"b"\nc'}
    assert (got[1]["uTime"], got[1]["uTime_iso"], got[1]["price"], got[1]["fee"]) == ("", "", "", "0")


@pytest.mark.parametrize("symbol", ["龙虾USDT", "$DEGENUSDT", "A%B?C#D", "1000PEPEUSDT"])
def test_any_symbol_bitget_lists_has_working_storage_paths(tmp_path, symbol):
    store, key = LocalStorage(tmp_path), f"{symbol}:{PT}"
    rows = [{"orderId": "5", "cTime": "10", "uTime": "10", "symbol": symbol}]
    extraction.update_partition(store, key, dataset("orders").frame(rows, PT, "history"), read_at_ms=1, scan_id="s")
    extraction.update_partition(store, key, dataset("fills").frame(
        [{"tradeId": "6", "cTime": "10", "symbol": symbol}], PT, "history"), read_at_ms=1, scan_id="s", dataset="fills")
    assert hs.read_partition(store, key)["orderId"].to_list() == ["5"]
    assert hs.read_partition(store, key, "fills")["tradeId"].to_list() == ["6"]
    assert hs.read_partition_state(store, key)["scan_id"] == "s"
    files = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    segment = symbol.replace("%", "%25").replace("?", "%3F").replace("#", "%23")
    assert files == {f"partitions/{PT}/{segment}.parquet", f"partitions/{PT}/{segment}.json",
                     f"datasets/fills/{PT}/{segment}.parquet", f"datasets/fills/{PT}/{segment}.json"}
    assert hs.split_key(key) == (symbol, PT)


@pytest.mark.parametrize("key", ["../X:USDT-FUTURES", "A/B:USDT-FUTURES", "BTCUSDT", "BTC USDT:USDT-FUTURES",
                                 ":USDT-FUTURES", "BTCUSDT:SPOT", "A\x00B:USDT-FUTURES", ".X:USDT-FUTURES"])
def test_malformed_partition_keys_are_refused_before_any_path_is_built(tmp_path, key):
    with pytest.raises(ValueError, match="malformed partition key"):
        hs.read_partition(LocalStorage(tmp_path), key)
    with pytest.raises(ValueError, match="malformed partition key"):
        extraction.update_partition(LocalStorage(tmp_path), key, dataset("orders").empty(), read_at_ms=1,
                                    scan_id=None)
    assert not list(tmp_path.rglob("*"))


def test_an_unchanged_partition_is_not_rewritten_but_its_read_time_is(tmp_path):
    store, key = LocalStorage(tmp_path), f"BTCUSDT:{PT}"
    d = dataset("orders")
    rows = d.frame([{"orderId": "1", "cTime": "10", "uTime": "10", "symbol": "BTCUSDT"}], PT, "history")
    first = extraction.update_partition(store, key, rows, read_at_ms=100, scan_id="a")
    path = tmp_path / "partitions" / PT / "BTCUSDT.parquet"
    os.utime(path, (1, 1))
    again = extraction.update_partition(store, key, rows, read_at_ms=200, scan_id="b")
    assert (first["written"], again["written"]) == (True, False)
    assert (again["rows"], again["orders"], again["new_orders"], again["read"]) == (1, 1, 0, 1)
    assert path.stat().st_mtime == 1
    state = hs.read_partition_state(store, key)
    assert (state["last_read_ms"], state["scan_id"], state["orders"]) == (200, "b", 1)
    newer = d.frame([{"orderId": "1", "cTime": "10", "uTime": "11", "symbol": "BTCUSDT"}], PT, "history")
    assert extraction.update_partition(store, key, newer, read_at_ms=300, scan_id=None)["written"]
    assert path.stat().st_mtime > 1


def test_state_as_today_written_reads_unchanged_and_older_state_is_migrated(tmp_path):
    store, key = LocalStorage(tmp_path), f"BTCUSDT:{PT}"
    # Exactly what the release before this one wrote (partition state and scan/applied.json).
    today = {"last_read_ms": 1790000000000, "newest_ctime": 1789990000000, "newest_order_id": "1789990000000000001",
             "open_orders": {"1789000000000000000": 1789000000000}, "orders": 12, "scan_id": "scan-1"}
    store.write(f"partitions/{PT}/BTCUSDT.json", json.dumps(today, indent=1, sort_keys=True).encode())
    assert hs.read_partition_state(store, key) == today
    retention_start = 1790000000000 - 90 * 86_400_000
    assert extraction.refresh_start_ms(hs.read_partition_state(store, key), retention_start, set()) == 1789000000000
    assert extraction.refresh_start_ms(today, retention_start, {"1789000000000000000"}) == 1789990000000 - 3_600_000
    # Older still: only the oldest open order's cTime was kept.
    older = {k: v for k, v in today.items() if k != "open_orders"} | {"oldest_open_ctime": 1788000000000}
    store.write(f"partitions/{PT}/BTCUSDT.json", json.dumps(older).encode())
    migrated = hs.read_partition_state(store, key)
    assert "oldest_open_ctime" not in migrated and migrated["open_orders"] == {hs.LEGACY_OPEN_ID: 1788000000000}
    assert extraction.refresh_start_ms(migrated, retention_start, {"1789000000000000000"}) == 1788000000000
    applied = {"account": "a", "scan_id": "s", "marks": {PT: {"newest_ctime": 5, "oldest_open_ctime": 3}}}
    assert hs.migrate_marks(applied)["marks"][PT] == {"newest_ctime": 5, "open_orders": {hs.LEGACY_OPEN_ID: 3}}
    # The next write is in today's form: the migration happens once.
    rows = dataset("orders").frame([{"orderId": "1", "cTime": "1789990000000", "uTime": "1", "symbol": "BTCUSDT"}],
                                   PT, "history")
    extraction.update_partition(store, key, rows, read_at_ms=1, scan_id=None)
    assert "oldest_open_ctime" not in json.loads(store.read(f"partitions/{PT}/BTCUSDT.json"))


def test_coverage_gaps_name_every_hole_inside_the_retention():
    day = 86_400_000
    now = 100 * day
    assert merge_intervals([[5, 9], [1, 4], [20, 30], [12, 25]]) == [[1, 9], [12, 30]]
    assert coverage_gaps([[now - 90 * day, now]], now, 90 * day) == []
    assert coverage_gaps([[now - 95 * day, now - 50 * day], [now - 50 * day + 1, now - day]], now, 90 * day) == []
    assert coverage_gaps([[now - 90 * day, now - 40 * day], [now - 30 * day, now]], now, 90 * day) == [
        (now - 40 * day + 1, now - 30 * day - 1)]
    assert coverage_gaps([[now - 60 * day, now]], now, 90 * day) == [(now - 90 * day, now - 60 * day - 1)]
    assert coverage_gaps([], now, 90 * day) == [(now - 90 * day, now)]
    with pytest.raises(ValueError, match="ends before"):
        merge_intervals([[5, 4]])


def test_coverage_holes_name_the_dataset_stream_product_type_and_interval(tmp_path):
    store, day = LocalStorage(tmp_path), 86_400_000
    now = 200 * day
    cover = {"plan_history:normal_plan": {PT: [[now - 90 * day, now - 50 * day], [now - 40 * day, now]]},
             "plan_history:track_plan": {PT: [[now - 90 * day, now]]}}
    hs.write_json(store, hs.SCAN_APPLIED, {"datasets": {"plan_orders": {"marks": {}, "coverage": cover}}})
    holes = extraction.coverage_holes(store, now)
    assert holes == [{"dataset": "plan_orders", "stream": "plan_history:normal_plan", "product_type": PT,
                      "start_ms": now - 50 * day + 1, "end_ms": now - 40 * day - 1,
                      "interval": "[1970-05-31T00:00:00.001Z .. 1970-06-09T23:59:59.999Z]"}]  # days 150 and 160
    assert extraction.coverage_holes(LocalStorage(tmp_path / "empty"), now) == []
