"""The peer baseline: the straightforward script a user would write with ccxt instead of this project.

ccxt's bitget exchange, its own rate limiter on (`enableRateLimit`: bitget's `rateLimit` is 50 ms and
orders-history costs 2, so one request per 100 ms), the implicit API method for
GET /api/v2/mix/order/orders-history, paging `endId` -> `idLessThan` sequentially per product type over
the 90-day window (or the server's shorter windows), then the open orders; de-duplicate by orderId
(latest uTime wins), sort by (cTime, orderId) and write one JSON file.

`--concurrent` is the harder peer: ccxt's async client (`ccxt.async_support`) reading the three product
types at once, each still paged sequentially, all under the one exchange object's rate limiter.

    python -m benchmarks.baseline_ccxt --base-url http://127.0.0.1:PORT --output orders.json [--span-days 7]
                                       [--concurrent]

Credentials come from BITGET_API_KEY / BITGET_API_SECRET / BITGET_API_PASSPHRASE. Prints one JSON line.
"""

import argparse
import asyncio
import json
import os
import sys
import time

DAY_MS = 86_400_000
PRODUCT_TYPES = ("USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES")


def make_exchange(base_url: str, asynchronous: bool = False):
    if asynchronous:
        import ccxt.async_support as ccxt
    else:
        import ccxt

    exchange = ccxt.bitget({
        "apiKey": os.environ["BITGET_API_KEY"],
        "secret": os.environ["BITGET_API_SECRET"],
        "password": os.environ["BITGET_API_PASSPHRASE"],
        "enableRateLimit": True,
    })
    # Every API family of ccxt's bitget points at the simulator (only "mix" and "common" are used).
    exchange.urls["api"] = dict.fromkeys(exchange.urls["api"], base_url.rstrip("/"))
    return exchange


def call(exchange, method, params: dict, stats: dict) -> dict:
    """One request; a rate-limit or network error is retried after a pause, as a careful script would."""
    import ccxt

    for attempt in range(8):
        stats["requests"] += 1
        try:
            return method(params)
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as exc:
            stats["rate_limited"] += 1
            last = exc
        except ccxt.NetworkError as exc:
            stats["errors"] += 1
            last = exc
        time.sleep(min(2**attempt * 0.25, 4))
    raise last


def walk(exchange, method, base: dict, stats: dict) -> list[dict]:
    """Every page of one window: newest first, `endId` back as `idLessThan`, until a short page."""
    orders, cursor = [], None
    while True:
        params = dict(base, limit="100")
        if cursor:
            params["idLessThan"] = cursor
        data = call(exchange, method, params, stats).get("data") or {}
        page = data.get("entrustedList") or []
        orders += page
        stats["pages"] += 1
        if len(page) < 100 or not data.get("endId"):
            return orders
        cursor = data["endId"]


def extract(base_url: str, span_days: float, product_types: tuple[str, ...]) -> tuple[list[dict], dict]:
    exchange = make_exchange(base_url)
    stats = {"requests": 0, "pages": 0, "rate_limited": 0, "errors": 0}
    now = int(exchange.public_common_get_v2_public_time()["data"]["serverTime"])
    history = exchange.private_mix_get_v2_mix_order_orders_history
    pending = exchange.private_mix_get_v2_mix_order_orders_pending
    span = int(span_days * DAY_MS)
    orders: list[dict] = []
    for pt in product_types:
        upper, lower = now, now - 90 * DAY_MS
        while upper >= lower:  # adjacent inclusive windows, newest first
            start = max(lower, upper - span)
            orders += walk(exchange, history, {"productType": pt, "startTime": str(start), "endTime": str(upper)},
                           stats)
            upper = start - 1
        orders += walk(exchange, pending, {"productType": pt}, stats)
    return orders, stats


async def call_async(exchange, method, params: dict, stats: dict) -> dict:
    """`call` for the async client."""
    import ccxt

    for attempt in range(8):
        stats["requests"] += 1
        try:
            return await method(params)
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as exc:
            stats["rate_limited"] += 1
            last = exc
        except ccxt.NetworkError as exc:
            stats["errors"] += 1
            last = exc
        await asyncio.sleep(min(2**attempt * 0.25, 4))
    raise last


async def walk_async(exchange, method, base: dict, stats: dict) -> list[dict]:
    orders, cursor = [], None
    while True:
        params = dict(base, limit="100")
        if cursor:
            params["idLessThan"] = cursor
        data = (await call_async(exchange, method, params, stats)).get("data") or {}
        page = data.get("entrustedList") or []
        orders += page
        stats["pages"] += 1
        if len(page) < 100 or not data.get("endId"):
            return orders
        cursor = data["endId"]


async def extract_concurrent(base_url: str, span_days: float,
                             product_types: tuple[str, ...]) -> tuple[list[dict], dict]:
    """The product types read concurrently (one task each), under the exchange's own rate limiter."""
    exchange = make_exchange(base_url, asynchronous=True)
    stats = {"requests": 0, "pages": 0, "rate_limited": 0, "errors": 0}
    try:
        now = int((await exchange.public_common_get_v2_public_time())["data"]["serverTime"])
        history = exchange.private_mix_get_v2_mix_order_orders_history
        pending = exchange.private_mix_get_v2_mix_order_orders_pending
        span = int(span_days * DAY_MS)

        async def one(pt: str) -> list[dict]:
            orders, upper, lower = [], now, now - 90 * DAY_MS
            while upper >= lower:
                start = max(lower, upper - span)
                orders += await walk_async(exchange, history, {"productType": pt, "startTime": str(start),
                                                               "endTime": str(upper)}, stats)
                upper = start - 1
            return orders + await walk_async(exchange, pending, {"productType": pt}, stats)

        parts = await asyncio.gather(*(one(pt) for pt in product_types))
    finally:
        await exchange.close()
    return [o for part in parts for o in part], stats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--span-days", type=float, default=90, help="the server's maximum window")
    parser.add_argument("--product-types", default=",".join(PRODUCT_TYPES))
    parser.add_argument("--concurrent", action="store_true",
                        help="ccxt's async client, the product types read concurrently")
    args = parser.parse_args(argv)
    if not args.base_url.startswith("http://127.0.0.1:"):
        parser.error("the baseline only talks to a local simulator")
    began = time.time()
    types = tuple(args.product_types.split(","))
    if args.concurrent:
        raw, stats = asyncio.run(extract_concurrent(args.base_url, args.span_days, types))
    else:
        raw, stats = extract(args.base_url, args.span_days, types)
    latest: dict[str, dict] = {}
    for order in raw:
        kept = latest.get(order["orderId"])
        if kept is None or int(order["uTime"]) >= int(kept["uTime"]):
            latest[order["orderId"]] = order
    orders = sorted(latest.values(), key=lambda o: (int(o["cTime"]), int(o["orderId"])))
    with open(args.output, "w") as f:
        json.dump(orders, f)
    summary = {"orders": len(orders), "symbols": len({o["symbol"] for o in orders}), **stats,
               "mode": "async, product types concurrently" if args.concurrent else "sequential",
               "elapsed_s": round(time.time() - began, 2), "output": args.output}
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
