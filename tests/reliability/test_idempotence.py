"""Idempotence: the same account extracted twice gives the same bytes; a refresh with nothing new adds nothing.

Both runs come from conftest: `reference` (a full run into a fresh folder), `matrix["second_full_run"]`
(another full run into another fresh folder, started from scratch) and `matrix["idle_refresh"]` (the
reference folder refreshed while nothing changed on the exchange).
"""

import dagster as dg
import pytest

from tests.reliability.helpers import PRODUCT_TYPES, assert_equals_truth, order_entries


@pytest.mark.slow
def test_two_full_runs_give_byte_identical_outputs(matrix, reference):
    second = matrix["second_full_run"]
    assert second.result.rc == 0, second.result.stderr[-4000:]
    assert second.output.parquet == reference.output.parquet
    assert second.output.orders == reference.output.orders
    assert_equals_truth(second.output.orders, reference.truth)


def symbol_orders_metadata(home) -> list[dict]:
    """Per-partition metadata of symbol_orders in the latest extract_job run of a DAGSTER_HOME."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_runs(filters=dg.RunsFilter(job_name="extract_job"), limit=1)[0]
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
    print(f"\n[idempotence] idle refresh: {refresh.audit} | summary {refresh.result.summary}")
    assert refresh.output.parquet == reference.output.parquet
    assert refresh.output.orders == reference.output.orders
    assert refresh.result.summary["orders"] == len(reference.truth)

    partitions = symbol_orders_metadata(reference.home)
    assert {p["partition"].split(":")[0] for p in partitions} == {o["symbol"] for o in reference.truth}
    added = {p["partition"]: p["new_orders"] for p in partitions if p["new_orders"]}
    assert not added, f"a refresh with nothing new added rows: {added}"
    assert all(p["requests"] == 0 for p in partitions), "partitions were read directly despite a fresh scan"
    # An incremental read (from the high-water marks, with a 1-day overlap), far from a full read.
    full = len(order_entries(reference.log))
    assert refresh.audit["requests"] <= max(2 * PRODUCT_TYPES + 2, full // 3), (refresh.audit, full)
