"""Upgrades keep working: an output folder and a Dagster instance written by the release of 2026-12-01 (commit
74ee2e3; tests/fixtures/make_release_fixture.py made them) open, refresh incrementally and stay complete."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig
from tests.simhelpers import HISTORY, NOW_MS, PENDING

FIXTURE = Path(__file__).parent / "fixtures" / "release-2026-12-01.tar.gz"
SPEC = AccountSpec(name="demo", seed=51, orders=800, symbols=6, now_ms=NOW_MS)  # what the fixture extracted


@pytest.mark.slow
def test_a_folder_and_instance_of_the_previous_release_refresh_and_stay_complete(tmp_path):
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data")
    home, out = tmp_path / "home", tmp_path / "out"
    old_ids = set(pl.read_parquet(out / "orders.parquet")["orderId"].to_list())
    (tmp_path / "before.json").write_bytes((out / "orders.json").read_bytes())
    with dg.DagsterInstance.from_config(str(home)) as instance:
        old_runs = {r.job_name for r in instance.get_runs()}
        old_keys = instance.get_dynamic_partitions("symbols")
    assert old_runs == {"scan_job", "extract_job"} and len(old_keys) == 6 and len(old_ids) == 800

    with Simulator([SPEC], SimulatorConfig(rate_limit=10, latency=None, frozen=True)) as sim:
        assert {o["orderId"] for o in sim.truth("demo")} == old_ids  # the same account
        sim.close_open_orders("demo")
        added = sim.add_orders("demo", generate=30, open=2) + sim.add_orders(
            "demo", orders=[{"symbol": "AFTERUSDT", "productType": "USDT-FUTURES"}] * 2)
        c = sim.credentials("demo")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BITGET_", "DAGSTER_"))} | {
            "BITGET_API_KEY": c["api_key"], "BITGET_API_SECRET": c["api_secret"],
            "BITGET_API_PASSPHRASE": c["passphrase"], "BITGET_BASE_URL": sim.base_url,
            "DAGSTER_HOME": str(home), "TMPDIR": str(tmp_path)}
        mark = len(sim.request_log())
        proc = subprocess.run([sys.executable, "-m", "bitget_assets.cli", "extract", "--quiet", "--output", str(out)],
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        truth = sim.truth("demo")
        order_requests = [r for r in sim.request_log()[mark:] if r["endpoint"] in (HISTORY, PENDING)]

    doc = json.loads((out / "orders.json").read_bytes())
    assert [o["orderId"] for o in doc["orders"]] == [o["orderId"] for o in truth]
    assert len(truth) == 800 + len(added)
    # Since that release the simulator labels a few TP/SL orders' orderSource `pos_*_market` (same uTime): an
    # incremental refresh rightly does not re-read old orders, so that one field is compared with what was read.
    relabelled = {"orderSource"}
    old = {o["orderId"]: o for o in json.loads((tmp_path / "before.json").read_bytes())["orders"]}
    for got, want in zip(doc["orders"], truth, strict=True):
        if got["orderId"] in old and old[got["orderId"]]["uTime"] == want["uTime"]:
            want = {**want, **{k: old[got["orderId"]][k] for k in relabelled}}
        assert got == want
    assert pl.read_parquet(out / "orders.parquet").to_dicts() == doc["orders"]
    # Incremental from the previous release's marks: one pending and a few history pages per product type, not
    # the full 90-day read; no symbol read one by one.
    assert len(order_requests) <= 12, [(r["endpoint"], r["params"]) for r in order_requests]
    assert not [r for r in order_requests if r["params"].get("symbol")]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        keys = instance.get_dynamic_partitions("symbols")
        jobs = [r.job_name for r in instance.get_runs()]
    assert keys[:6] == old_keys and keys[6:] == ["AFTERUSDT:USDT-FUTURES"]
    assert jobs.count("extract_job") == 1 and jobs.count("update_symbols_job") == 1  # old runs kept beside new
