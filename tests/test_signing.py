"""Signing: the URL carries the percent-encoded sorted query, the signature covers its decoded form (Bitget
verifies that; a client signing the encoded form gets 40009 for symbols such as 龙虾USDT)."""

import base64
import hashlib
import hmac

import pytest

from bitget_assets.bitget import BitgetAuthError, BitgetClient, signing
from bitget_assets.bitget.signing import canonical_query, prehash_query, sign
from bitget_assets.ratelimit import ThreadLimiter
from tests.fake_exchange import FakeExchange, ok

HISTORY = "/api/v2/mix/order/orders-history"


def hmac_b64(secret: str, text: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()).decode()


@pytest.mark.parametrize(
    "symbol, encoded",
    [("龙虾USDT", "%E9%BE%99%E8%99%BEUSDT"), ("$DEGENUSDT", "%24DEGENUSDT"), ("BTCUSDT", "BTCUSDT")],
)
def test_query_is_sent_encoded_and_signed_decoded(symbol, encoded):
    query = canonical_query({"symbol": symbol, "productType": "USDT-FUTURES", "limit": 100, "idLessThan": None})
    assert query == f"limit=100&productType=USDT-FUTURES&symbol={encoded}"  # sorted, empty values dropped
    assert prehash_query(query) == f"limit=100&productType=USDT-FUTURES&symbol={symbol}"
    expected = hmac_b64("s3cret", f"1700000000000GET{HISTORY}?limit=100&productType=USDT-FUTURES&symbol={symbol}")
    assert sign("s3cret", "1700000000000", "get", HISTORY, query) == expected


def test_spaces_and_reserved_characters_round_trip():
    query = canonical_query({"a": "x y", "b": "p+q&r=s/t"})
    assert query == "a=x%20y&b=p%2Bq%26r%3Ds%2Ft"  # %20, not '+': decoding gives back exactly the values
    assert prehash_query(query) == "a=x y&b=p+q&r=s/t"


def test_no_query_signs_the_bare_path():
    assert sign("k", "1", "GET", "/api/v2/public/time") == hmac_b64("k", "1GET/api/v2/public/time")


@pytest.mark.parametrize("symbol", ["龙虾USDT", "$DEGENUSDT"])
def test_exchange_that_verifies_the_decoded_query_accepts_the_client(symbol, monkeypatch):
    with FakeExchange(route=lambda r: ok({"symbol": r.params["symbol"]})) as fake:
        client = BitgetClient(fake.credentials(), ThreadLimiter(100), max_backoff_s=0.01)
        assert client.request(HISTORY, {"symbol": symbol, "productType": "USDT-FUTURES"}) == {"symbol": symbol}
        [req] = fake.requests_to(HISTORY)
        assert symbol not in req.raw_query and "%" in req.raw_query  # encoded on the wire
        # The old client signed the encoded form: the same exchange answers 40009, not retried.
        monkeypatch.setattr(signing, "prehash_query", lambda q: q)
        with pytest.raises(BitgetAuthError, match="40009"):
            client.request(HISTORY, {"symbol": symbol, "productType": "USDT-FUTURES"})
        assert len(fake.requests_to(HISTORY)) == 2
