"""The asset checks can fail: each bad input fails exactly the check that judges it, and good input passes."""

import dagster as dg
import polars as pl
import pytest

from bitget_assets import dataset_checks
from bitget_assets import history_store as hs
from bitget_assets.checks import partition_problems
from bitget_assets.orders import orders_frame
from bitget_assets.sorted_checks import coverage_check, output_checks, verdict_result
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


# -- the cross-dataset checks (bitget_assets.dataset_checks) ---------------------------------------------------
def rows(*dicts: dict) -> pl.DataFrame:
    return pl.DataFrame(list(dicts)) if dicts else pl.DataFrame()


ORDERS = rows(
    {"orderId": "100", "cTime": "1000", "status": "filled", "baseVolume": "0.3"},
    {"orderId": "200", "cTime": "2000", "status": "canceled", "baseVolume": "0"},
    {"orderId": "300", "cTime": "3000", "status": "partially_filled", "baseVolume": "1"},  # may be open: no sum
)
FILLS = [{"tradeId": "101", "orderId": "100", "cTime": "1001", "baseVolume": "0.1"},
         {"tradeId": "102", "orderId": "100", "cTime": "1002", "baseVolume": "0.2"}]


def test_plans_link_to_orders_fails_on_a_missing_order_and_warns_outside_coverage():
    plan = {"orderId": "9", "cTime": "1500", "uTime": "1600", "planStatus": "executed", "executeOrderId": "100"}
    assert dataset_checks.plans_link_to_orders(rows(plan), ORDERS).passed
    broken = dataset_checks.plans_link_to_orders(rows({**plan, "executeOrderId": "555"}), ORDERS)
    assert (broken.failures, broken.warnings) == (["9"], [])
    # fired before the oldest order we hold: its order may be past Bitget's 90-day edge, a warning only
    early = dataset_checks.plans_link_to_orders(rows({**plan, "executeOrderId": "555", "uTime": "900",
                                                      "cTime": "800"}), ORDERS)
    assert (early.failures, early.warnings) == ([], ["9"])
    cancelled = dataset_checks.plans_link_to_orders(rows({**plan, "planStatus": "cancelled",
                                                          "executeOrderId": ""}), ORDERS)
    assert cancelled.passed and not cancelled.warnings


def test_fills_link_to_orders_and_add_up_to_each_finished_order():
    assert dataset_checks.fills_link_to_orders(rows(*FILLS), ORDERS).passed
    assert dataset_checks.fills_add_up_to_orders(rows(*FILLS), ORDERS).passed
    stray = dataset_checks.fills_link_to_orders(rows(*FILLS, {**FILLS[0], "tradeId": "999", "orderId": "777",
                                                                "cTime": "2500"}), ORDERS)
    assert stray.failures == ["999"]
    short = dataset_checks.fills_add_up_to_orders(rows(FILLS[0]), ORDERS, fills_from=500)
    assert short.failures == ["100"]  # 0.1 of 0.3, and the fills were read completely from before the order
    extra = dataset_checks.fills_add_up_to_orders(rows(*FILLS, {**FILLS[1], "tradeId": "103"}), ORDERS,
                                                  fills_from=500)
    assert extra.failures == ["100"]  # 0.5 of 0.3
    # exact decimals: 0.1 + 0.2 is 0.3 here, where floats would say 0.30000000000000004
    assert dataset_checks.fills_add_up_to_orders(rows(*FILLS), ORDERS).failures == []


def test_an_order_older_than_the_fills_history_we_read_is_a_warning():
    """Fills were read completely only from 1500 on (Bitget's 90-day edge): order 100 of 1000 may have had
    older fills we can never see, so its short sum is a warning, not a failure."""
    verdict = dataset_checks.fills_add_up_to_orders(rows(FILLS[1]), ORDERS, fills_from=1500)
    assert (verdict.failures, verdict.warnings) == ([], ["100"])


def test_a_failing_cross_check_is_an_error_and_one_outside_coverage_a_warning():
    key = dg.AssetKey("sorted_fills")
    failed = verdict_result("fills_link_to_orders", dataset_checks.Verdict(failures=["1"]), key)
    warned = verdict_result("fills_link_to_orders", dataset_checks.Verdict(warnings=["1"]), key)
    assert (failed.passed, failed.severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert (warned.passed, warned.severity) == (False, dg.AssetCheckSeverity.WARN)


def test_the_gap_check_names_the_hole():
    hole = {"dataset": "fills", "stream": "fills", "product_type": "USDT-FUTURES", "interval": "2026-06-01 → 06-09"}
    result = coverage_check("fills", [hole], dg.AssetKey("sorted_fills"))
    assert not result.passed and "2026-06-01" in str(result.metadata["holes"].value)
    assert coverage_check("orders", [hole], dg.AssetKey("sorted_orders")).passed
