"""A test-side signer written from the API notes (no project imports): it can sign the decoded or the encoded
query, and sign with this machine's clock, the server's clock (/public/time) or any timestamp."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote, unquote, urlencode

import requests

TIME = "/api/v2/public/time"
V2_HISTORY = "/api/v2/mix/order/orders-history"
V3_HISTORY = "/api/v3/trade/history-orders"
V3_UNFILLED = "/api/v3/trade/unfilled-orders"
V3_SETTINGS = "/api/v3/account/settings"
V2_INFO = "/api/v2/spot/account/info"
DAY_MS = 86_400_000


def server_time(base_url: str) -> int:
    return int(requests.get(base_url + TIME, timeout=10).json()["data"]["serverTime"])


def clock_offset_ms(base_url: str) -> int:
    """serverTime minus the midpoint of send and receive (what a correcting client adds to its clock)."""
    t0 = time.time()
    st = server_time(base_url)
    return st - int((t0 + time.time()) / 2 * 1000)


def get(base_url: str, creds: dict, path: str, params=(), *, ts: int | None = None, offset_ms: int = 0,
        sign_encoded: bool = False, session=None) -> requests.Response:
    """GET with the query percent-encoded in the URL; signs its decoded form (or the encoded form when
    `sign_encoded`) with `ts`, else this machine's clock + `offset_ms`."""
    query = urlencode(list(params.items()) if isinstance(params, dict) else list(params), quote_via=quote)
    signed = query if sign_encoded else unquote(query)
    stamp = str(int(time.time() * 1000) + offset_ms if ts is None else ts)
    prehash = stamp + "GET" + path + ("?" + signed if signed else "")
    sign = base64.b64encode(hmac.new(creds["api_secret"].encode(), prehash.encode(), hashlib.sha256).digest())
    headers = {"ACCESS-KEY": creds["api_key"], "ACCESS-SIGN": sign.decode(), "ACCESS-TIMESTAMP": stamp,
               "ACCESS-PASSPHRASE": creds["passphrase"], "locale": "en-US"}
    url = base_url + path + ("?" + query if query else "")
    return (session or requests).get(url, headers=headers, timeout=30)


def code_of(r: requests.Response) -> tuple[int, str]:
    return r.status_code, r.json()["code"]
