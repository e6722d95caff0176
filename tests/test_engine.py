"""The one paging engine against the simulator: every dataset's ids equal the simulator's ground truth."""

import pytest

from bitget_assets import extraction
from bitget_assets import history_store as hs
from bitget_assets.paging import SpanMemory
from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig
from bitget_assets.storage import LocalStorage
from bitget_assets.streams import FILL_HISTORY, FILLS
from tests.simhelpers import DAY_MS, NOW_MS, client_for, requests_to

ALL = ["USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES"]
DATASETS = ("orders", "plan_orders", "fills")
KEY = {"orders": "orderId", "plan_orders": "orderId", "fills": "tradeId"}


def truth_by_key(sim, ds, product_type_of) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for row in sim.truth("demo", dataset=ds):
        out.setdefault(f"{row['symbol']}:{product_type_of[row['symbol']]}", set()).add(row[KEY[ds]])
    return out


@pytest.mark.parametrize("fills_span_days", [90, 7], ids=["fills-90d", "fills-refused-fill-history"])
def test_scan_of_every_dataset_stages_exactly_the_truth(tmp_path, fills_span_days):
    spec = AccountSpec(name="demo", seed=4, orders=1500, symbols=8, now_ms=NOW_MS)
    cfg = SimulatorConfig(rate_limit=None, latency=None, frozen=True, fills_span_days=fills_span_days)
    with Simulator([spec], cfg) as sim:
        store, client = LocalStorage(tmp_path), client_for(sim)
        summary = extraction.scan_account(client, store, ALL, scan_id="s1", streams=DATASETS)
        product_type_of = {s.name: s.product_type for s in sim.accounts["demo"].symbols}
        truth = {ds: truth_by_key(sim, ds, product_type_of) for ds in DATASETS}
        fills_log = requests_to(sim, FILLS.path)
        fill_history_log = requests_to(sim, FILL_HISTORY.path)
    manifest = summary.manifest
    for ds in DATASETS:
        assert truth[ds], f"the simulator generated no {ds}: the test proves nothing"
        staged = manifest["datasets"][ds]["symbols"]
        assert set(staged) == set(truth[ds]), ds
        for key, want in truth[ds].items():
            rows = extraction.read_scan_rows(store, manifest, key, ds)
            got = rows[KEY[ds]].to_list()
            assert len(got) == len(set(got)) == staged[key], (ds, key)
            assert set(got) == want, (ds, key)
    # Discovery: the manifest's symbols are the union over datasets.
    assert set(manifest["symbols"]) == set().union(*(set(t) for t in truth.values()))
    if fills_span_days == 90:
        assert fills_log and not fill_history_log  # the whole window from `fills`, one span per product type
        first_pages = [r for r in fills_log if "idLessThan" not in r["params"]]
        assert min(int(r["params"]["startTime"]) for r in first_pages) == NOW_MS - 90 * DAY_MS
    else:
        assert 1 <= sum(r["code"] == "40705" for r in fills_log) <= 4, "fills refused more than once per worker"
        assert len(fills_log) == sum(r["code"] == "40705" for r in fills_log)  # nothing else asked of `fills`
        assert fill_history_log and all(int(r["params"]["endTime"]) - int(r["params"]["startTime"]) <= 7 * DAY_MS
                                        for r in fill_history_log)
    # Coverage: every history stream read [now - 90 days, now] of every product type.
    cover = manifest["datasets"]["plan_orders"]["coverage"]
    assert set(cover) == {"plan_history:normal_plan", "plan_history:track_plan", "plan_history:profit_loss"}
    assert all(v == {pt: [[NOW_MS - 90 * DAY_MS, NOW_MS]] for pt in ALL} for v in cover.values())


def test_direct_symbol_read_of_every_dataset_over_one_client(tmp_path):
    spec = AccountSpec(name="demo", seed=6, orders=1200, symbols=4, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=None, latency=None, frozen=True, fills_span_days=7)) as sim:
        store, client = LocalStorage(tmp_path), client_for(sim)
        product_type_of = {s.name: s.product_type for s in sim.accounts["demo"].symbols}
        truth = {ds: truth_by_key(sim, ds, product_type_of) for ds in DATASETS}
        keys = sorted(set().union(*(set(t) for t in truth.values())))
        for key in keys:
            states = {ds: hs.read_partition_state(store, key, ds) for ds in DATASETS}
            read = extraction.fetch_symbol(client, key, states, datasets=DATASETS)
            for ds in DATASETS:
                extraction.update_partition(store, key, read.frames[ds], read_at_ms=read.read_at_ms, scan_id=None,
                                            dataset=ds, coverage=read.coverage.get(ds))
        assert SpanMemory.of(client).span(FILL_HISTORY) == 7 * DAY_MS
        refused = [r for r in requests_to(sim, FILLS.path) if r["code"] == "40705"]
        assert len(refused) == len(requests_to(sim, FILLS.path)) == 1  # learnt once for every later symbol
    for ds in DATASETS:
        for key in keys:
            got = hs.read_partition(store, key, ds)[KEY[ds]].to_list()
            assert len(got) == len(set(got)) and set(got) == truth[ds].get(key, set()), (ds, key)
        state = hs.read_partition_state(store, keys[0], ds)
        assert all(iv == [[NOW_MS - 90 * DAY_MS, NOW_MS]] for iv in state["coverage"].values()), (ds, state)

