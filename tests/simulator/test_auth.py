import base64
import hashlib
import hmac
import time

import pytest
import requests

from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig

from .conftest import NOW
from .helpers import HISTORY, PENDING, signed_get
from .signing import clock_offset_ms, code_of, get, server_time


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


def test_default_accepts_this_machines_clock_and_the_server_clock(sim, creds):
    # The session simulator's clock sits at the spec's now_ms, months off this machine's; by default both a
    # legacy client (own clock) and a client corrected by /public/time get in.
    assert abs(server_time(sim.base_url) - int(time.time() * 1000)) > 86_400_000
    assert server_time(sim.base_url) == sim.now_ms()
    q = {"productType": "USDT-FUTURES", "limit": "1"}
    assert code_of(get(sim.base_url, creds, HISTORY, q)) == (200, "00000")
    assert code_of(get(sim.base_url, creds, HISTORY, q, offset_ms=clock_offset_ms(sim.base_url))) == (200, "00000")


def test_log_never_holds_secrets(sim, creds):
    signed_get(sim.base_url, creds, HISTORY, "productType=USDT-FUTURES&limit=1")
    text = repr(sim.request_log())
    for secret in (creds["api_key"], creds["api_secret"], creds["passphrase"], "ACCESS-SIGN"):
        assert secret not in text


# -- signature over the percent-decoded query --------------------------------------------------------------
@pytest.fixture(scope="module")
def odd_symbols():
    """A simulator whose account traded a non-ASCII and a `$` symbol (added through the Python API)."""
    spec = AccountSpec(name="odd", seed=13, orders=50, symbols=2, now_ms=NOW)
    with Simulator([spec], SimulatorConfig(rate_limit=None, frozen=True)) as s:
        made = s.add_orders("odd", [{"symbol": "龙虾USDT", "productType": "USDT-FUTURES"},
                                    {"symbol": "$DEGENUSDT", "productType": "USDT-FUTURES"}])
        yield s, {o["symbol"]: o["orderId"] for o in made}


@pytest.mark.parametrize("symbol", ["龙虾USDT", "$DEGENUSDT"])
def test_decoded_query_signature_is_accepted_and_encoded_one_is_40009(odd_symbols, symbol):
    s, ids = odd_symbols
    creds = s.credentials("odd")
    q = {"productType": "USDT-FUTURES", "symbol": symbol}
    r = get(s.base_url, creds, HISTORY, q)
    assert "%" in r.request.url and code_of(r) == (200, "00000"), r.text
    assert [o["orderId"] for o in r.json()["data"]["entrustedList"]] == [ids[symbol]]
    assert code_of(get(s.base_url, creds, HISTORY, q, sign_encoded=True)) == (400, "40009")


def test_plain_ascii_query_is_the_same_signed_either_way(odd_symbols):
    s, _ = odd_symbols
    q = {"productType": "USDT-FUTURES", "limit": "2"}
    for encoded in (False, True):
        assert code_of(get(s.base_url, s.credentials("odd"), HISTORY, q, sign_encoded=encoded)) == (200, "00000")


# -- timestamps against the server's clock ------------------------------------------------------------------
def test_strict_clock_rejects_this_machines_clock_and_accepts_server_time():
    spec = AccountSpec(name="st", seed=2, orders=30, symbols=2, now_ms=NOW)
    with Simulator([spec], SimulatorConfig(accept_wall_clock=False)) as s:
        creds, q = s.credentials("st"), {"productType": "USDT-FUTURES"}
        assert code_of(get(s.base_url, creds, HISTORY, q)) == (400, "40008")
        assert code_of(get(s.base_url, creds, HISTORY, q, offset_ms=clock_offset_ms(s.base_url))) == (200, "00000")
        assert code_of(get(s.base_url, creds, HISTORY, q, ts=s.now_ms() - 31_000)) == (400, "40008")
        assert code_of(get(s.base_url, creds, HISTORY, q, ts=s.now_ms() + 31_000)) == (400, "40008")
        assert code_of(get(s.base_url, creds, HISTORY, q, ts=s.now_ms() - 25_000)) == (200, "00000")


@pytest.mark.parametrize("skew_s", [120.0, -120.0])
def test_clock_skew_makes_own_clock_fail_and_server_time_work(skew_s):
    spec = AccountSpec(name="sk", seed=2, orders=40, symbols=2)
    with Simulator([spec], SimulatorConfig(clock_skew_s=skew_s)) as s:
        creds, q = s.credentials("sk"), {"productType": "USDT-FUTURES", "limit": "100"}
        assert abs(server_time(s.base_url) - (time.time() + skew_s) * 1000) < 5_000
        assert code_of(get(s.base_url, creds, HISTORY, q)) == (400, "40008")  # own clock, despite the default
        offset = clock_offset_ms(s.base_url)
        assert abs(offset - skew_s * 1000) < 5_000
        # the data were generated at the skewed clock: history + pending of every type is the ground truth
        served = []
        for pt in ("USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES"):
            for path in (HISTORY, PENDING):
                r = get(s.base_url, creds, path, {**q, "productType": pt}, offset_ms=offset)
                assert code_of(r) == (200, "00000")
                served += [o["orderId"] for o in r.json()["data"]["entrustedList"] or []]
        assert sorted(served) == sorted(o["orderId"] for o in s.truth("sk")) and len(served) == 40


def test_clock_skew_with_a_fixed_now_is_refused():
    with pytest.raises(ValueError, match="now_ms"):
        Simulator([AccountSpec(name="x", orders=10, symbols=1, now_ms=NOW)], SimulatorConfig(clock_skew_s=5))


def test_moved_and_frozen_clock_authenticate_a_client_that_reads_server_time():
    spec = AccountSpec(name="mv", seed=2, orders=30, symbols=2, now_ms=NOW)
    cfg = SimulatorConfig(accept_wall_clock=False, frozen=True, timestamp_tolerance_s=1)
    with Simulator([spec], cfg) as s:
        creds, q = s.credentials("mv"), {"productType": "USDT-FUTURES"}
        offset = clock_offset_ms(s.base_url)
        assert code_of(get(s.base_url, creds, HISTORY, q, offset_ms=offset)) == (200, "00000")
        # frozen: the clock stood still while this machine's ran on; a reading carried forward still passes
        time.sleep(1.6)
        assert code_of(get(s.base_url, creds, HISTORY, q, offset_ms=offset)) == (200, "00000")
        assert code_of(get(s.base_url, creds, HISTORY, q, ts=s.now_ms() + 4_000)) == (400, "40008")
        # moved a day: the old offset is stale (40008); re-reading /public/time fixes it
        s.advance(86_400_000)
        assert code_of(get(s.base_url, creds, HISTORY, q, offset_ms=offset)) == (400, "40008")
        assert code_of(get(s.base_url, creds, HISTORY, q, offset_ms=clock_offset_ms(s.base_url))) == (200, "00000")
        s.set_now(NOW - 3_600_000)
        s.unfreeze()
        assert code_of(get(s.base_url, creds, HISTORY, q, offset_ms=clock_offset_ms(s.base_url))) == (200, "00000")
