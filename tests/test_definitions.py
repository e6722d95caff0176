"""Definitions load; the sensor and the schedule request exactly what they should."""

import os
from datetime import timedelta

import dagster as dg

from bitget_assets import history_store as hs
from bitget_assets.definitions import defs
from bitget_assets.resources import StorageResource
from bitget_assets.schedules import refresh_schedule
from bitget_assets.sensors import new_symbols_sensor
from bitget_assets.storage import LocalStorage

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def test_definitions_load_with_the_expected_graph():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {"order_scan", "symbol_orders", "sorted_orders"}
    assert {j for j in ("scan_job", "extract_job", "refresh_job") if defs.resolve_job_def(j)} == {
        "scan_job", "extract_job", "refresh_job"}
    assert defs.resolve_sensor_def("new_symbols_sensor") and defs.resolve_schedule_def("refresh_schedule")
    checks = {k.name for k in graph.asset_check_keys}
    assert {"unique_order_ids", "sorted_by_ctime_then_order_id", "count_equals_sum_of_partitions",
            "partitions_hold_only_their_symbol"} <= checks


def test_sorted_orders_declares_the_freshness_policy():
    """A missed refresh turns sorted_orders amber after 30 minutes and red after 60 (by default). Evaluating
    the policy needs the daemon, so this checks what the definitions declare, as the UI will read it."""
    assert "BITGET_STALE_AFTER_MINUTES" not in os.environ, "this test checks the default fail window"
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    policy = specs["sorted_orders"].freshness_policy
    assert policy is not None, "sorted_orders has no freshness policy"
    assert policy.fail_window.to_timedelta() == timedelta(minutes=60)
    assert policy.warn_window.to_timedelta() == timedelta(minutes=30)
    assert policy == dg.FreshnessPolicy.time_window(fail_window=timedelta(minutes=60),
                                                     warn_window=timedelta(minutes=30))
    # Only the output is judged: the partitions and the scan are refreshed as its inputs.
    assert {k: s.freshness_policy for k, s in specs.items() if k != "sorted_orders"} == {
        "order_scan": None, "symbol_orders": None}


def write_manifest(tmp_path, scan_id, symbols):
    hs.write_json(LocalStorage(tmp_path), hs.SCAN_MANIFEST, {"scan_id": scan_id, "symbols": symbols})


def evaluate(instance, storage, cursor=None):
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"storage": storage}) as ctx:
        return new_symbols_sensor(ctx)


def test_sensor_adds_new_symbols_in_one_run_and_moves_its_cursor(tmp_path):
    storage = StorageResource(location=str(tmp_path))
    with dg.instance_for_test() as instance:
        assert isinstance(evaluate(instance, storage), dg.SkipReason)  # no scan yet

        write_manifest(tmp_path, "scan-1", {"BTCUSDT:USDT-FUTURES": 90, "ETHUSD:COIN-FUTURES": 5, "X1:USDT-FUTURES": 1})
        result = evaluate(instance, storage)
        added = result.dynamic_partitions_requests[0]
        assert list(added.partition_keys) == ["BTCUSDT:USDT-FUTURES", "ETHUSD:COIN-FUTURES", "X1:USDT-FUTURES"]
        assert len(result.run_requests) == 1  # one run for all of them, not one per symbol
        tags = result.run_requests[0].tags
        assert (tags[RANGE_START], tags[RANGE_END]) == ("BTCUSDT:USDT-FUTURES", "X1:USDT-FUTURES")
        assert result.cursor == "scan-1"

        instance.add_dynamic_partitions("symbols", list(added.partition_keys))
        assert isinstance(evaluate(instance, storage, cursor="scan-1"), dg.SkipReason)

        write_manifest(tmp_path, "scan-2", {"BTCUSDT:USDT-FUTURES": 95, "SOLUSDT:USDT-FUTURES": 2})
        result = evaluate(instance, storage, cursor="scan-1")
        assert list(result.dynamic_partitions_requests[0].partition_keys) == ["SOLUSDT:USDT-FUTURES"]
        assert result.run_requests[0].tags[RANGE_START] == "SOLUSDT:USDT-FUTURES"
        assert result.cursor == "scan-2"


def test_schedule_scans_first_then_refreshes_the_whole_range():
    with dg.instance_for_test() as instance:
        request = refresh_schedule(dg.build_schedule_context(instance=instance))
        assert request.job_name == "scan_job"
        instance.add_dynamic_partitions("symbols", ["A1:USDT-FUTURES", "B2:COIN-FUTURES"])
        request = refresh_schedule(dg.build_schedule_context(instance=instance))
        assert request.job_name in (None, "refresh_job")
        assert (request.tags[RANGE_START], request.tags[RANGE_END]) == ("A1:USDT-FUTURES", "B2:COIN-FUTURES")
