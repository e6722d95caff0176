"""Several Bitget accounts in one deployment: own names, outputs and budgets; one account's trouble stays its own."""

import json
import os
import subprocess
import sys

import dagster as dg
import polars as pl
import pytest

from bitget_assets.accounts import Account
from bitget_assets.settings import SettingsError, load_settings
from bitget_assets.simulator import AccountSpec, SimulatorConfig
from tests.simhelpers import HISTORY, NOW_MS, PENDING
from tests.simprocess import SimulatorProcess

TWO = {"BITGET_ACCOUNTS": "alpha,beta"} | {
    f"BITGET_{name}_API_{field}": f"{name.lower()}-{field.lower()}"
    for name in ("ALPHA", "BETA") for field in ("KEY", "SECRET", "PASSPHRASE")
}


def names(environ: dict) -> list[str]:
    return [a.name for a in load_settings(environ).accounts]


def test_accounts_are_listed_by_name_and_bad_lists_are_refused():
    assert load_settings({}).accounts == (Account(),)
    assert names(TWO | {"BITGET_ACCOUNTS": " alpha, beta "}) == ["alpha", "beta"]
    for bad in ("Alpha", "alpha,alpha", "9x", "a-b"):
        with pytest.raises(SettingsError, match="BITGET_ACCOUNTS"):
            load_settings({"BITGET_ACCOUNTS": bad})


def test_each_account_has_its_own_names_and_output():
    alpha = load_settings(TWO).account("alpha")
    assert alpha.asset_key("sorted_orders") == dg.AssetKey(["alpha", "sorted_orders"])
    assert (alpha.partitions_name, alpha.bitget_key, alpha.credential_vars) == (
        "alpha__symbols", "alpha__bitget", ("BITGET_ALPHA_API_KEY", "BITGET_ALPHA_API_SECRET",
                                            "BITGET_ALPHA_API_PASSPHRASE"))
    assert Account().asset_key("sorted_orders") == dg.AssetKey("sorted_orders")
    assert alpha.output == "data/alpha"
    assert load_settings(TWO | {"BITGET_OUTPUT": "s3://bucket/hist/"}).account("alpha").output == "s3://bucket/hist/alpha"
    assert load_settings(TWO | {"BITGET_OUTPUT": "x", "BITGET_ALPHA_OUTPUT": "/srv/alpha"}).account(
        "alpha").output == "/srv/alpha"
    assert load_settings({"BITGET_OUTPUT": "s3://bucket/hist"}).account("").output == "s3://bucket/hist"
    # A setting of the deployment applies to every account unless the account has its own.
    settings = load_settings(TWO | {"BITGET_PRODUCT_TYPES": "USDT-FUTURES",
                                    "BITGET_BETA_PRODUCT_TYPES": "COIN-FUTURES"})
    assert (settings.account("alpha").product_types, settings.account("beta").product_types) == (
        ("USDT-FUTURES",), ("COIN-FUTURES",))


def test_bad_settings_are_refused_naming_the_variable():
    for env, variable in (({"BITGET_PRODUCT_TYPES": "USDT-FUTURES,SPOT"}, "BITGET_PRODUCT_TYPES"),
                          ({"BITGET_STREAMS": "orders,funding"}, "BITGET_STREAMS"),
                          ({"BITGET_EXECUTOR": "threads"}, "BITGET_EXECUTOR"),
                          ({"BITGET_RATE_LIMIT_BACKEND": "sqlite"}, "BITGET_RATE_LIMIT_BACKEND"),
                          ({"BITGET_REQUESTS_PER_SECOND": "fast"}, "BITGET_REQUESTS_PER_SECOND"),
                          ({"BITGET_API_KEY": "k"}, "BITGET_API_SECRET")):
        with pytest.raises(SettingsError, match=variable):
            load_settings(env)


def test_streams_always_include_orders_in_a_fixed_order():
    assert load_settings({}).account("").streams == ("orders", "plan_orders")
    assert load_settings({"BITGET_STREAMS": "fills"}).account("").streams == ("orders", "fills")
    assert load_settings({"BITGET_STREAMS": "fills,plan_orders"}).account("").streams == (
        "orders", "plan_orders", "fills")


def _load_definitions(env: dict) -> subprocess.CompletedProcess:
    code = ("from bitget_assets.definitions import defs; g = defs.resolve_asset_graph(); import json; print(json.dumps("
            "{'assets': sorted(k.to_user_string() for k in g.get_all_asset_keys()),"
            " 'checks': sorted(k.to_user_string() for k in g.asset_check_keys),"
            " 'jobs': sorted(j.name for j in defs.resolve_all_job_defs()),"
            " 'sensors': sorted(s.name for s in defs.sensors), 'schedules': sorted(s.name for s in defs.schedules)}))")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BITGET_", "DAGSTER_"))}
    return subprocess.run([sys.executable, "-c", code], env=clean | env, capture_output=True, text=True, timeout=120)


def test_definitions_hold_one_complete_pipeline_per_account():
    proc = _load_definitions(TWO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    d = json.loads(proc.stdout)
    names = ("imported_orders", "order_scan", "sorted_orders", "sorted_plan_orders", "symbol_orders",
             "symbol_plan_orders")
    assert d["assets"] == [f"{a}/{n}" for a in ("alpha", "beta") for n in names]
    assert len(d["checks"]) == 24 and "beta/symbol_orders:partitions_hold_only_their_symbol" in d["checks"]
    jobs = {f"{a}__{j}" for a in ("alpha", "beta") for j in ("scan_job", "update_symbols_job", "refresh_job")}
    assert jobs <= set(d["jobs"])
    assert d["sensors"] == ["alpha__new_symbols_sensor", "beta__new_symbols_sensor"]
    assert d["schedules"] == ["alpha__refresh_schedule", "beta__refresh_schedule"]
    for secret in ("alpha-secret", "beta-passphrase"):
        assert secret not in proc.stdout + proc.stderr


def test_an_account_without_credentials_is_named_when_the_code_location_loads():
    env = {k: v for k, v in TWO.items() if not k.startswith("BITGET_BETA_")}
    proc = _load_definitions(env)
    assert proc.returncode != 0
    assert "account 'beta'" in proc.stderr and "BITGET_BETA_API_KEY" in proc.stderr


@pytest.mark.slow
def test_two_accounts_extract_side_by_side_and_a_bad_key_stalls_only_its_own(tmp_path):
    """`bitget-orders extract` with three accounts on one exchange, one of them with a wrong secret: the good two
    each get exactly their own history in their own folder, each within its own budget; the bad one fails
    fast, naming the cause, and the command says which account failed."""
    specs = [AccountSpec(name=n, seed=s, orders=o, symbols=k, now_ms=NOW_MS)
             for n, s, o, k in (("alpha", 31, 2500, 8), ("beta", 32, 1800, 6), ("gamma", 33, 500, 3))]
    with SimulatorProcess(specs, SimulatorConfig(rate_limit=10, latency=(0.02, 0.06), frozen=True)) as sim:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BITGET_", "DAGSTER_"))}
        env |= {"BITGET_ACCOUNTS": "alpha,beta,gamma", "BITGET_BASE_URL": sim.base_url,
                "DAGSTER_HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path)}
        for name in ("alpha", "beta", "gamma"):
            c = sim.credentials(name)
            env |= {f"BITGET_{name.upper()}_API_KEY": c["api_key"],
                    f"BITGET_{name.upper()}_API_SECRET": c["api_secret"],
                    f"BITGET_{name.upper()}_API_PASSPHRASE": c["passphrase"]}
        env["BITGET_GAMMA_API_SECRET"] = "Zq9-gamma-wrong-secret"
        proc = subprocess.run([sys.executable, "-m", "bitget_assets.cli", "extract", "--output", str(tmp_path / "out")],
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        truths = {n: sim.truth(n) for n in ("alpha", "beta")}
        uids = {n: sim.credentials(n)["uid"] for n in ("alpha", "beta", "gamma")}
        log = sim.request_log()
        windows = {(n, e): sim.max_requests_per_window(account=n, endpoint=e, status=None)
                   for n in ("alpha", "beta") for e in (HISTORY, PENDING)}
    assert proc.returncode == 1, proc.stderr[-3000:]
    summaries = {s["account"]: s for s in map(json.loads, proc.stdout.strip().splitlines())}
    assert set(summaries) == {"alpha", "beta"}
    for name, truth in truths.items():
        assert summaries[name]["orders"] == len(truth) and summaries[name]["rate_limited"] == 0
        assert summaries[name]["output"] == str(tmp_path / "out" / name / "orders.json")
        ids = pl.read_parquet(tmp_path / "out" / name / "orders.parquet")["orderId"].to_list()
        assert ids == [o["orderId"] for o in truth], name
    assert max(windows.values()) <= 10, windows
    assert "account gamma" in proc.stderr and "40009" in proc.stderr and "wrong-secret" not in proc.stderr
    # A refused signature is logged without an account (the server cannot trust the key): only gamma's are refused.
    refused = [r for r in log if r["code"] == "40009"]
    assert {r["account"] for r in log if r["status"] == 200} <= {uids["alpha"], uids["beta"]} | {None}
    assert 1 <= len(refused) <= 2, refused  # refused credentials cost one probe, not a retry storm
    assert not (tmp_path / "out" / "gamma" / "orders.json").exists()
