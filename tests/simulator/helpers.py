"""Test-side Bitget client bits, written from the shared API notes only (no project imports), so the
simulator is checked against an independent reading of the protocol."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import requests

HISTORY = "/api/v2/mix/order/orders-history"
PENDING = "/api/v2/mix/order/orders-pending"
TYPES = ("USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES")


def signature(secret: str, ts: str, method: str, path: str, query: str = "", body: str = "") -> str:
    prehash = ts + method + path + ("?" + query if query else "") + body
    return base64.b64encode(hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()).decode()


def signed_get(base_url: str, creds: dict, path: str, query: str = "", session=None, timeout: float = 30,
               **overrides) -> requests.Response:
    """GET `path?query` signed exactly as sent; `overrides` replace/drop headers (value None drops)."""
    ts = str(int(time.time() * 1000))
    headers = {
        "ACCESS-KEY": creds["api_key"],
        "ACCESS-SIGN": signature(creds["api_secret"], ts, "GET", path, query),
        "ACCESS-TIMESTAMP": ts,
        "ACCESS-PASSPHRASE": creds["passphrase"],
        "locale": "en-US",
    }
    for k, v in overrides.items():
        k = k.replace("_", "-")
        if v is None:
            headers.pop(k, None)
        else:
            headers[k] = v
    url = base_url + path + ("?" + query if query else "")
    return (session or requests).get(url, headers=headers, timeout=timeout)


def page_all(base_url: str, creds: dict, path: str, params: str, session=None, raw: list | None = None) -> list[dict]:
    """Walk idLessThan/endId until a short page; returns the orders in the order received (and appends
    each raw response body to `raw` if given)."""
    out, id_lt = [], None
    while True:
        query = params + (f"&idLessThan={id_lt}" if id_lt else "")
        r = signed_get(base_url, creds, path, query, session=session)
        if raw is not None:
            raw.append(r.content)
        body = r.json()
        assert r.status_code == 200 and body["code"] == "00000", r.text
        items = body["data"]["entrustedList"] or []
        out += items
        if len(items) < 100:
            return out
        assert body["data"]["endId"] == items[-1]["orderId"]
        id_lt = body["data"]["endId"]


def hammer(base_url: str, creds: dict, n: int, start_at: float, until: float | None = None) -> list[tuple[int, str]]:
    """Fire n signed history requests as fast as possible (run in a spawned process); with `until`, keep
    firing until that wall time instead, so the load lasts long enough to see the limit refill."""
    s = requests.Session()
    while time.time() < start_at:
        time.sleep(0.001)
    out = []
    while (time.time() < until) if until is not None else len(out) < n:
        r = signed_get(base_url, creds, HISTORY, "productType=USDT-FUTURES&limit=5", session=s)
        out.append((r.status_code, r.text))
    return out
