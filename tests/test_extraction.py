"""The extraction functions against the simulator: the account scan and a symbol's direct refresh."""

import polars as pl

from bitget_assets import history_store as hs
from bitget_assets.extraction import (
    STAGED_SCAN_KEEP_S,
    drop_stale_scans,
    fetch_symbol,
    read_scan_rows,
    scan_account,
    update_partition,
)
from bitget_assets.partitions import partition_key
from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig
from bitget_assets.storage import LocalStorage
from tests.simhelpers import DAY_MS, HISTORY, NOW_MS, client_for

ALL = ["USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES"]


def by_symbol(truth):
    out = {}
    for o in truth:
        out.setdefault(o["symbol"], {})[o["orderId"]] = (o["status"], o["uTime"])
    return out


def stored(store, key):
    df = hs.read_partition(store, key)
    return {r["orderId"]: (r["status"], r["uTime"]) for r in df.select("orderId", "status", "uTime").to_dicts()}


def test_scan_reads_each_order_once_and_stages_every_symbol(tmp_path):
    spec = AccountSpec(name="demo", seed=5, orders=4000, symbols=25, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=None, latency=(0.005, 0.02), frozen=True)) as sim:
        store = LocalStorage(tmp_path)
        summary = scan_account(client_for(sim), store, ALL, scan_id="scan-a", concurrency=4)
        truth = sim.truth("demo")
        history_requests = len([r for r in sim.request_log() if r["endpoint"] == HISTORY])
    per_type = {pt: sum(1 for o in truth if o["status"] not in ("live", "partially_filled")
                        and _type_of(o["symbol"], summary.manifest) == pt) for pt in ALL}
    minimal = sum(n // 100 + 1 for n in per_type.values())
    # Splitting chains between idle workers costs at most a few partial pages over the minimum.
    assert minimal <= history_requests <= minimal + 8, (history_requests, minimal, summary.manifest["splits"])
    expected = by_symbol(truth)
    assert summary.orders == len(truth)
    for key in summary.manifest["symbols"]:
        symbol = key.split(":")[0]
        rows = read_scan_rows(store, summary.manifest, key)
        assert set(rows["orderId"]) == set(expected[symbol]), key
    assert {k.split(":")[0] for k in summary.manifest["symbols"]} == set(expected)


def _type_of(symbol, manifest):
    return next(k.split(":")[1] for k in manifest["symbols"] if k.split(":")[0] == symbol)


def test_direct_symbol_refresh_catches_new_and_finished_orders_cheaply(tmp_path):
    spec = AccountSpec(name="demo", seed=9, orders=3000, symbols=6, now_ms=NOW_MS, open_orders=20)
    with Simulator([spec], SimulatorConfig(rate_limit=None, latency=None, frozen=True)) as sim:
        store = LocalStorage(tmp_path)
        client = client_for(sim)
        truth = sim.truth("demo")
        symbol = max(by_symbol(truth).items(), key=lambda kv: len(kv[1]))[0]
        pt = "USDT-FUTURES"
        key = partition_key(symbol, pt)

        rows, now_ms = fetch_symbol(client, key, {})
        update_partition(store, key, rows, read_at_ms=now_ms, scan_id=None)
        assert stored(store, key) == by_symbol(truth)[symbol]

        sim.advance(2 * DAY_MS)
        sim.add_orders("demo", orders=[{"symbol": symbol} for _ in range(5)])
        closed = sim.close_open_orders("demo")
        assert closed, "the account had no open orders to finish"
        before = client.stats.requests
        rows, now_ms = fetch_symbol(client, key, hs.read_partition_state(store, key))
        result = update_partition(store, key, rows, read_at_ms=now_ms, scan_id=None)
        truth2 = by_symbol(sim.truth("demo"))[symbol]
        aged_out = {k: v for k, v in by_symbol(truth)[symbol].items() if k not in truth2}
        assert aged_out, "two days should push some orders past the 90-day retention"
        assert stored(store, key) == aged_out | truth2  # kept, plus every change the API shows now
        assert result["new_orders"] == 5
        state = hs.read_partition_state(store, key)
        last = hs.read_partition(store, key).row(-1, named=True)
        assert (state["newest_ctime"], state["newest_order_id"]) == (int(last["cTime"]), last["orderId"])
        assert state["newest_ctime"] == max(int(o["cTime"]) for o in sim.truth("demo") if o["symbol"] == symbol)
        now_stored = stored(store, key)
        for order in (o for o in closed if o["symbol"] == symbol):  # open last time, finished since
            assert now_stored[order["orderId"]] == (order["status"], order["uTime"])
        # The refresh reads back only to the oldest order that was open, not the whole 90 days.
        full = len(by_symbol(truth)[symbol]) // 100 + 1
        assert client.stats.requests - before < full


def test_partition_keeps_orders_the_api_has_forgotten(tmp_path):
    spec = AccountSpec(name="demo", seed=2, orders=500, symbols=1, now_ms=NOW_MS, open_orders=0)
    with Simulator([spec], SimulatorConfig(rate_limit=None, latency=None, frozen=True)) as sim:
        store, client = LocalStorage(tmp_path), client_for(sim)
        key = partition_key(sim.truth("demo")[0]["symbol"], "USDT-FUTURES")
        rows, now_ms = fetch_symbol(client, key, {})
        update_partition(store, key, rows, read_at_ms=now_ms, scan_id=None)
        first = set(stored(store, key))
        sim.advance(60 * DAY_MS)  # the older two thirds age out of the API's 90 days
        rows, now_ms = fetch_symbol(client, key, hs.read_partition_state(store, key))
        update_partition(store, key, rows, read_at_ms=now_ms, scan_id=None)
        assert len(sim.truth("demo")) < len(first)
        assert set(stored(store, key)) == first
        assert hs.read_partition(store, key)["orderId"].is_unique().all()
        assert isinstance(hs.read_partition(store, key), pl.DataFrame)


def test_superseded_scans_are_kept_while_a_partition_step_may_still_read_them(tmp_path):
    """Staged scans go by age, not by how many scans committed since: eight runs of one account can commit
    eight scans within seconds while a step of the first is still reading its own."""
    import os
    import time

    store = LocalStorage(tmp_path)
    for scan in ("old", "recent", "current", "staging"):
        store.write(f"scan/{scan}/USDT-FUTURES/BTCUSDT.parquet", b"x")
        store.write(f"scan/{scan}/USDT-FUTURES/ETHUSDT.parquet", b"x")
    store.write("scan/manifest.json", b"{}")
    long_ago = time.time() - STAGED_SCAN_KEEP_S - 60
    for f in (tmp_path / "scan/old").rglob("*.parquet"):
        os.utime(f, (long_ago, long_ago))
    os.utime(tmp_path / "scan/current/USDT-FUTURES/BTCUSDT.parquet", (long_ago, long_ago))
    # One old file does not make a scan stale while another of its files is recent.
    os.utime(tmp_path / "scan/recent/USDT-FUTURES/BTCUSDT.parquet", (long_ago, long_ago))
    drop_stale_scans(store, keep="current")
    assert {k.split("/")[1] for k in store.list("scan") if k.count("/") == 3} == {"recent", "current", "staging"}
    assert store.read("scan/manifest.json") == b"{}"
    assert len(store.list("scan/recent")) == 2
