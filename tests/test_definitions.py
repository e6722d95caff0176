"""What `defs` serves: the graph, the jobs, and the sensor and schedule as the daemon would run them."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from bitget_assets.definitions import build_definitions, defs
from bitget_assets.lineage import SCAN_RUN_TAG
from bitget_assets.resources import BitgetResource, ProgressResource, RateLimiterResource, StorageResource
from bitget_assets.sensors import APPLIED_BY_LAUNCHER_TAG
from bitget_assets.settings import load_settings
from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig
from tests.dagster_assets import materializations
from tests.simhelpers import NOW_MS

PROJECT = Path(__file__).resolve().parents[1]
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def test_definitions_load_with_the_expected_graph():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    # plan orders are on by default, fills off: a stream that is off has no asset at all
    assert keys == {"order_scan", "symbol_orders", "sorted_orders", "symbol_plan_orders", "sorted_plan_orders",
                    "imported_orders"}
    jobs = {j.name for j in defs.resolve_all_job_defs()} - {"__ASSET_JOB"}
    assert jobs == {"scan_job", "update_symbols_job", "refresh_job"}
    assert defs.resolve_sensor_def("new_symbols_sensor").job_name == "update_symbols_job"
    assert defs.resolve_schedule_def("refresh_schedule").job_name == "scan_job"
    assert {k.to_user_string() for k in graph.asset_check_keys} == {
        *(f"sorted_{ds}:{c}" for ds in ("orders", "plan_orders") for c in (
            "unique_order_ids", "sorted_by_ctime_then_order_id", "count_equals_sum_of_partitions", "no_history_gap")),
        "sorted_plan_orders:executed_plans_link_to_orders", "symbol_orders:partitions_hold_only_their_symbol",
        "sorted_orders:imported_symbols_are_partitions", "sorted_orders:imports_agree_with_the_api"}
    with_fills = build_definitions(load_settings({"BITGET_STREAMS": "fills"})).resolve_asset_graph()
    assert {k.to_user_string() for k in with_fills.get_all_asset_keys()} == {
        "order_scan", "symbol_orders", "sorted_orders", "symbol_fills", "sorted_fills", "imported_orders"}
    assert {"sorted_fills:fills_link_to_orders", "sorted_fills:fills_add_up_to_orders",
            "sorted_fills:unique_trade_ids"} <= {k.to_user_string() for k in with_fills.asset_check_keys}
    assert set(defs.resources) >= {"bitget", "storage", "rate_limiter", "progress"}
    # one group, so the UI draws the whole lineage of the account together
    assert {s.group_name for s in defs.resolve_all_asset_specs()} == {"bitget"}


def freshness(environ: dict) -> dg.FreshnessPolicy:
    specs = {s.key.to_user_string(): s for s in build_definitions(load_settings(environ)).resolve_all_asset_specs()}
    assert {k: s.freshness_policy for k, s in specs.items() if not k.startswith("sorted_")} == {
        "order_scan": None, "symbol_orders": None, "symbol_plan_orders": None, "imported_orders": None}
    assert specs["sorted_plan_orders"].freshness_policy == specs["sorted_orders"].freshness_policy
    return specs["sorted_orders"].freshness_policy


def test_sorted_orders_declares_the_freshness_policy():
    """A missed refresh turns sorted_orders amber after 30 minutes and red after 60 (by default). Evaluating
    the policy needs the daemon, so this checks what the definitions declare, as the UI will read it."""
    assert freshness({}) == dg.FreshnessPolicy.time_window(fail_window=timedelta(minutes=60),
                                                           warn_window=timedelta(minutes=30))


@pytest.mark.parametrize("minutes, warn", [(20, 10), (30, 15), (90, 30)])
def test_a_short_stale_window_still_loads(minutes, warn):
    """BITGET_STALE_AFTER_MINUTES <= 30 made the code location fail to load (the warn window was fixed at 30)."""
    policy = freshness({"BITGET_STALE_AFTER_MINUTES": str(minutes)})
    assert policy.fail_window.to_timedelta() == timedelta(minutes=minutes)
    assert policy.warn_window.to_timedelta() == timedelta(minutes=warn)


def simulator_resources(sim, out) -> dict:
    c = sim.credentials("demo")
    return {
        "bitget": BitgetResource(api_key=c["api_key"], api_secret=c["api_secret"], api_passphrase=c["passphrase"],
                                 base_url=sim.base_url),
        "rate_limiter": RateLimiterResource(backend="memory", requests_per_second=50),
        "storage": StorageResource(location=str(out)),
        "progress": ProgressResource(),
    }


def evaluate(instance, cursor=None):
    sensor = defs.resolve_sensor_def("new_symbols_sensor")
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs) as ctx:
        return sensor(ctx)


def test_sensor_applies_each_scan_once_and_registers_new_symbols(tmp_path):
    """The sensor reacts to order_scan materializations: a scan alone (the schedule's) gets one run over every
    partition, tagged with that scan's run; a scan the CLI applies itself only registers its new symbols; a
    scan already handled is skipped."""
    spec = AccountSpec(name="demo", seed=5, orders=300, symbols=6, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=None, frozen=True)) as sim, \
            dg.instance_for_test() as instance:
        resources = simulator_resources(sim, tmp_path / "out")
        scan_job = defs.resolve_job_def("scan_job")
        assert isinstance(evaluate(instance), dg.SkipReason)  # no scan yet

        first = scan_job.execute_in_process(instance=instance, resources=resources)
        result = evaluate(instance)
        added = list(result.dynamic_partitions_requests[0].partition_keys)
        symbols = {o["symbol"] for o in sim.truth("demo")}
        assert {k.split(":")[0] for k in added} == symbols and len(added) == len(symbols)
        assert len(result.run_requests) == 1  # one run for all of them, not one per symbol
        tags = result.run_requests[0].tags
        assert (tags[RANGE_START], tags[RANGE_END]) == (added[0], added[-1])
        assert tags[SCAN_RUN_TAG] == first.run_id
        instance.add_dynamic_partitions("symbols", added)
        assert isinstance(evaluate(instance, cursor=result.cursor), dg.SkipReason)  # handled already
        update = defs.resolve_job_def("update_symbols_job")
        applied = update.execute_in_process(instance=instance, resources=resources, tags=tags)
        sources = {m.partition: m.metadata["source"].value for m in materializations(applied, "symbol_orders")}
        assert sources == dict.fromkeys(added, f"account scan {first.run_id[:8]}")  # lineage: the tagged scan

        # A later scan with a new symbol: one run over every partition, the new one appended last.
        sim.add_orders("demo", orders=[{"symbol": "NEWSYMUSDT", "productType": "USDT-FUTURES"}] * 3)
        second = scan_job.execute_in_process(instance=instance, resources=resources)
        result2 = evaluate(instance, cursor=result.cursor)
        assert [k.split(":")[0] for k in result2.dynamic_partitions_requests[0].partition_keys] == ["NEWSYMUSDT"]
        tags = result2.run_requests[0].tags
        new_key = result2.dynamic_partitions_requests[0].partition_keys[0]
        assert (tags[RANGE_START], tags[RANGE_END], tags[SCAN_RUN_TAG]) == (added[0], new_key, second.run_id)

        # A scan its launcher applies (the CLI): symbols registered, no run requested.
        instance.add_dynamic_partitions("symbols", [new_key])
        scan_job.execute_in_process(instance=instance, resources=resources,
                                    tags={APPLIED_BY_LAUNCHER_TAG: "bitget-orders"})
        result3 = evaluate(instance, cursor=result2.cursor)
        assert result3.run_requests == [] and result3.dynamic_partitions_requests == []


def test_schedule_always_launches_the_scan():
    """The first tick on a fresh instance has no partition: the schedule still requests a valid run (the scan,
    which needs none); the bug was a RunRequest for another job than the schedule's, failing every step."""
    schedule = defs.resolve_schedule_def("refresh_schedule")
    with dg.instance_for_test() as instance:
        for keys in ([], ["A1:USDT-FUTURES", "B2:COIN-FUTURES"]):
            if keys:
                instance.add_dynamic_partitions("symbols", keys)
            with dg.build_schedule_context(instance=instance) as ctx:
                requests = schedule.evaluate_tick(ctx).run_requests
            assert len(requests) == 1 and requests[0].job_name in (None, "scan_job")
            assert schedule.job_name == "scan_job"


@pytest.mark.parametrize("command", [["dg", "check", "defs"], ["dagster", "definitions", "validate"]])
def test_dagster_tooling_accepts_the_project(command):
    """`dg check defs` (dagster-dg-cli, configured in pyproject.toml) and `dagster definitions validate` load
    the code location the way `dg dev` and `dagster dev` do."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BITGET_", "DAGSTER_"))}
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parents[1])
    proc = subprocess.run([str(Path(sys.executable).parent / command[0]), *command[1:]], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "error" not in (proc.stdout + proc.stderr).lower()
