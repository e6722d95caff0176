"""The Dagster user's own path, through the real daemon: `bitget-orders ui` (dagster dev: webserver, daemon, code
server) on a fresh DAGSTER_HOME with a one-minute refresh cron, against the simulator.

From the instance and the output: the first tick's runs succeed and bring the output to the ground truth; a
symbol first traded later is registered by the sensor and is in the output after the next tick; a backfill of
every symbol partition launched as the UI's "Materialize all" does (GraphQL launchPartitionBackfill) succeeds
under the shared limit; one partition materialized alone succeeds. No run fails on the way.
"""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bitget_assets.simulator import AccountSpec, SimulatorConfig
from tests.dagster_dev import LOCATION, _free_port, _graphql, _log_tail, _stop, _wait_until_served
from tests.simhelpers import NOW_MS, sim_env
from tests.simprocess import SimulatorProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PROJECT = Path(__file__).resolve().parents[1]
SPEC = AccountSpec(name="demo", seed=43, orders=1200, symbols=8, now_ms=NOW_MS)
REPO = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__"}
# One step set reads a symbol for every dataset: the UI selects the assets it materializes together.
SYMBOL_ASSETS = [{"path": ["symbol_orders"]}, {"path": ["symbol_plan_orders"]}]
ORDER_ENDPOINTS = ("/api/v2/mix/order/orders-history", "/api/v2/mix/order/orders-pending")


def runs(base: str) -> list[dict]:
    data = _graphql(base, "{ runsOrError { ... on Runs { results { runId jobName status tags { key value } } } } }")
    return data["runsOrError"]["results"]


def wait_for(what: str, condition, base: str, log: Path, timeout_s: float):
    """Poll `condition()` until it returns something truthy; fail at once if any run has failed."""
    deadline = time.time() + timeout_s
    while True:
        failed = [r for r in runs(base) if r["status"] in ("FAILURE", "CANCELED")]
        assert not failed, f"red runs while waiting for {what}: {failed}\n{_log_tail(log)}"
        result = condition()
        if result:
            return result
        assert time.time() < deadline, f"{what}: not within {timeout_s} s; runs {runs(base)}\n{_log_tail(log)}"
        time.sleep(2)


def output_ids(out: Path) -> list[str] | None:
    path = out / "orders.json"
    if not path.exists():
        return None
    return [o["orderId"] for o in json.loads(path.read_bytes())["orders"]]


def all_runs_done(base: str) -> bool:
    return all(r["status"] == "SUCCESS" for r in runs(base))


def test_schedule_sensor_backfill_and_single_partition_through_the_daemon(tmp_path):
    home, out, tmp = tmp_path / "home", tmp_path / "out", tmp_path / "tmp"
    for folder in (home, tmp):
        folder.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    base, log = f"http://127.0.0.1:{port}", tmp_path / "dagster-dev.log"
    cfg = SimulatorConfig(rate_limit=10, latency=(0.02, 0.06), frozen=True)
    with SimulatorProcess([SPEC], cfg) as sim:
        env = sim_env(sim, DAGSTER_HOME=str(home), BITGET_OUTPUT=str(out), BITGET_REFRESH_CRON="* * * * *",
                      TMPDIR=str(tmp))
        with open(log, "wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bitget_assets.cli", "ui", "--host", "127.0.0.1", "--port", str(port)],
                env=env, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            _wait_until_served(proc, base, log)

            # 1. The first tick (no partition registered yet): scan, then the sensor's run over every symbol.
            truth = [o["orderId"] for o in sim.truth("demo")]
            wait_for("the first tick's output", lambda: output_ids(out) == truth and all_runs_done(base),
                     base, log, timeout_s=240)
            first = runs(base)
            assert {r["jobName"] for r in first} >= {"scan_job", "update_symbols_job"}, first

            # 2. A symbol first traded now: the next tick's scan finds it, the sensor registers and applies it.
            sim.add_orders("demo", orders=[{"symbol": "LATEUSDT", "productType": "USDT-FUTURES"}] * 3)
            truth = [o["orderId"] for o in sim.truth("demo")]
            wait_for("the new symbol in the output", lambda: output_ids(out) == truth and all_runs_done(base),
                     base, log, timeout_s=240)
            keys = _graphql(base, """query($s: AssetKeyInput!) { assetNodeOrError(assetKey: $s) {
                ... on AssetNode { partitionKeys } } }""", {"s": {"path": ["symbol_orders"]}})
            keys = keys["assetNodeOrError"]["partitionKeys"]
            assert "LATEUSDT:USDT-FUTURES" in keys and len(keys) == len({o["symbol"] for o in sim.truth("demo")})

            # Quiet the schedule so that what follows is judged alone.
            state = _graphql(base, """query($s: ScheduleSelector!) { scheduleOrError(scheduleSelector: $s) {
                ... on Schedule { scheduleState { id } } } }""", {"s": {**REPO, "scheduleName": "refresh_schedule"}})
            _graphql(base, """mutation($id: String) { stopRunningSchedule(id: $id) { __typename } }""",
                     {"id": state["scheduleOrError"]["scheduleState"]["id"]})
            wait_for("runs under way to finish", lambda: all_runs_done(base), base, log, timeout_s=120)

            # 3. "Materialize all" on symbol_orders: a partition backfill of every key, as the UI launches it.
            mark = len(sim.request_log())
            launched = _graphql(base, """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(
                backfillParams: $p) { __typename ... on LaunchBackfillSuccess { backfillId }
                ... on PythonError { message } } }""", {"p": {
                "assetSelection": SYMBOL_ASSETS, "partitionNames": keys}})["launchPartitionBackfill"]
            assert launched["__typename"] == "LaunchBackfillSuccess", launched

            def backfill_done():
                status = _graphql(base, """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
                    ... on PartitionBackfill { status } } }""", {"id": launched["backfillId"]})
                return status["partitionBackfillOrError"]["status"] in ("COMPLETED", "COMPLETED_SUCCESS")

            wait_for("the backfill", lambda: backfill_done() and all_runs_done(base), base, log, timeout_s=300)
            backfill_log = [r for r in sim.request_log()[mark:] if r["endpoint"] in ORDER_ENDPOINTS]
            assert backfill_log, "the backfill read nothing: its partitions were not materialized"

            # 4. One partition materialized alone (the UI's "Materialize" on a partition).
            mark2 = len(runs(base))
            single = _graphql(base, """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
                __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""", {"p": {
                "selector": {**REPO, "jobName": "__ASSET_JOB", "assetSelection": SYMBOL_ASSETS},
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": keys[0]}]}}})["launchRun"]
            assert single["__typename"] == "LaunchRunSuccess", single
            wait_for("the single partition", lambda: len(runs(base)) > mark2 and all_runs_done(base),
                     base, log, timeout_s=180)

            assert output_ids(out) == truth
            windows = {e: sim.max_requests_per_window(account="demo", endpoint=e, status=None)
                       for e in ORDER_ENDPOINTS}
            assert max(windows.values()) <= 10, windows
            assert not [r for r in sim.request_log() if r["status"] == 429], "the shared budget was overrun"
            print(f"\n[daemon] {len(runs(base))} runs, all green: {sorted({r['jobName'] for r in runs(base)})}")
        finally:
            left = _stop(proc)
            assert not left, f"dagster dev processes left running: {left}"
