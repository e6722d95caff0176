"""The benchmark harness end to end on its tiny CI scenario: it runs, measures and judges (no timing asserts)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.truth import expected

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = ("scenario", "orders", "symbols", "requests", "minimal_requests", "rate_limited", "max_per_second",
            "elapsed_s", "floor_s", "peak_rss_mb", "cpu_s", "machine", "date", "elapsed_over_floor",
            "requests_over_minimal", "targets", "phases")


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

    truth = expected(QUICK.spec())
    assert result["orders"] == truth.orders == result["expected_orders"]
    assert result["complete"] is True
    assert result["minimal_requests"] == truth.minimal_requests
    assert result["requests"] >= result["minimal_requests"]
    assert result["rate_limited"] == 0
    assert 0 < result["max_per_second"] <= 10
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
    assert wide.floor_s == wide.minimal_requests / 10
