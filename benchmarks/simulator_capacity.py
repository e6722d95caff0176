"""Is the simulator ever the bottleneck? Signed-page throughput with limits off, and a 1M-order account.

    python -m benchmarks.simulator_capacity [--seconds 3] [--big-orders 1000000]

Prints and writes benchmarks/results/simulator-capacity-<date>.json.
"""

import argparse
import json
import multiprocessing as mp
import platform
import resource
import threading
import time
from datetime import date
from pathlib import Path

import requests

from bitget_assets.bitget import BitgetClient, Credentials
from bitget_assets.paging import fetch_page
from bitget_assets.ratelimit import ThreadLimiter
from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig
from bitget_assets.streams import ORDERS_HISTORY

NOW_MS = 1_790_000_000_000
RESULTS = Path(__file__).parent / "results"


def _client_process(base_url: str, creds: dict, threads: int, seconds: float, queue) -> None:
    counts = [0] * threads
    stop_at = time.time() + seconds

    def work(i: int) -> None:
        client = BitgetClient(Credentials(creds["api_key"], creds["api_secret"], creds["passphrase"], base_url),
                              ThreadLimiter(1e9), ip_requests_per_second=None)  # measures the server, unbudgeted
        while time.time() < stop_at:
            fetch_page(client, ORDERS_HISTORY, "USDT-FUTURES")
            counts[i] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put(sum(counts))


def throughput(seconds: float) -> float:
    """Signed 100-order pages per second from 2 client processes × 2 threads (separate GILs from the server)."""
    spec = AccountSpec(name="demo", seed=7, orders=17_000, symbols=40, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=None, public_rate_limit=None, frozen=True)) as sim:
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        procs = [ctx.Process(target=_client_process, args=(sim.base_url, sim.credentials("demo"), 2, seconds, q))
                 for _ in range(2)]
        for p in procs:
            p.start()
        total = sum(q.get(timeout=120) for _ in procs)
        for p in procs:
            p.join()
    return total / seconds


def big_account(orders: int) -> dict:
    began = time.time()
    spec = AccountSpec(name="big", seed=1, orders=orders, symbols=300, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=None, frozen=True)) as sim:
        ready = time.time() - began
        requests.get(sim.base_url + "/api/v2/public/time", timeout=10).raise_for_status()
    return {"orders": orders, "ready_s": round(ready, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--big-orders", type=int, default=1_000_000)
    args = parser.parse_args()
    result = {
        "scenario": "simulator-capacity",
        "pages_per_second": round(throughput(args.seconds)),
        "big": big_account(args.big_orders),
        "machine": f"{platform.machine()} {mp.cpu_count()} cores",
        "date": date.today().isoformat(),
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"simulator-capacity-{result['date']}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
