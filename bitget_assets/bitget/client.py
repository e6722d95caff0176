"""Signed, rate-limited, retrying HTTP client for the order endpoints of Bitget's v2 futures API."""

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import requests
import tenacity
from requests.adapters import HTTPAdapter

from bitget_assets.bitget.credentials import Credentials
from bitget_assets.bitget.errors import (
    BitgetAPIError,
    BitgetResponseError,
    BitgetTransientError,
    api_error,
)
from bitget_assets.bitget.signing import canonical_query, sign
from bitget_assets.ratelimit import Limiter, ThreadLimiter

HISTORY_PATH = "/api/v2/mix/order/orders-history"
PENDING_PATH = "/api/v2/mix/order/orders-pending"
CONTRACTS_PATH = "/api/v2/mix/market/contracts"
TIME_PATH = "/api/v2/public/time"

DAY_MS = 86_400_000
RETENTION_MS = 90 * DAY_MS
# Spans tried in turn when the server answers 40705: sources say 90 days or one week, so no guess in between.
FALLBACK_SPANS_MS = (90 * DAY_MS, 7 * DAY_MS, DAY_MS)
PAGE_LIMIT = 100
REQUIRED_ORDER_FIELDS = ("orderId", "cTime", "symbol")

RETRYABLE = (
    BitgetTransientError,
    BitgetResponseError,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class MalformedOrderError(BitgetAPIError):
    """An order object lacks a field every order has: the answer cannot be trusted, so stop loudly."""


@dataclass
class PageStats:
    """Counters shared by every thread using one client."""

    requests: int = 0
    rate_limited: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict[str, int]:
        return {"requests": self.requests, "rate_limited": self.rate_limited, "retries": self.retries}


@dataclass(frozen=True)
class Page:
    orders: list[dict]
    end_id: str | None


class BitgetClient:
    """One account's session: pooled connections, signing, the shared limiter, bounded retries."""

    def __init__(
        self,
        credentials: Credentials,
        limiter: Limiter | None = None,
        *,
        timeout: tuple[float, float] = (3.05, 10.0),
        max_attempts: int = 8,
        max_backoff_s: float = 8.0,
        rate_limited_patience_s: float = 60.0,
        pool_size: int = 16,
    ):
        self.credentials = credentials
        self.base_url = credentials.base_url.rstrip("/")
        self.limiter = limiter or ThreadLimiter(9.5)
        self.timeout = timeout
        self.stats = PageStats()
        self.clock = time.time  # signatures carry this machine's time, as Bitget expects
        self.max_span_ms = FALLBACK_SPANS_MS[0]
        self.max_attempts, self.rate_limited_patience_s = max_attempts, rate_limited_patience_s
        self._retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RETRYABLE),
            stop=self._give_up,
            wait=tenacity.wait_random_exponential(multiplier=0.25, max=max_backoff_s),
            before_sleep=lambda _state: self.stats.add(retries=1),
            reraise=True,
        )
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"BitgetClient({self.credentials!r})"

    @property
    def account_key(self) -> str:
        """Identifies the account's rate-limit budget without revealing the key."""
        return f"bitget:{self.credentials.api_key}"

    def _give_up(self, state: tenacity.RetryCallState) -> bool:
        """After `max_attempts` failures not counting 429s; 429s after `rate_limited_patience_s` of them.

        A 429 only says "later" (a burst of them is how an exchange sheds load), so a run of them must not use
        up the attempts meant for broken answers; being rate limited is bounded in time instead.
        """
        if getattr(state.outcome.exception(), "http_status", None) == 429:
            return state.seconds_since_start >= self.rate_limited_patience_s
        state.failures = getattr(state, "failures", 0) + 1
        return state.failures >= self.max_attempts

    # -- transport -------------------------------------------------------------------------------
    def request(self, path: str, params: dict | None = None, *, signed: bool = True):
        """GET `path` and return the envelope's `data`, retrying only what a retry can fix."""
        for attempt in self._retrying:
            with attempt:
                return self._send_once(path, params or {}, signed)
        raise AssertionError("unreachable")  # tenacity either returns or reraises

    def _send_once(self, path: str, params: dict, signed: bool):
        query = canonical_query(params)
        headers = {"locale": "en-US"}
        if signed:
            timestamp = str(int(self.clock() * 1000))
            headers |= {
                "ACCESS-KEY": self.credentials.api_key,
                "ACCESS-SIGN": sign(self.credentials.api_secret, timestamp, "GET", path, query),
                "ACCESS-TIMESTAMP": timestamp,
                "ACCESS-PASSPHRASE": self.credentials.passphrase,
            }
        # Every attempt, retries included, spends one slot of the account's budget for this endpoint.
        self.limiter.acquire(f"{self.account_key}:{path}")
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        self.stats.add(requests=1)
        resp = self.session.get(url, headers=headers, timeout=self.timeout)
        return self._parse(resp, path)

    def _parse(self, resp: requests.Response, path: str):
        if resp.status_code == 429:
            self.stats.add(rate_limited=1)
            raise BitgetTransientError("429", "Too Many Requests", path, 429)
        try:
            body = resp.json()
        except ValueError:
            raise BitgetResponseError(
                f"HTTP {resp.status_code} from {path} is not JSON ({len(resp.content)} bytes)"
            ) from None
        if not isinstance(body, dict) or "code" not in body:
            raise BitgetResponseError(f"HTTP {resp.status_code} from {path} is not a Bitget envelope")
        code = str(body["code"])
        if code != "00000":
            raise api_error(code, str(body.get("msg") or ""), path, resp.status_code)
        if resp.status_code >= 400:
            raise BitgetResponseError(f"HTTP {resp.status_code} from {path} with success code")
        return body.get("data")

    # -- endpoints -------------------------------------------------------------------------------
    def server_time_ms(self) -> int:
        return int(self.request(TIME_PATH, signed=False)["serverTime"])

    def contracts(self, product_type: str) -> list[dict]:
        return list(self.request(CONTRACTS_PATH, {"productType": product_type}, signed=False) or [])

    def history_page(self, product_type: str, **kwargs) -> Page:
        return self.order_page(HISTORY_PATH, product_type, **kwargs)

    def pending_page(self, product_type: str, **kwargs) -> Page:
        return self.order_page(PENDING_PATH, product_type, **kwargs)

    def order_page(
        self,
        path: str,
        product_type: str,
        *,
        symbol: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        id_less_than: str | None = None,
        limit: int = PAGE_LIMIT,
    ) -> Page:
        params = {
            "productType": product_type,
            "symbol": symbol,
            "startTime": start_ms,
            "endTime": end_ms,
            "idLessThan": id_less_than,
            "limit": limit,
        }
        data = self.request(path, params) or {}
        if not isinstance(data, dict):
            raise BitgetResponseError(f"{path}: data is {type(data).__name__}, expected an object")
        orders = data.get("entrustedList") or []
        for order in orders:
            missing = [f for f in REQUIRED_ORDER_FIELDS if not order.get(f)]
            if missing:
                raise MalformedOrderError("malformed", f"order without {', '.join(missing)}", path)
        end_id = data.get("endId") or (orders[-1]["orderId"] if orders else None)
        return Page(orders, end_id or None)

    # -- walkers ---------------------------------------------------------------------------------
    def iter_pages(self, path: str, product_type: str, **window) -> Iterator[list[dict]]:
        """Pages of one window, newest first, following `endId` → `idLessThan` until a short page."""
        cursor = None
        while True:
            page = self.order_page(path, product_type, id_less_than=cursor, **window)
            if page.orders:
                yield page.orders
            if len(page.orders) < PAGE_LIMIT or not page.end_id:
                return
            if cursor is not None and int(page.end_id) >= int(cursor):
                raise BitgetResponseError(f"{path}: paging did not advance (endId {page.end_id})")
            cursor = page.end_id

    def iter_history(
        self, product_type: str, *, start_ms: int, end_ms: int, symbol: str | None = None
    ) -> Iterator[dict]:
        """Every finished order with cTime in [start_ms, end_ms], walking windows newest → oldest.

        Windows are inclusive and adjacent (the next ends 1 ms before this one starts), so there are
        no gaps or overlaps; a 40705 answer shrinks the span and retries the same window.
        """
        seen: set[str] = set()
        upper = end_ms
        while upper >= start_ms:
            lower = max(start_ms, upper - self.max_span_ms)
            try:
                for page in self.iter_pages(
                    HISTORY_PATH, product_type, symbol=symbol, start_ms=lower, end_ms=upper
                ):
                    for order in page:
                        if order["orderId"] not in seen:
                            seen.add(order["orderId"])
                            yield order
            except BitgetAPIError as exc:
                if exc.code != "40705" or not self._shrink_span():
                    raise
                continue
            upper = lower - 1

    def _shrink_span(self) -> bool:
        shorter = [s for s in FALLBACK_SPANS_MS if s < self.max_span_ms]
        if not shorter:
            return False
        self.max_span_ms = shorter[0]
        return True

    def pending_orders(self, product_type: str, *, symbol: str | None = None) -> list[dict]:
        return [o for page in self.iter_pages(PENDING_PATH, product_type, symbol=symbol) for o in page]
