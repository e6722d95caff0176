"""Bitget request signing, checked the way the exchange does (docs/api-notes.md, signing).

The signature is verified against the query string as received, percent-DECODED (urllib's `unquote`: `%XX`
sequences become UTF-8 text, a literal `+` stays `+`), in the order received. So clients that sort their
parameters and clients that keep insertion order are both accepted, as long as they sign the decoded form of
what they send; a client that signs the encoded form (`symbol=%E9%BE%99...`) gets 40009, as on Bitget
(ccxt#28888). Plain ASCII queries are unaffected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from urllib.parse import unquote

from .accounts import Account


class AuthError(Exception):
    def __init__(self, code: str, msg: str):
        super().__init__(f"{code} {msg}")
        self.code, self.msg = code, msg


def sign(secret: str, timestamp: str, method: str, path: str, query: str = "", body: str = "") -> str:
    prehash = timestamp + method.upper() + path + ("?" + query if query else "") + body
    return base64.b64encode(hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()).decode()


def signed_query(raw_query: str) -> str:
    """The query string the signature covers: the received one, percent-decoded."""
    return unquote(raw_query, errors="replace")


def authenticate(headers: Mapping[str, str], method: str, path: str, raw_query: str, body: str,
                 accounts_by_key: Mapping[str, Account], wall_ms: int, tolerance_s: float,
                 clock_ok: Callable[[int], bool] | None = None) -> Account:
    """The account of a signed request, or AuthError with the code Bitget would answer. `clock_ok(ts_ms)`
    decides the timestamp check (the server's clock); without it the timestamp is compared with `wall_ms`."""
    key = headers.get("ACCESS-KEY")
    signature = headers.get("ACCESS-SIGN")
    ts = headers.get("ACCESS-TIMESTAMP")
    passphrase = headers.get("ACCESS-PASSPHRASE")
    if not key:
        raise AuthError("40001", "ACCESS_KEY cannot be empty")
    if not signature:
        raise AuthError("40003", "Signature cannot be empty")
    if not ts or not (ts.isascii() and ts.isdigit()):
        raise AuthError("40005", "Invalid ACCESS_TIMESTAMP")
    if not passphrase:
        raise AuthError("40011", "ACCESS_PASSPHRASE cannot be empty")
    account = accounts_by_key.get(key)
    if account is None:
        raise AuthError("40037", "Apikey does not exist")
    in_time = clock_ok(int(ts)) if clock_ok is not None else abs(wall_ms - int(ts)) <= tolerance_s * 1000
    if not in_time:
        raise AuthError("40008", "Request timestamp expired")
    if not hmac.compare_digest(passphrase.encode(), account.passphrase.encode()):
        raise AuthError("40012", "apikey/password is incorrect")
    expected = sign(account.api_secret, ts, method, path, signed_query(raw_query), body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise AuthError("40009", "sign signature error")
    return account
