"""Latency is an async sleep: the server keeps answering other requests while one waits.

Throughput itself is measured by `python -m benchmarks.simulator_capacity`, not asserted here.
"""

import asyncio
import time

import aiohttp

from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig

from .conftest import NOW


def test_latency_is_async_and_many_requests_run_concurrently():
    spec = AccountSpec(name="lat", seed=1, orders=50, symbols=3, now_ms=NOW)
    with Simulator([spec], SimulatorConfig(latency=(0.08, 0.2), public_rate_limit=None)) as sim:
        done: list[float] = []

        async def burst():
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=400)) as s:
                async def one():
                    async with s.get(sim.base_url + "/api/v2/public/time") as r:
                        done.append(time.time())
                        return r.status
                return await asyncio.gather(*(one() for _ in range(300)))

        statuses = asyncio.run(burst())
        assert statuses == [200] * 300
        log = sim.request_log()
        assert len(log) == 300 and [e["t"] for e in log] == sorted(e["t"] for e in log)
        # A server that slept in its handler would answer one request before taking the next; this one
        # had taken in most of them before the first answer came back.
        arrived_before_first_answer = sum(1 for e in log if e["t"] < min(done))
        assert arrived_before_first_answer >= 100
