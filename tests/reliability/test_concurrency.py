"""Concurrency: several extractions of one account at once, on one machine.

Eight `bitget-orders extract` processes against one account with faults on, sharing the output folder, the
Dagster instance and the file rate limiter (one TMPDIR: the limiter's default folder is the machine's temp
dir): every run succeeds with the whole history, no partition is lost, and the server answers no 429 beyond
the bursts it injected. Then two races the eight do not reliably hit: runs started at the same moment in a
fresh DAGSTER_HOME, and a staged scan file removed (by another run's scan) while a run is still reading it.
"""

import json
import threading

import dagster as dg
import pytest

from bitget_assets import extraction
from bitget_assets.assets import order_scan, sorted_orders, symbol_orders
from bitget_assets.jobs import partition_range_tags
from bitget_assets.resources import BitgetResource, RateLimiterResource, StorageResource
from bitget_assets.simulator import AccountSpec, FaultConfig
from tests.reliability.batches import batch
from tests.reliability.helpers import (
    NOW_MS,
    SPEC,
    SYNCHRONIZED_CLI,
    assert_equals_truth,
    assert_partitions_hold_truth,
    audit,
    order_log,
    read_output,
    start_extract,
    start_simulator,
    wait_until,
)

FAULTS = FaultConfig(error_5xx=0.03, burst_429=0.02, reset=0.02, truncated=0.02, error_200=0.02)


@batch(after=("matrix", "crashes", "s3world", "bad_credential_runs", "fresh_home"))
def eight(tmp_path_factory):
    """Eight extractions at once, after every other batch: the machine is as quiet as this suite can make it
    (the simulator shares this process, so a starved test process would itself bunch arrivals together)."""
    sim = start_simulator(faults=FAULTS, seed=3, latency=(0.02, 0.08))
    try:
        work = tmp_path_factory.mktemp("eight")
        tmp, home = work / "tmp", work / "home"
        tmp.mkdir()
        home.mkdir()
        # An existing instance (a fresh one is raced for in its own test below).
        with dg.DagsterInstance.from_config(str(home)) as instance:
            instance.get_runs(limit=1)
        runs = [start_extract(sim, work / f"p{i}", work / "out", home=home, TMPDIR=str(tmp)) for i in range(8)]
        results = [run.wait() for run in runs]
        return sim.request_log(), work, home, results, audit(order_log(sim, SPEC.name)), sim.truth(SPEC.name)
    finally:
        sim.stop()


@pytest.mark.slow
def test_eight_concurrent_extractions_lose_nothing(eight):
    _, work, home, results, a, truth = eight
    print(f"\n[concurrency] 8 processes: {a} | per-run orders {[r.summary['orders'] for r in results if r.rc == 0]}")
    failed = [r.failure_line for r in results if r.rc != 0]
    assert not failed, f"{len(failed)} of 8 runs failed: {failed}"
    assert [r.summary["orders"] for r in results] == [len(truth)] * 8
    assert a["faults"], "no fault was injected"
    assert_equals_truth(read_output(work / "out").orders, truth, "shared output")
    assert_partitions_hold_truth(work / "out", truth)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        registered = {k.split(":")[0] for k in instance.get_dynamic_partitions("symbols")}
    assert registered == {o["symbol"] for o in truth}


@pytest.mark.slow
def test_eight_concurrent_extractions_share_one_rate_budget(eight):
    _, _, _, _, a, _ = eight
    assert max(a["max_per_s"].values()) <= 10, a
    assert a["our_429"] == 0, f"{a['our_429']} 429s not injected by the simulator: the shared budget was overrun"


@batch()
def fresh_home(tmp_path_factory):
    spec = AccountSpec(name="freshhome", seed=8, orders=60, symbols=2, now_ms=NOW_MS)
    sim = start_simulator(spec, latency=None)
    work = tmp_path_factory.mktemp("fresh_home")
    home = work / "home"
    go = work / "go"
    try:
        # Every run does its imports first, then all start together (as two runs a cron fires at once would).
        runs = [start_extract(sim, work / f"p{i}", work / f"out{i}", home=home, TMPDIR=str(work),
                              launcher=["-c", SYNCHRONIZED_CLI, str(work / f"ready{i}"), str(go)]) for i in range(4)]
        for i, run in enumerate(runs):
            wait_until(lambda i=i: (work / f"ready{i}").exists(), run, poll_s=0.01)
        go.touch()
        results = [run.wait() for run in runs]
        truth = sim.truth(spec.name)
    finally:
        sim.stop()
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            usable = f"{len(instance.get_runs())} runs recorded"
    except Exception as exc:  # noqa: BLE001 - the finding itself
        usable = f"UNUSABLE: {type(exc).__name__}: {str(exc)[:200]}"
    return work, results, truth, usable


@pytest.mark.slow
def test_extractions_started_together_in_a_fresh_dagster_home_all_work(fresh_home):
    """Extractions launched at the same moment in a new folder (cron and a user, two CI jobs...) race to
    create the SQLite instance under .dagster_home: the losers die on Dagster's schema set-up, and the
    instance can be left unusable for every later run."""
    work, results, truth, usable = fresh_home
    failures = [r.stderr.strip().splitlines()[-1][:300] for r in results if r.rc != 0]
    print(f"\n[concurrency] fresh home, 4 runs: {len(failures)} failed {failures}; instance afterwards: {usable}")
    assert not failures, f"{len(failures)} of 4 runs failed setting up the fresh instance: {failures}"
    assert not usable.startswith("UNUSABLE"), usable
    for i in range(4):
        assert_equals_truth(read_output(work / f"out{i}").orders, truth, f"run {i}")


def test_a_run_never_publishes_a_history_missing_a_scan_file_another_run_removed(tmp_path, monkeypatch):
    """Run A's partition steps read the scan manifest, then each symbol's staged file. If run B's scan
    commits in between, B deletes A's staged files (scan_account removes the previous scan), and A reads
    "no orders" for those symbols: A must fail, or publish the whole history, never a history with holes."""
    sim = start_simulator(latency=None)
    c = sim.credentials(SPEC.name)
    res = {
        "bitget": BitgetResource(api_key=c["api_key"], api_secret=c["api_secret"], api_passphrase=c["passphrase"],
                                 base_url=sim.base_url),
        "rate_limiter": RateLimiterResource(backend="memory"),
        "storage": StorageResource(location=str(tmp_path)),
    }
    truth = sim.truth(SPEC.name)
    original = extraction.read_scan_rows
    other_run, once = [], threading.Lock()

    def read_while_another_run_commits(storage, manifest, key):
        with once:  # B's whole scan lands between A's manifest read and A's first staged-file read
            if not other_run:
                client = res["bitget"].get_client(res["rate_limiter"].get_limiter())
                other_run.append(extraction.scan_account(client, storage, res["bitget"].product_types,
                                                         scan_id="run-b"))
        return original(storage, manifest, key)

    try:
        with dg.instance_for_test() as instance:
            assert dg.materialize([order_scan], resources=res, instance=instance).success
            keys = list(json.loads((tmp_path / "scan" / "manifest.json").read_text())["symbols"])
            instance.add_dynamic_partitions("symbols", keys)
            monkeypatch.setattr(extraction, "read_scan_rows", read_while_another_run_commits)
            run_a = dg.materialize([order_scan, symbol_orders, sorted_orders],
                                   selection=[symbol_orders, sorted_orders], resources=res, instance=instance,
                                   tags=partition_range_tags(keys), raise_on_error=False)
    finally:
        sim.stop()
    assert other_run, "the concurrent scan never ran: the test proves nothing"
    if run_a.success:
        published = json.loads((tmp_path / "orders.json").read_bytes())["orders"]
        missing = len({o["orderId"] for o in truth} - {o["orderId"] for o in published})
        assert not missing, (f"run A succeeded and published {len(published)} of {len(truth)} orders: "
                             f"{missing} lost with the staged files run B removed")
