"""The body of a process that hammers one limiter key: kept light, so spawned children import no Dagster."""

import time

from bitget_assets.ratelimit import RedisLimiter


def hammer(url, prefix, key, rate, ready, start, n, out):
    limiter = RedisLimiter(rate, url, prefix)
    limiter.client.ping()  # connected before the race starts
    ready.release()
    start.wait()
    sent = []
    for _ in range(n):
        limiter.acquire(key)
        sent.append(time.time())  # when the request would leave
    out.put(sent)
