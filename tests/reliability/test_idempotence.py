"""Idempotence: the same account extracted twice gives the same bytes; a refresh with nothing new adds nothing.

Both runs come from conftest: `reference` (a full run into a fresh folder), `matrix["second_full_run"]`
(another full run into another fresh folder, started from scratch) and `matrix["idle_refresh"]` (the
reference folder refreshed while nothing changed on the exchange).
"""

import json
import re

import dagster as dg
import pytest

from tests.reliability.helpers import ORDER_ENDPOINTS, PRODUCT_TYPES, assert_equals_truth, order_entries

SERVER_TIME = "/api/v2/public/time"
# The only values of orders.json that may differ between runs: when it was written and how long the run took.
_RUN_HEADER = re.compile(rb'"(generated_at|elapsed_seconds)": ("[^"]*"|[0-9.eE+-]+)')


def masked_json(raw: bytes) -> bytes:
    """orders.json with the two run-specific header values blanked (in the header line only)."""
    head, sep, body = raw.partition(b"\n")
    masked, n = _RUN_HEADER.subn(rb'"\1": "*"', head)
    assert n == 2 and sep, f"orders.json header without generated_at and elapsed_seconds: {head[:200]!r}"
    return masked + sep + body


def test_masking_hides_only_the_run_header():
    body = b'"count": 1, "elapsed_seconds": %s, "orders": [\n{"a":"1"}\n]}\n'
    a = b'{"generated_at": "2026-01-01T00:00:00+00:00", ' + body % b"3.25"
    b = b'{"generated_at": "2026-02-02T10:00:00+00:00", ' + body % b"12.5"
    assert masked_json(a) == masked_json(b)
    assert masked_json(a) != masked_json(a.replace(b'"count": 1', b'"count": 2'))
    assert masked_json(a) != masked_json(a.replace(b'{"a":"1"}', b'{"a":"2"}'))


@pytest.mark.slow
def test_two_full_runs_give_byte_identical_outputs(matrix, reference):
    second = matrix["second_full_run"]
    assert second.result.rc == 0, second.result.stderr[-4000:]
    assert second.output.parquet == reference.output.parquet, "orders.parquet bytes differ between two full runs"
    assert masked_json(second.output.json_bytes) == masked_json(reference.output.json_bytes), (
        "orders.json bytes differ between two full runs (beyond generated_at and elapsed_seconds)")
    assert second.output.orders == reference.output.orders
    assert_equals_truth(second.output.orders, reference.truth)


def symbol_orders_metadata(home) -> list[dict]:
    """Per-partition metadata of symbol_orders in the latest update_symbols_job run of a DAGSTER_HOME."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_runs(filters=dg.RunsFilter(job_name="update_symbols_job"), limit=1)[0]
        out = []
        for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
            mat = record.asset_materialization
            if mat.asset_key.to_user_string() == "symbol_orders":
                out.append({"partition": mat.partition, **{k: v.value for k, v in mat.metadata.items()}})
        return out


@pytest.mark.slow
def test_refresh_with_nothing_new_emits_no_new_rows(matrix, reference):
    refresh = matrix["idle_refresh"]
    assert refresh.result.rc == 0, refresh.result.stderr[-4000:]
    order_requests = order_entries(refresh.log)
    time_requests = [e for e in refresh.log if e["endpoint"] == SERVER_TIME]
    others = sorted({e["endpoint"] for e in refresh.log} - {*ORDER_ENDPOINTS, SERVER_TIME})
    by_endpoint = {ep.rsplit("/", 1)[1]: sum(e["endpoint"] == ep for e in order_requests) for ep in ORDER_ENDPOINTS}
    print(f"\n[idempotence] idle refresh: {len(order_requests)} order-endpoint requests {by_endpoint}, "
          f"{len(time_requests)} server-time requests, other endpoints {others} | {refresh.audit} "
          f"| full run: {len(order_entries(reference.log))} order-endpoint requests | summary {refresh.result.summary}")
    assert refresh.output.parquet == reference.output.parquet
    assert masked_json(refresh.output.json_bytes) == masked_json(reference.output.json_bytes)
    assert refresh.output.orders == reference.output.orders
    assert refresh.result.summary["orders"] == len(reference.truth)

    partitions = symbol_orders_metadata(reference.home)
    assert {p["partition"].split(":")[0] for p in partitions} == {o["symbol"] for o in reference.truth}
    added = {p["partition"]: p["new_orders"] for p in partitions if p["new_orders"]}
    assert not added, f"a refresh with nothing new added rows: {added}"
    assert all(p["requests"] == 0 for p in partitions), "partitions were read directly despite a fresh scan"
    # As the README states: one history page and one pending page per product type, plus the server time.
    per_type = {(e["endpoint"], e["params"].get("productType")) for e in order_requests}
    # where the refresh's read started: the reference scan's marks, committed by the refresh's own scan
    marks = json.loads(reference.files["scan/manifest.json"])["marks"]
    assert len(order_requests) == 2 * PRODUCT_TYPES == len(per_type), "\n".join([
        f"{len(order_requests)} order-endpoint requests, the README states {2 * PRODUCT_TYPES}; marks {marks}:",
        *(f"{e['endpoint'].rsplit('/', 1)[1]} {e['params'].get('productType')} "
          f"startTime={e['params'].get('startTime')} idLessThan={e['params'].get('idLessThan')}"
          for e in order_requests)])
    assert len(time_requests) == 1, time_requests
    # Plan orders (on by default): one history and one pending page per plan type and product type; and the
    # account-mode probe (the v3 settings a classic account refuses, then its account info for the UID).
    plans = [e for e in refresh.log if "/orders-plan-" in e["endpoint"]]
    assert len(plans) == 2 * 3 * PRODUCT_TYPES, [(e["endpoint"], e["params"]) for e in plans]
    probes = [e["endpoint"] for e in refresh.log if e["endpoint"] in ("/api/v3/account/settings",
                                                                     "/api/v2/spot/account/info")]
    assert sorted(probes) == ["/api/v2/spot/account/info", "/api/v3/account/settings"], probes
    assert set(others) == {"/api/v2/mix/order/orders-plan-history", "/api/v2/mix/order/orders-plan-pending",
                           "/api/v2/spot/account/info", "/api/v3/account/settings"}, others
