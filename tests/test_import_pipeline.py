"""History from before the first run, through the pipeline: an account with 14 months of orders; the website's
export of months 1-13 imported with `bitget-orders import`, the API read for the last 90 days. orders.json then
holds every order ever created, each once, the API's row winning where both have it; importing the same file
again or an overlapping second export changes nothing; a malformed file is refused whole and the published
output stays byte for byte as it was."""

import json
import os
import subprocess
import sys

import pytest

from bitget_assets.simulator import Simulator, SimulatorConfig, generate_account
from bitget_assets.simulator.export import month_range_ms, write_exports
from tests.test_imports import CANCELLED, DAY_MS, NOW, SPEC, TZ, _months_1_to_13

pytestmark = pytest.mark.slow


def cli(tmp_path, env, *args):
    proc = subprocess.run([sys.executable, "-m", "bitget_assets.cli", *args, "--quiet",
                           "--output", str(tmp_path / "out")], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    return proc


def orders_of(tmp_path) -> list[dict]:
    return json.loads((tmp_path / "out" / "orders.json").read_bytes())["orders"]


@pytest.mark.parametrize("include_cancelled", [True, False], ids=["with-cancelled", "without-cancelled"])
def test_export_plus_api_is_every_order_once_through_the_pipeline(tmp_path, include_cancelled):
    account = generate_account(SPEC)
    every = {o["orderId"]: o for o in map(json.loads, account.blobs)}
    cut = NOW - 90 * DAY_MS
    lost = set() if include_cancelled else {i for i, o in every.items()
                                           if o["status"] in CANCELLED and int(o["cTime"]) < cut}
    lo, hi = month_range_ms(*_months_1_to_13(account), TZ)
    first = write_exports(account, tmp_path / "exports-a", tz=TZ, start_ms=lo, end_ms=hi,
                          include_cancelled=include_cancelled)
    lo2, _ = month_range_ms("2026-03", _months_1_to_13(account)[1], TZ)
    second = write_exports(account, tmp_path / "exports-b", tz=TZ, start_ms=lo2, end_ms=hi,
                           include_cancelled=include_cancelled, created_ms=NOW + 3_600_000)
    with Simulator([SPEC], SimulatorConfig(rate_limit=10, latency=None, frozen=True)) as sim:
        c = sim.credentials(SPEC.name)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BITGET_", "DAGSTER_"))} | {
            "BITGET_API_KEY": c["api_key"], "BITGET_API_SECRET": c["api_secret"],
            "BITGET_API_PASSPHRASE": c["passphrase"], "BITGET_BASE_URL": sim.base_url,
            "DAGSTER_HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path)}
        api = {o["orderId"]: o for o in sim.truth(SPEC.name)}

        done = cli(tmp_path, env, "import", "--tz", TZ, *map(str, first.values()))
        assert done.returncode == 0, done.stderr[-3000:]
        merged = orders_of(tmp_path)
        ids = [o["orderId"] for o in merged]
        assert len(ids) == len(set(ids)) == len(every) - len(lost)  # every order ever created, each once
        assert set(ids) == set(every) - lost
        assert [int(o["cTime"]) for o in merged] == sorted(int(o["cTime"]) for o in merged)
        by_id = {o["orderId"]: o for o in merged}
        # The API's rows win where both have the order, exactly as the API sent them.
        for oid, row in api.items():
            assert {k: v for k, v in by_id[oid].items() if k != "source"} == row and by_id[oid]["source"] == "api"
        exported = {o["source"] for o in merged if o["orderId"] not in api}
        assert exported == {f"export:{p.name}" for p in first.values() if p.stat().st_size > 200}
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        assert summary["orders"] == len(ids) and "failed_checks" not in summary, summary

        # The same files again, then an overlapping second export: nothing changes.
        for files in (first, second):
            again = cli(tmp_path, env, "import", "--tz", TZ, *map(str, files.values()))
            assert again.returncode == 0, again.stderr[-3000:]
            assert orders_of(tmp_path) == merged
        before = (tmp_path / "out" / "orders.json").read_bytes()

        # A malformed file: refused whole, naming it and the line; nothing published changes.
        bad = tmp_path / "Export futures order history-broken.csv"
        text = next(iter(first.values())).read_text(encoding="utf-8-sig").splitlines()
        cells = text[2].split(",")
        cells[0] = "not-a-date"
        text[2] = ",".join(cells)
        bad.write_text("\n".join(text), encoding="utf-8")
        refused = cli(tmp_path, env, "import", "--tz", TZ, str(bad))
        assert refused.returncode == 1
        assert bad.name in refused.stderr and "line 3" in refused.stderr, refused.stderr[-2000:]
        assert (tmp_path / "out" / "orders.json").read_bytes() == before
        assert not (tmp_path / "out" / "imports" / bad.name).exists()


def test_an_import_without_a_time_zone_is_refused_saying_where_to_find_it(tmp_path):
    account = generate_account(SPEC)
    files = write_exports(account, tmp_path / "exports", tz=TZ)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BITGET_", "DAGSTER_"))} | {
        "DAGSTER_HOME": str(tmp_path / "home")}
    refused = cli(tmp_path, env, "import", *map(str, files.values()))
    assert refused.returncode == 1
    assert "time zone" in refused.stderr.lower() and "settings" in refused.stderr.lower(), refused.stderr
    assert not (tmp_path / "out").exists()
