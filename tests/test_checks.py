"""The asset checks can fail: each bad input fails exactly the check that judges it, and good input passes."""

import polars as pl
import pytest

from bitget_assets import history_store as hs
from bitget_assets.assets import output_checks
from bitget_assets.checks import partition_problems
from bitget_assets.orders import orders_frame
from bitget_assets.storage import LocalStorage

CHECKS = {"unique_order_ids", "sorted_by_ctime_then_order_id", "count_equals_sum_of_partitions"}


def order(order_id: str, ctime: int, symbol: str = "BTCUSDT") -> dict:
    return {"orderId": order_id, "cTime": str(ctime), "uTime": str(ctime + 5), "symbol": symbol, "status": "filled"}


def frame(*orders: dict) -> pl.DataFrame:
    return orders_frame(list(orders), "USDT-FUTURES", "history")


def verdicts(df: pl.DataFrame, partition_rows: int) -> dict[str, bool]:
    results = output_checks(df, partition_rows)
    assert {r.check_name for r in results} == CHECKS
    return {r.check_name: r.passed for r in results}


# Sorted by cTime, then numerically by orderId (9 < 10 although "10" < "9" as text).
GOOD = [order("5", 1_000), order("9", 2_000), order("10", 2_000), order("11", 3_000)]


def test_a_correct_output_passes_every_check():
    assert verdicts(frame(*GOOD), len(GOOD)) == dict.fromkeys(CHECKS, True)


@pytest.mark.parametrize("bad, rows, failing", [
    # the same orderId twice (still sorted, and the partitions held 5 rows too)
    ([*GOOD, order("11", 3_000)], 5, "unique_order_ids"),
    # two rows swapped on cTime
    ([GOOD[1], GOOD[0], GOOD[2], GOOD[3]], 4, "sorted_by_ctime_then_order_id"),
    # same cTime, orderIds in text order instead of numeric order
    ([GOOD[0], GOOD[2], GOOD[1], GOOD[3]], 4, "sorted_by_ctime_then_order_id"),
    # a correct file, but the partitions held one row more than was written
    (GOOD, 5, "count_equals_sum_of_partitions"),
])
def test_each_defect_fails_exactly_its_check(bad, rows, failing):
    assert verdicts(frame(*bad), rows) == {name: name != failing for name in CHECKS}


def test_the_count_check_reports_both_counts():
    result = next(r for r in output_checks(frame(*GOOD), 7) if r.check_name == "count_equals_sum_of_partitions")
    assert not result.passed
    assert {k: v.value for k, v in result.metadata.items()} == {"output_rows": 4, "partition_rows": 7}


BTC, ETH, SOL = "BTCUSDT:USDT-FUTURES", "ETHUSDT:USDT-FUTURES", "SOLUSDT:USDT-FUTURES"


def test_partition_problems_finds_foreign_symbols_and_duplicates(tmp_path):
    store = LocalStorage(tmp_path)
    hs.write_partition(store, BTC, frame(order("1", 1_000), order("2", 2_000)), {})
    hs.write_partition(store, ETH, frame(order("3", 1_000, "ETHUSDT"), order("4", 2_000, "BTCUSDT")), {})
    hs.write_partition(store, SOL, frame(order("5", 1_000, "SOLUSDT"), order("5", 1_000, "SOLUSDT")), {})
    bad, rows = partition_problems(store, [BTC, ETH, SOL])
    assert bad == {ETH: "holds other symbols", SOL: "duplicate orderIds"}
    assert rows == 6


def test_partition_problems_passes_clean_and_missing_partitions(tmp_path):
    store = LocalStorage(tmp_path)
    hs.write_partition(store, BTC, frame(order("1", 1_000), order("2", 2_000)), {})
    hs.write_partition(store, ETH, frame(order("3", 1_000, "ETHUSDT")), {})
    # SOL was never written: an empty partition has no problem
    assert partition_problems(store, [BTC, ETH, SOL]) == ({}, 3)
