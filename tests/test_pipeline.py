"""End to end through Dagster (multi-process steps) against the simulator: output == ground truth."""

import io
import json
import subprocess
import sys

import polars as pl
import pytest

from bitget_assets.simulator import AccountSpec, SimulatorConfig
from tests.simhelpers import HISTORY, NOW_MS, PENDING, sim_env
from tests.simprocess import SimulatorProcess

SPEC = AccountSpec(name="demo", seed=21, orders=2500, symbols=14, now_ms=NOW_MS)


def run_extract(sim, tmp_path, output, extra_env=None, *args):
    env = sim_env(sim, DAGSTER_HOME=str(tmp_path / "dagster_home"), **(extra_env or {}))
    proc = subprocess.run(
        [sys.executable, "-m", "bitget_assets.cli", "extract", "--output", output, "--quiet", *args],
        env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc


@pytest.fixture(scope="module")
def limited_sim():
    cfg = SimulatorConfig(rate_limit=10, latency=(0.02, 0.06), frozen=True)
    with SimulatorProcess([SPEC], cfg) as sim:
        yield sim


@pytest.mark.slow
def test_extract_equals_truth_locally_and_in_s3(limited_sim, tmp_path, s3_env):
    sim = limited_sim
    truth = sim.truth("demo")
    summary, _ = run_extract(sim, tmp_path, str(tmp_path / "out"))
    assert summary["orders"] == len(truth) == 2500
    assert summary["rate_limited"] == 0

    doc = json.loads((tmp_path / "out" / "orders.json").read_bytes())
    ids = [o["orderId"] for o in doc["orders"]]
    assert ids == [o["orderId"] for o in truth]  # same set, same (cTime, orderId) order
    assert doc["orders"] == truth  # every field as the API gave it, as strings
    assert doc["count"] == 2500

    parquet = pl.read_parquet(tmp_path / "out" / "orders.parquet")
    assert parquet.to_dicts() == doc["orders"]

    # Same extraction into S3: the objects hold the same orders, byte for byte in Parquet.
    s3_summary, _ = run_extract(
        sim, tmp_path, f"s3://{s3_env['bucket']}/acct", {"BITGET_S3_ENDPOINT_URL": s3_env["endpoint_url"],
                                                         "AWS_ACCESS_KEY_ID": "testing",
                                                         "AWS_SECRET_ACCESS_KEY": "testing",
                                                         "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert s3_summary["output"] == f"s3://{s3_env['bucket']}/acct/orders.json"
    client = s3_env["client"]
    s3_parquet = client.get_object(Bucket=s3_env["bucket"], Key="acct/orders.parquet")["Body"].read()
    assert s3_parquet == (tmp_path / "out" / "orders.parquet").read_bytes()
    s3_doc = json.loads(client.get_object(Bucket=s3_env["bucket"], Key="acct/orders.json")["Body"].read())
    assert s3_doc["orders"] == doc["orders"]
    assert pl.read_parquet(io.BytesIO(s3_parquet)).height == 2500

    # The server's own log over both runs: every arrival counts (status=None), a 429 included, since the
    # simulator answers 429 to what the client sent too fast and accepting only 200s would hide just that.
    assert_budget_kept(sim)


def assert_budget_kept(sim):
    """No 1-s window over 10 arrivals per account and order endpoint, and no 429 answered at all."""
    log = sim.request_log()
    windows = {}
    for name in sim.accounts:
        uid = sim.credentials(name)["uid"]
        for endpoint in (HISTORY, PENDING):
            requests = sum(1 for r in log if r["account"] == uid and r["endpoint"] == endpoint)
            assert requests, f"{name}: no request to {endpoint} logged: the window check would prove nothing"
            windows[name, endpoint] = sim.max_requests_per_window(account=uid, endpoint=endpoint, status=None)
    print(f"busiest 1-s window of arrivals per (account, endpoint): {windows}")
    assert max(windows.values()) <= 10, windows
    assert not [r for r in log if r["status"] == 429]
