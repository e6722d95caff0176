"""Concurrency: several extractions of one account at once, on one machine.

Eight `bitget-orders extract` processes against one account with faults on, sharing the output folder, the
Dagster instance and the file rate limiter (one TMPDIR: the limiter's default folder is the machine's temp
dir): every run succeeds with the whole history, no partition is lost, and the server answers no 429 beyond
the bursts it injected. Then the races the eight do not reliably hit: runs started at the same moment in a
fresh DAGSTER_HOME, another run's scan committing while a run is still reading its own staged scan, and a
staged scan that vanished under a run.
"""

import json
import threading

import dagster as dg
import pytest

from bitget_assets import extraction
from bitget_assets.bitget.account import detect_account_mode
from bitget_assets.jobs import partition_range_tags
from bitget_assets.resources import BitgetResource, ProgressResource, RateLimiterResource, StorageResource
from bitget_assets.simulator import AccountSpec, FaultConfig
from tests.dagster_assets import materializations, order_scan, sorted_orders, symbol_orders
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
    start_simulator_process,
    wait_until,
)

FAULTS = FaultConfig(error_5xx=0.03, burst_429=0.02, reset=0.02, truncated=0.02, error_200=0.02)


@batch(after=("matrix", "crashes", "s3world", "bad_credential_runs", "fresh_home"))
def eight(tmp_path_factory):
    """Eight extractions at once, after the other heavy batches: the machine is as quiet as this suite can make
    it. The simulator runs in its own process, as the exchange on its own machine (tests/simprocess.py)."""
    sim = start_simulator_process(faults=FAULTS, seed=3, latency=(0.02, 0.08))
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


def _run_while(tmp_path, monkeypatch, interfere):
    """Run A's partitions and sorted_orders, with `interfere(resources, storage, manifest)` called once between
    A's manifest read and its first staged-file read. Returns (A's result, ground truth, A's partition sources)."""
    sim = start_simulator(latency=None, rate_limit=None)  # about staged files, not the budget: read at full speed
    c = sim.credentials(SPEC.name)
    res = {
        "bitget": BitgetResource(api_key=c["api_key"], api_secret=c["api_secret"], api_passphrase=c["passphrase"],
                                 base_url=sim.base_url),
        "rate_limiter": RateLimiterResource(backend="memory", requests_per_second=1000),
        "progress": ProgressResource(),
        "storage": StorageResource(location=str(tmp_path)),
    }
    truth = sim.truth(SPEC.name)
    original = extraction.read_scan_rows
    done, once = [], threading.Lock()

    def read_after_interference(storage, manifest, key, dataset="orders"):
        with once:
            if not done:
                done.append(interfere(res, storage, manifest))
        return original(storage, manifest, key, dataset)

    try:
        with dg.instance_for_test() as instance:
            assert dg.materialize([order_scan], resources=res, instance=instance).success
            keys = list(json.loads((tmp_path / "scan" / "manifest.json").read_text())["symbols"])
            instance.add_dynamic_partitions("symbols", keys)
            monkeypatch.setattr(extraction, "read_scan_rows", read_after_interference)
            run_a = dg.materialize([order_scan, symbol_orders, sorted_orders],
                                   selection=[symbol_orders, sorted_orders], resources=res, instance=instance,
                                   tags=partition_range_tags(keys), raise_on_error=False)
            sources = {
                m.partition: m.metadata["source"].value
                for m in materializations(run_a, "symbol_orders")
            } if run_a.success else {}
    finally:
        sim.stop()
    assert done, "the interference never ran: the test proves nothing"
    return run_a, truth, sources, done[0]


def _published_ids(tmp_path) -> set[str]:
    return {o["orderId"] for o in json.loads((tmp_path / "orders.json").read_bytes())["orders"]}


def test_another_runs_scan_committing_mid_run_leaves_this_runs_scan_readable(tmp_path, monkeypatch):
    """Run A's partition steps read the manifest, then each symbol's staged file. Run B's scan commits in
    between, then C's (eight runs of one account do this constantly): they must not delete the files A is reading, so A
    takes in a scan for every symbol, makes no request of its own, and publishes the whole history."""

    def another_run_scans(res, storage, manifest):
        client = res["bitget"].get_client(res["rate_limiter"].get_limiter())
        detect_account_mode(client)  # as order_scan does: state is tied to the account's UID
        # B reads the API itself (as a run started before A's scan committed does), rather than reuse A's scan.
        monkeypatch.setattr(extraction, "resumable_scan", lambda *args: False)
        for other in ("run-b", "run-c"):
            extraction.scan_account(client, storage, res["bitget"].product_types, scan_id=other)
        return manifest["scan_id"]

    run_a, truth, sources, a_scan = _run_while(tmp_path, monkeypatch, another_run_scans)
    assert run_a.success
    assert _published_ids(tmp_path) == {o["orderId"] for o in truth}
    # Steps that read the manifest before C committed take A's scan in, later ones C's: none reads directly.
    assert f"account scan {a_scan[:8]}" in sources.values(), sources
    assert set(sources.values()) <= {f"account scan {a_scan[:8]}", "account scan run-c"}, sources
    assert json.loads((tmp_path / "scan" / "manifest.json").read_text())["scan_id"] == "run-c"
    assert (tmp_path / "scan" / a_scan).is_dir()


def test_a_run_whose_staged_scan_vanished_reads_those_symbols_directly(tmp_path, monkeypatch):
    """If the staged files are gone anyway (removed by hand, a bucket lifecycle rule, a step that waited longer
    than they are kept), the run must not publish a history with holes: it reads those symbols from the API."""

    def staged_files_vanish(res, storage, manifest):
        for key in storage.list(f"scan/{manifest['scan_id']}"):
            storage.delete(key)

    run_a, truth, sources, _ = _run_while(tmp_path, monkeypatch, staged_files_vanish)
    assert run_a.success
    assert _published_ids(tmp_path) == {o["orderId"] for o in truth}
    assert sources and set(sources.values()) == {"direct read of the symbol"}, sources
