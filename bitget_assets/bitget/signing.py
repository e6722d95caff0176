"""Request signing as Bitget documents it (shared/bitget-api.md §1)."""

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlencode


def canonical_query(params: Mapping[str, object]) -> str:
    """Sorted, URL-encoded query string; it is signed and sent byte for byte as built here."""
    items = sorted((k, str(v)) for k, v in params.items() if v is not None and v != "")
    return urlencode(items)


def sign(secret: str, timestamp_ms: str, method: str, path: str, query: str = "", body: str = "") -> str:
    """base64(HMAC-SHA256(secret, timestamp + METHOD + path + ?query + body))."""
    prehash = timestamp_ms + method.upper() + path + (f"?{query}" if query else "") + body
    digest = hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()
