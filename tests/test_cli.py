"""`bitget-orders extract` as a user runs it: the demo account end to end, and clear failures."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from bitget_assets.demo import DEMO_FLAGS, DEMO_NOW_MS
from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig, truth_for
from tests.simhelpers import HISTORY, NOW_MS, PENDING


def cli(tmp_path, *args, env_extra=None, timeout=300):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BITGET_", "DAGSTER_"))}
    env |= {"DAGSTER_HOME": str(tmp_path / "home"), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "bitget_assets.cli", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_demo_extract_matches_ground_truth(tmp_path):
    proc = cli(tmp_path, "extract", "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    spec = AccountSpec(name="demo", seed=DEMO_FLAGS["seed"], orders=DEMO_FLAGS["orders"],
                       symbols=DEMO_FLAGS["symbols"], now_ms=DEMO_NOW_MS)
    truth = truth_for(spec)
    assert summary["orders"] == len(truth) >= 17_000
    assert summary["symbols"] == len({o["symbol"] for o in truth}) >= 30
    assert summary["rate_limited"] == 0
    assert summary["output"] == str(tmp_path / "data" / "orders.json")
    doc = json.loads((tmp_path / "data" / "orders.json").read_bytes())
    assert [o["orderId"] for o in doc["orders"]] == [o["orderId"] for o in truth]
    assert "embedded demo exchange" in proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["extract", "--output", "s3://x"], "not a valid S3 location"),
        (["extract", "--output", "ftp://host/dir"], "not a valid output location"),
        (["extract", "--product-types", "SPOT"], "unknown product type"),
    ],
)
def test_bad_arguments_fail_before_any_request(tmp_path, args, message):
    proc = cli(tmp_path, *args, timeout=60)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not (tmp_path / "home").exists()  # nothing started, nothing written


def test_wrong_secret_fails_fast_naming_the_cause_without_leaking_it(tmp_path):
    spec = AccountSpec(name="demo", seed=4, orders=300, symbols=3, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=10, latency=None, frozen=True)) as sim:
        c = sim.credentials("demo")
        secret, passphrase = "Zq9-distinctive-wrong-secret-77", c["passphrase"]
        proc = cli(tmp_path, "extract", "--quiet", env_extra={
            "BITGET_API_KEY": c["api_key"], "BITGET_API_SECRET": secret,
            "BITGET_API_PASSPHRASE": passphrase, "BITGET_BASE_URL": sim.base_url})
        assert proc.returncode == 1
        assert "40009" in proc.stderr and "signature" in proc.stderr
        assert secret not in proc.stdout + proc.stderr and passphrase not in proc.stdout + proc.stderr
        signed = [r for r in sim.request_log() if r["endpoint"] == HISTORY]
        assert len(signed) <= 2  # no retry storm on a credentials error


def test_ctrl_c_says_nothing_is_lost_and_exits_130(tmp_path):
    """Ctrl-C mid-scan (SIGINT to the whole process group, as a terminal sends it): one clear message, no
    traceback from any of the command's processes, exit code 130; running again then completes the job."""
    spec = AccountSpec(name="demo", seed=6, orders=6000, symbols=12, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=10, latency=(0.02, 0.05), frozen=True)) as sim:
        c = sim.credentials("demo")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BITGET_", "DAGSTER_"))} | {
            "DAGSTER_HOME": str(tmp_path / "home"), "BITGET_API_KEY": c["api_key"],
            "BITGET_API_SECRET": c["api_secret"], "BITGET_API_PASSPHRASE": c["passphrase"],
            "BITGET_BASE_URL": sim.base_url}
        proc = subprocess.Popen([sys.executable, "-m", "bitget_assets.cli", "extract"], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        deadline = time.time() + 120
        while not [r for r in sim.request_log() if r["endpoint"] == HISTORY] and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # mid-scan: the account needs about 6 s of requests
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err[-3000:]
        assert "interrupted" in err and "run the same command again to resume" in err
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
        assert out == ""
        again = cli(tmp_path, "extract", "--quiet", env_extra={k: v for k, v in env.items() if k.startswith("BITGET_")})
        assert again.returncode == 0, again.stderr[-3000:]
        assert json.loads(again.stdout.strip().splitlines()[-1])["orders"] == len(sim.truth("demo"))


def test_progress_without_a_terminal_prints_plain_lines(tmp_path):
    """With stderr not a terminal (CI logs, `2> file`) the progress is whole lines, never `\r` repaints."""
    spec = AccountSpec(name="demo", seed=8, orders=3000, symbols=6, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=10, latency=(0.02, 0.05), frozen=True)) as sim:
        c = sim.credentials("demo")
        proc = cli(tmp_path, "extract", env_extra={
            "BITGET_API_KEY": c["api_key"], "BITGET_API_SECRET": c["api_secret"],
            "BITGET_API_PASSPHRASE": c["passphrase"], "BITGET_BASE_URL": sim.base_url})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "\r" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "orders read" in ln]
    assert lines and lines[-1].rstrip().endswith("symbols done 6/6"), proc.stderr
    # The rate counts from the start: a line that saw requests never says 0.0/s (the first line once did).
    for ln in lines:
        requests, rate = re.search(r"(\d+) requests \(\s*([\d.]+)/s\)", ln).groups()
        assert int(requests) == 0 or float(rate) > 0, ln


def test_the_scan_starts_before_dagster_and_its_run_records_it(tmp_path):
    """The account is read from before the scan run exists (Dagster's import and instance take seconds); the run
    takes that scan over: its tag and its materialization name the same scan, and nothing is read twice."""
    import dagster as dg

    from bitget_assets.early_scan import EARLY_SCAN_TAG

    spec = AccountSpec(name="demo", seed=9, orders=1500, symbols=5, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=10, latency=(0.02, 0.05), frozen=True)) as sim:
        c = sim.credentials("demo")
        proc = cli(tmp_path, "extract", "--quiet", "--streams", "orders", env_extra={
            "BITGET_API_KEY": c["api_key"], "BITGET_API_SECRET": c["api_secret"],
            "BITGET_API_PASSPHRASE": c["passphrase"], "BITGET_BASE_URL": sim.base_url})
        assert proc.returncode == 0, proc.stderr[-3000:]
        pages = [r for r in sim.request_log() if r["endpoint"] in (HISTORY, PENDING)]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        (scan_run,) = [r for r in instance.get_runs() if r.job_name == "scan_job"]
        created = instance.get_run_record_by_id(scan_run.run_id).create_timestamp.timestamp()
        materialization = instance.get_latest_materialization_event(dg.AssetKey("order_scan")).asset_materialization
    assert min(r["t"] for r in pages) < created
    assert materialization.metadata["scan_id"].value == scan_run.tags[EARLY_SCAN_TAG]
    assert materialization.metadata["started_before_dagster"].value is True
    assert summary["orders"] == len(sim.truth("demo")) and summary["requests"] == len(pages)


def test_truth_into_a_reader_that_stops_early_ends_quietly():
    """`bitget-sim truth ... | head -1`: no BrokenPipeError traceback."""
    shell = (f"{sys.executable} -m bitget_assets.simulator.cli truth --seed 3 --orders 20000 --symbols 5 "
             f"--now {NOW_MS} | head -1")
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, timeout=120)
    assert json.loads(proc.stdout)["orderId"]
    assert proc.stderr == "", proc.stderr


def test_a_library_log_record_goes_to_the_log_not_the_terminal(tmp_path):
    """A Ctrl-C that lands while SQLAlchemy closes a connection makes its pool log an error with a traceback, to
    no handler: it belongs in the children's log, not under the command's own "interrupted" line (seen on a clean
    clone). Our own warnings (a 429 pause, an account mid-upgrade) still reach the terminal."""
    code = (
        "import logging, sys\n"
        "from pathlib import Path\n"
        "from bitget_assets import cli\n"
        f"cli._children_off_the_terminal(Path({str(tmp_path / 'home')!r}))\n"
        "try:\n"
        "    raise KeyboardInterrupt\n"
        "except KeyboardInterrupt:\n"
        "    logging.getLogger('sqlalchemy.pool.impl.NullPool').error('Exception closing connection', exc_info=True)\n"
        "logging.getLogger('bitget_assets.client').warning('HTTP 429 on /x: pausing the request budget')\n"
        "print('bitget-orders: interrupted.', file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # Our own warnings are the user's, on the terminal; the library's traceback is not.
    assert proc.stderr == "HTTP 429 on /x: pausing the request budget\nbitget-orders: interrupted.\n", proc.stderr
    logged = (tmp_path / "home" / "logs" / "children.log").read_text()
    assert "Exception closing connection" in logged and "KeyboardInterrupt" in logged
