"""The benchmark harness end to end on its tiny CI scenario: it runs, measures and judges (no timing asserts)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.truth import expected

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = ("scenario", "orders", "symbols", "requests", "minimal_requests", "rate_limited", "max_per_second",
            "elapsed_s", "floor_s", "peak_rss_mb", "peak_pss_mb", "cpu_s", "machine", "date", "elapsed_over_floor",
            "requests_over_minimal", "targets", "phases", "per_stream", "start_to_first_order_request_s",
            "dagster_floor", "tail_over_dagster_floor", "minimal_with_probes")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_quick_benchmark_writes_a_complete_result(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--no-baseline", "--results-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=170,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = list(tmp_path.glob("quick-*.json"))
    assert len(files) == 1
    result = json.loads(files[0].read_text())
    missing = [k for k in REQUIRED if k not in result]
    assert not missing, missing

    from benchmarks.run import QUICK

    truth = expected(QUICK.spec(), datasets=QUICK.streams)
    assert QUICK.streams == ("orders", "plan_orders")  # the pipeline's default streams
    assert result["orders"] == truth.orders == result["expected_orders"]
    assert result["plan_orders"] == len(truth.plan_ids) == result["expected_plan_orders"]
    assert result["complete"] is True and result["verify_plan_orders"]["complete"] is True
    assert result["minimal_requests"] == truth.minimal_requests
    assert result["minimal_with_probes"] == truth.minimal_requests + 3
    assert result["requests"] >= result["minimal_with_probes"]
    # The server's log, per endpoint: every list endpoint of both datasets and the three probes, nothing else.
    by_endpoint = result["per_stream"]["by_endpoint"]
    assert set(by_endpoint) == set(truth.minimal_by_endpoint)
    assert all(e["requests"] >= e["minimal"] for e in by_endpoint.values()), by_endpoint
    assert result["per_stream"]["fixed_probes"]["requests"] == 3
    assert result["per_stream"]["unexpected_endpoints"] == {}
    assert result["per_stream"]["by_dataset"]["plan_orders"]["requests"] >= 18  # 3 planTypes x 3 types x 2
    assert result["rate_limited"] == 0
    assert 0 < result["max_per_second"] <= 10
    assert 0 < result["start_to_first_order_request_s"] < result["elapsed_s"]
    floor = result["dagster_floor"]
    assert floor["partitions"] == truth.symbols and floor["assets"] == 2
    assert floor["materializations"] == 2 * truth.symbols and floor["floor_s"] > 0
    assert result["tail_over_dagster_floor"] == round(result["phases"]["after_last_request_s"] / floor["floor_s"], 2)
    assert result["peak_rss_mb"] > 0 and result["cpu_s"] > 0 and result["machine"]["nproc"] >= 1
    assert "quick" in proc.stdout  # the printed table


def test_minimal_requests_follow_the_cost_model():
    from benchmarks.run import SCENARIOS

    seed = SCENARIOS["seed-target"]
    wide = expected(seed.spec())
    narrow = expected(seed.spec(), max_span_days=7)
    assert wide.orders == narrow.orders == 17_000 and wide.symbols == 40
    assert wide.windows_per_product_type == 1 and narrow.windows_per_product_type == 13
    for pt, m in wide.minimal_by_product_type.items():
        assert m["history_pages"] == m["finished"] // 100 + 1, pt
        assert m["pending_pages"] == m["open"] // 100 + 1, pt
    # Each extra window can only cost pages, never save them.
    assert narrow.minimal_requests > wide.minimal_requests
    # Every endpoint is its own budget: the floor is the busiest one's, here orders-history's.
    history = sum(m["history_pages"] for m in wide.minimal_by_product_type.values())
    assert wide.floor_s == history / 10 and wide.binding_endpoint.endswith("/orders-history")
    assert wide.fixed_probes == 3 and wide.minimal_with_probes == wide.minimal_requests + 3


def test_plan_order_requests_follow_the_simulators_plans():
    """Plan orders: 3 planTypes x 3 product types, history pages per window and pending pages, counted on the
    simulator's own plan book; the ids are the simulator's ground truth."""
    from benchmarks.run import QUICK
    from bitget_assets.simulator.accounts import DAY_MS, generate_account
    from bitget_assets.simulator.store import OrderStore

    truth = expected(QUICK.spec(), datasets=("orders", "plan_orders"))
    plans = truth.by_dataset["plan_orders"]
    per = plans["by_product_type"]
    assert len(per) == 9
    store = OrderStore(generate_account(QUICK.spec()))
    book, now = store.plans, QUICK.spec().now_ms
    for key, m in per.items():
        pt, group = key.split(":")
        live = len(book.by_pt.get((True, pt, group), []))
        finished = [p for p in book.by_pt.get((False, pt, group), []) if book.ctimes[p] >= now - 90 * DAY_MS]
        assert (m["open"], m["finished"]) == (live, len(finished)), key
        assert m["history_pages"] == m["finished"] // 100 + 1 and m["pending_pages"] == m["open"] // 100 + 1, key
    simulator_truth = store.truth_blobs(now, 90 * DAY_MS, "plan_orders")
    assert truth.plan_ids == {int(json.loads(b)["orderId"]) for b in simulator_truth}
    history, pending = (sum(m[k] for m in per.values()) for k in ("history_pages", "pending_pages"))
    assert plans["by_endpoint"] == {"/api/v2/mix/order/orders-plan-history": history,
                                    "/api/v2/mix/order/orders-plan-pending": pending}
    assert truth.minimal_requests == truth.by_dataset["orders"]["minimal_requests"] + plans["minimal_requests"]
