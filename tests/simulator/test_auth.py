import base64
import hashlib
import hmac
import time

import pytest
import requests

from .helpers import HISTORY, signed_get


def own_signed_get(base_url, key, secret, passphrase, path, query):
    """Minimal signer from the shared notes, section 1: base64(HMAC_SHA256(secret, ts+METHOD+path?query+body))."""
    ts = str(int(time.time() * 1000))
    prehash = ts + "GET" + path + "?" + query
    sign = base64.b64encode(hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()).decode()
    headers = {"ACCESS-KEY": key, "ACCESS-SIGN": sign, "ACCESS-TIMESTAMP": ts, "ACCESS-PASSPHRASE": passphrase,
               "Content-Type": "application/json"}
    return requests.get(f"{base_url}{path}?{query}", headers=headers, timeout=10)


@pytest.mark.parametrize("query", [
    "symbol=BTCUSDT&productType=USDT-FUTURES&limit=3&startTime=1789000000000",  # insertion order
    "limit=3&productType=USDT-FUTURES&startTime=1789000000000&symbol=BTCUSDT",  # sorted by key
])
def test_independent_signer_is_accepted_in_any_parameter_order(sim, creds, query):
    r = own_signed_get(sim.base_url, creds["api_key"], creds["api_secret"], creds["passphrase"], HISTORY, query)
    body = r.json()
    assert r.status_code == 200 and body["code"] == "00000", r.text
    assert body["msg"] == "success" and isinstance(body["requestTime"], int)
    assert [o["symbol"] for o in body["data"]["entrustedList"]] == ["BTCUSDT"] * 3


def test_signature_of_other_order_than_sent_is_rejected(sim, creds):
    ts = str(int(time.time() * 1000))
    signed = "productType=USDT-FUTURES&limit=3"
    sent = "limit=3&productType=USDT-FUTURES"
    sign = base64.b64encode(hmac.new(creds["api_secret"].encode(), (ts + "GET" + HISTORY + "?" + signed).encode(),
                                     hashlib.sha256).digest()).decode()
    headers = {"ACCESS-KEY": creds["api_key"], "ACCESS-SIGN": sign, "ACCESS-TIMESTAMP": ts,
               "ACCESS-PASSPHRASE": creds["passphrase"]}
    r = requests.get(f"{sim.base_url}{HISTORY}?{sent}", headers=headers, timeout=10)
    assert r.status_code == 400 and r.json()["code"] == "40009"


def _code(r):
    body = r.json()
    assert body["data"] is None and isinstance(body["requestTime"], int)
    return r.status_code, body["code"]


@pytest.mark.parametrize(("overrides", "code"), [
    ({"ACCESS-KEY": None}, "40001"),
    ({"ACCESS-SIGN": None}, "40003"),
    ({"ACCESS-TIMESTAMP": None}, "40005"),
    ({"ACCESS-TIMESTAMP": "abc"}, "40005"),
    ({"ACCESS-PASSPHRASE": None}, "40011"),
    ({"ACCESS-KEY": "sim-nobody-000000000000"}, "40037"),
    ({"ACCESS-PASSPHRASE": "wrong"}, "40012"),
])
def test_header_errors(sim, creds, overrides, code):
    r = signed_get(sim.base_url, creds, HISTORY, "productType=USDT-FUTURES", **overrides)
    assert _code(r) == (400, code)


def test_wrong_secret_is_40009(sim, creds):
    r = signed_get(sim.base_url, {**creds, "api_secret": "0" * 32}, HISTORY, "productType=USDT-FUTURES")
    assert _code(r) == (400, "40009")


def test_stale_timestamp_is_40008(sim, creds):
    old = int(time.time() * 1000) - 31_000
    ts = str(old)
    q = "productType=USDT-FUTURES"
    sign = base64.b64encode(hmac.new(creds["api_secret"].encode(), (ts + "GET" + HISTORY + "?" + q).encode(),
                                     hashlib.sha256).digest()).decode()
    r = signed_get(sim.base_url, creds, HISTORY, q, **{"ACCESS-TIMESTAMP": ts, "ACCESS-SIGN": sign})
    assert _code(r) == (400, "40008")


def test_timestamp_checked_against_wall_clock_not_data_clock(sim, creds):
    # The data clock sits at the spec's now_ms (not the wall clock); signing with the wall clock works.
    r = signed_get(sim.base_url, creds, HISTORY, "productType=USDT-FUTURES&limit=1")
    assert r.json()["code"] == "00000"
    server_time = int(requests.get(sim.base_url + "/api/v2/public/time", timeout=10).json()["data"]["serverTime"])
    assert server_time == sim.now_ms()


def test_log_never_holds_secrets(sim, creds):
    signed_get(sim.base_url, creds, HISTORY, "productType=USDT-FUTURES&limit=1")
    text = repr(sim.request_log())
    for secret in (creds["api_key"], creds["api_secret"], creds["passphrase"], "ACCESS-SIGN"):
        assert secret not in text
