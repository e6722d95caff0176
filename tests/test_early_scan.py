"""The CLI's account scan started before Dagster: same rows, same bookkeeping, stoppable, checked against its run."""

import subprocess
import sys

import pytest

from bitget_assets import early_scan
from bitget_assets import history_store as hs
from bitget_assets.early_scan import ScanCancelled, ScanPlan, start_early_scan
from bitget_assets.extraction import read_scan_rows
from bitget_assets.settings import load_settings
from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig
from bitget_assets.storage import LocalStorage
from tests.simhelpers import HISTORY, NOW_MS, PENDING, requests_to, sim_env, truth_ids


def _start(sim, tmp_path, monkeypatch, **env):
    environ = sim_env(sim, BITGET_OUTPUT=str(tmp_path / "out"), BITGET_RATE_LIMIT_BACKEND="memory",
                      BITGET_REQUESTS_PER_SECOND="50",
                      BITGET_RATE_LIMITED_PATIENCE_S="5", **env)
    for name, value in environ.items():
        if name.startswith("BITGET_API"):
            monkeypatch.setenv(name, value)  # the credentials are read from the variables the settings name
    settings = load_settings(environ)
    account = settings.accounts[0]
    return account, start_early_scan(settings, account, demo_file="", progress_address="", s3_endpoint_url=None)


def test_module_does_not_import_dagster():
    """The point of the early scan: nothing it needs waits for Dagster's import."""
    code = "import sys, bitget_assets.early_scan; assert 'dagster' not in sys.modules, 'dagster imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_scan_is_complete_and_committed_and_taken_over_once(tmp_path, monkeypatch):
    spec = AccountSpec(name="demo", seed=11, orders=900, symbols=5, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=None, latency=None, frozen=True)) as sim:
        account, early = _start(sim, tmp_path, monkeypatch, BITGET_STREAMS="orders")
        assert early_scan.take(early.scan_id) is early
        assert early_scan.take(early.scan_id) is None  # a second run cannot take the same scan
        plan = ScanPlan(tuple(account.product_types), ("orders",), early.plan.concurrency, sim.base_url)
        scanned = early.result(plan)
        store = LocalStorage(tmp_path / "out")
        manifest = hs.read_json(store, hs.SCAN_MANIFEST)
        assert manifest["scan_id"] == early.scan_id == scanned.summary.manifest["scan_id"]
        staged = set()
        for key in manifest["symbols"]:
            staged |= set(read_scan_rows(store, manifest, key, "orders")["orderId"].to_list())
        assert staged == truth_ids(sim)
        # every order page it read is in its figures; nothing was read twice
        assert scanned.summary.requests == len(requests_to(sim, HISTORY)) + len(requests_to(sim, PENDING))


def test_a_plan_other_than_the_runs_is_refused(tmp_path, monkeypatch):
    spec = AccountSpec(name="demo", seed=12, orders=200, symbols=2, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=None, latency=None, frozen=True)) as sim:
        account, early = _start(sim, tmp_path, monkeypatch, BITGET_STREAMS="orders")
        early_scan.take(early.scan_id)
        other = ScanPlan(tuple(account.product_types), ("orders", "fills"), early.plan.concurrency, sim.base_url)
        with pytest.raises(ValueError, match="early scan read"):
            early.result(other)


def test_cancel_stops_at_the_next_page_and_commits_nothing(tmp_path, monkeypatch):
    spec = AccountSpec(name="demo", seed=13, orders=4000, symbols=4, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=None, latency=(0.05, 0.08), frozen=True)) as sim:
        account, early = _start(sim, tmp_path, monkeypatch, BITGET_STREAMS="orders")
        early_scan.take(early.scan_id)
        while not requests_to(sim, HISTORY):
            early._thread.join(0.02)
        early.cancel()
        assert not early._thread.is_alive()
        read = len(requests_to(sim, HISTORY))
        assert read < 40  # 4,000 orders need 40 pages and more
        with pytest.raises(ScanCancelled):
            early.result(early.plan)
        assert hs.read_json(LocalStorage(tmp_path / "out"), hs.SCAN_MANIFEST) is None


def test_an_error_reaches_the_step_that_takes_the_scan(tmp_path, monkeypatch):
    spec = AccountSpec(name="demo", seed=14, orders=200, symbols=2, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=None, latency=None, frozen=True)) as sim:
        wrong = sim.credentials("demo")["api_secret"][::-1]  # the account's own secret, reversed
        account, early = _start(sim, tmp_path, monkeypatch, BITGET_STREAMS="orders", BITGET_API_SECRET=wrong)
        with pytest.raises(Exception, match="40009"):
            early.result(early.plan)


def test_credentials_gone_from_the_environment_leave_the_scan_to_the_step(tmp_path, monkeypatch):
    """The settings name the variables; when one is empty by the time the scan starts, nothing is requested and
    the run's step reports the missing credential as it would without an early scan."""
    spec = AccountSpec(name="demo", seed=15, orders=100, symbols=1, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=None, latency=None, frozen=True)) as sim:
        environ = sim_env(sim, BITGET_OUTPUT=str(tmp_path / "out"))
        settings = load_settings(environ)
        monkeypatch.setenv("BITGET_API_KEY", environ["BITGET_API_KEY"])
        monkeypatch.setenv("BITGET_API_SECRET", environ["BITGET_API_SECRET"])
        monkeypatch.setenv("BITGET_API_PASSPHRASE", "")
        started = start_early_scan(settings, settings.accounts[0], demo_file="", progress_address="",
                                   s3_endpoint_url=None)
        assert started is None
        assert requests_to(sim) == []
