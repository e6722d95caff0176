"""The scanner's workers serve every endpoint's budget at once (issue 14).

Each list endpoint is its own rate budget. Taken in plain queue order, the four workers once all waited on the
plan-order endpoints' budgets for their 18 first pages while orders-history, the budget whose pages decide how
long a scan takes, sat idle: 1.1-1.7 s of every default scan (docs/performance.md). Judged from the server's
request log, by order, not by time.
"""

from bitget_assets.scan import Scanner, Task
from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig
from bitget_assets.streams import RETENTION_MS, streams_of
from tests.simhelpers import NOW_MS, PagesInMemory, client_for

ALL = ["USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES"]
HISTORY = "/api/v2/mix/order/orders-history"


def longest_gap(paths: list[str], endpoint: str) -> int:
    """The most requests to other endpoints in a row between the first and last request to `endpoint`."""
    at = [i for i, p in enumerate(paths) if p == endpoint]
    return max(b - a - 1 for a, b in zip(at, at[1:], strict=False))


def test_orders_history_keeps_being_read_while_the_plan_endpoints_take_their_first_pages():
    spec = AccountSpec(name="demo", seed=5, orders=4000, symbols=6, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=10, latency=(0.04, 0.08), frozen=True)) as sim:
        client = client_for(sim, rate=9.5)  # every endpoint its own budget, as at Bitget
        tasks = [Task(s, pt, None if s.source == "pending" else (NOW_MS - RETENTION_MS, NOW_MS))
                 for ds in ("orders", "plan_orders") for s in streams_of(ds) for pt in ALL]
        Scanner(client, PagesInMemory(), concurrency=4).run(tasks)
        paths = [e["endpoint"] for e in sim.request_log() if "/order/" in e["endpoint"]]
    plan_first_pages = sum(1 for p in paths[:40] if "plan" in p)
    assert plan_first_pages >= 18 and paths.count(HISTORY) >= 30, "the account must need both kinds of page"
    # Fairly shared, orders-history has a worker whenever it has a page to read: between two of its requests
    # come a few of the other budgets' (each paced at 9.5/s); in queue order, all 18 plan first pages came.
    assert longest_gap(paths, HISTORY) <= 8, paths[:60]
