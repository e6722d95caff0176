"""Request signing as Bitget documents it (docs/api-notes.md, "Live exchange": signing).

Bitget checks the signature over the *percent-decoded* query string: the URL carries the encoded form, the
prehash the decoded one (ccxt PR #28890). For plain ASCII values the two are the same string.
"""

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote, unquote, urlencode


def canonical_query(params: Mapping[str, object]) -> str:
    """Sorted, percent-encoded query string: what goes on the wire, byte for byte.

    Spaces become %20 rather than '+', so decoding the string gives back exactly the values sent.
    """
    items = sorted((k, str(v)) for k, v in params.items() if v is not None and v != "")
    return urlencode(items, quote_via=quote)


def prehash_query(query: str) -> str:
    """The form of `query` that Bitget signs: percent-decoded, in the order sent."""
    return unquote(query)


def sign(secret: str, timestamp_ms: str, method: str, path: str, query: str = "", body: str = "") -> str:
    """base64(HMAC-SHA256(secret, timestamp + METHOD + path + ?decoded-query + body)).

    `query` is the string as sent (from `canonical_query`); its decoded form is what gets signed.
    """
    decoded = prehash_query(query)
    prehash = timestamp_ms + method.upper() + path + (f"?{decoded}" if decoded else "") + body
    digest = hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()
