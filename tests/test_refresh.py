"""Keep it fresh, keep it forever: incremental refreshes driven by the simulator's clock.

Day 0 extract; +60 days with new orders, a new symbol and open orders that finish; refresh; a refresh with
nothing new; +60 days more; refresh. The result holds every order ever created in those 120 days, more than
the API itself can return at the end, each in its latest state.
"""

import json

import pytest

from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig
from tests.simhelpers import DAY_MS, HISTORY, NOW_MS, PENDING
from tests.test_pipeline import run_extract

TYPES = 3


def latest(*snapshots):
    out = {}
    for snap in snapshots:
        for o in snap:
            if o["orderId"] not in out or int(o["uTime"]) >= int(out[o["orderId"]]["uTime"]):
                out[o["orderId"]] = o
    return out


def order_requests(sim, since):
    return [r for r in sim.request_log(since=since) if r["endpoint"] in (HISTORY, PENDING)]


@pytest.mark.slow
def test_refreshes_keep_every_order_ever_created(tmp_path):
    spec = AccountSpec(name="demo", seed=17, orders=2000, symbols=10, now_ms=NOW_MS, open_orders=15)
    with Simulator([spec], SimulatorConfig(rate_limit=10, latency=None, frozen=True)) as sim:
        out = str(tmp_path / "out")
        snapshots = [sim.truth("demo")]
        first, _ = run_extract(sim, tmp_path, out)
        assert first["orders"] == 2000

        symbols = sorted({o["symbol"] for o in snapshots[0]})
        for step in range(2):
            sim.advance(60 * DAY_MS)
            sim.close_open_orders("demo")  # open at the last read, finished since
            sim.add_orders("demo", generate=150, symbols=symbols[:4], open=4)
            sim.add_orders("demo", orders=[{"symbol": f"NEW{step}USDT", "productType": "USDT-FUTURES"}] * 3)
            snapshots.append(sim.truth("demo"))
            mark = sim.request_log()[-1]["t"]
            summary, _ = run_extract(sim, tmp_path, out)
            refresh_requests = len(order_requests(sim, mark))
            # An incremental read: far fewer requests than the ~20+ pages of a full read.
            assert refresh_requests <= 2 * TYPES + 4, refresh_requests

            mark = sim.request_log()[-1]["t"]
            idle, _ = run_extract(sim, tmp_path, out)
            idle_requests = order_requests(sim, mark)
            # Nothing new: one history page and one pending page per product type, plus the 1-day overlap.
            assert len(idle_requests) <= 2 * TYPES + 1, idle_requests
            assert idle["orders"] == summary["orders"]
            print(f"refresh {step + 1}: {refresh_requests} requests; idle refresh: {len(idle_requests)} requests")

        expected = latest(*snapshots)
        doc = json.loads((tmp_path / "out" / "orders.json").read_bytes())
        got = {o["orderId"]: o for o in doc["orders"]}
        assert set(got) == set(expected)
        assert {k: (o["status"], o["uTime"]) for k, o in got.items()} == {
            k: (o["status"], o["uTime"]) for k, o in expected.items()}
        assert len(got) > len(sim.truth("demo"))  # more than the API can still return
        assert any(o["symbol"] == "NEW1USDT" for o in doc["orders"])
