"""Signed, rate-limited, retrying HTTP client for the order endpoints of Bitget's v2 futures API."""

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter

from bitget_assets.bitget.clock import ServerClock
from bitget_assets.bitget.credentials import Credentials
from bitget_assets.bitget.errors import (
    AMBIGUOUS_CODES,
    BitgetAPIError,
    BitgetAuthError,
    BitgetParameterError,
    BitgetRateLimitError,
    BitgetRateLimitExhaustedError,
    BitgetResponseError,
    BitgetTransientError,
    api_error,
)
from bitget_assets.bitget.retry import RetryPolicy
from bitget_assets.bitget.signing import canonical_query, sign
from bitget_assets.ratelimit import Limiter, ThreadLimiter

log = logging.getLogger("bitget_assets.client")

CREDIT_AFTER_ANSWERS = 5


def window_credit(fastest_round_trip_s: float, answers: int) -> float:
    """How much sooner after its answer a request may stop counting in its budget's window (ratelimit.py).

    An answer leaves the exchange at least the return leg of the fastest round trip after it stamped the
    request: half of that round trip on a symmetric link, less if that one was itself delayed, so half is
    credited. A process's first answers come while it and its siblings start up, when every round trip may be
    slowed: none is credited until a few have come back.
    """
    return fastest_round_trip_s / 2 if answers >= CREDIT_AFTER_ANSWERS else 0.0


TIME_PATH = "/api/v2/public/time"

# Paging lives in bitget_assets.paging/scan, driven by the stream specs; these names stay for older callers.
DAY_MS = 86_400_000
RETENTION_MS = 90 * DAY_MS
FALLBACK_SPANS_MS = (90 * DAY_MS, 7 * DAY_MS, DAY_MS)  # = bitget_assets.streams.V2_SPANS_MS
PAGE_LIMIT = 100

# Bitget allows 6,000 requests per minute per IP (then locks the IP out for 5 minutes): 90/s keeps a margin.
IP_REQUESTS_PER_SECOND = 90.0

RETRYABLE = (
    BitgetTransientError,
    BitgetResponseError,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


@dataclass
class RequestStats:
    """Request counters shared by every thread using one client."""

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


PageStats = RequestStats  # the old name


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BitgetAPIError):
        return f"{exc.code} {exc.msg}".strip()
    return type(exc).__name__


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
        rate_limited_patience_s: float = 360.0,
        pool_size: int = 16,
        rate_limited_pause_s: float = 1.0,
        rate_limited_max_pause_s: float = 60.0,
        ambiguous_retries: int = 2,
        ip_requests_per_second: float | None = IP_REQUESTS_PER_SECOND,
        ip_budget_key: str | None = None,
        uid: str | None = None,
    ):
        self.credentials = credentials
        self.base_url = credentials.base_url.rstrip("/")
        self.limiter = limiter or ThreadLimiter(9.5)
        self.timeout = timeout
        self.stats = PageStats()
        self.clock = time.time  # this machine's clock; signatures carry it corrected by the measured offset
        self.round_trip_s: float | None = None  # moving average of an answer's time, limiter waits excluded
        self.fastest_round_trip_s = math.inf  # over every answer of this client
        self.answers = 0
        self.server_clock = ServerClock(lambda: self.request(TIME_PATH, signed=False), lambda: self.clock())
        self.max_span_ms = FALLBACK_SPANS_MS[0]
        self.retry_policy = RetryPolicy(
            max_attempts=max_attempts,
            max_backoff_s=max_backoff_s,
            ambiguous_retries=ambiguous_retries,
            rate_limited_pause_s=rate_limited_pause_s,
            rate_limited_max_pause_s=rate_limited_max_pause_s,
            rate_limited_patience_s=rate_limited_patience_s,
        )
        # The per-IP ceiling is one more budget every request draws on; by default one per exchange host, so
        # every account this limiter serves (all processes, or all machines with Redis) shares it.
        if ip_requests_per_second is not None and not ip_requests_per_second > 0:
            raise ValueError(f"ip_requests_per_second must be > 0 or None (no IP budget): {ip_requests_per_second!r}")
        ip_key = ip_budget_key or f"bitget-ip:{urlparse(self.base_url).netloc}"
        self._ip_budget = ((ip_key, ip_requests_per_second),) if ip_requests_per_second else ()
        self.uid = uid  # learned by bitget.account.detect_account_mode (or restored from the account's state)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"BitgetClient({self.credentials!r})"

    @property
    def max_attempts(self) -> int:
        return self.retry_policy.max_attempts

    @property
    def rate_limited_patience_s(self) -> float:
        return self.retry_policy.rate_limited_patience_s

    @property
    def clock_offset_ms(self) -> int | None:
        """Exchange clock minus this machine's, as last measured (None before the first signed request)."""
        return self.server_clock.offset_ms

    @property
    def budget_owner(self) -> str:
        """Whose rate budget this is: Bitget counts per UID, so two keys of one account share it. Until the UID is
        known, a hash of the API key stands in (never the key itself)."""
        if self.uid:
            return f"uid-{self.uid}"
        return "key-" + hashlib.sha256(self.credentials.api_key.encode()).hexdigest()[:16]

    def budget_key(self, path: str) -> str:
        """The limiter key of `path`'s budget: Bitget counts each endpoint of a UID separately."""
        return f"bitget:{self.budget_owner}:{path}"

    # -- transport -------------------------------------------------------------------------------
    def request(self, path: str, params: dict | None = None, *, signed: bool = True,
                rate_per_s: float | None = None):
        """GET `path` and return the envelope's `data`, retrying only what a retry can fix (RetryPolicy).

        `rate_per_s` is the endpoint's budget (None: the limiter's rate, Bitget's 10/s less a margin).
        """
        params = params or {}
        policy = self.retry_policy
        failures = ambiguous = limited = 0
        limited_since: float | None = None
        clock_retried = False
        while True:
            generation = self.server_clock.generation
            try:
                return self._send_once(path, params, signed, rate_per_s)
            except BitgetRateLimitError as exc:
                limited += 1
                limited_since = time.monotonic() if limited_since is None else limited_since
                self._wait_out_rate_limit(path, exc, limited, time.monotonic() - limited_since)
            except BitgetAuthError as exc:
                if exc.code != "40008" or not signed or clock_retried:
                    raise
                clock_retried = True
                log.warning("40008 (timestamp expired) on %s: measuring the exchange clock again", path)
                self.server_clock.sync(generation)
            except RETRYABLE as exc:
                limited, limited_since = 0, None
                if isinstance(exc, BitgetAPIError) and exc.code in AMBIGUOUS_CODES:
                    ambiguous += 1
                    if ambiguous > policy.ambiguous_retries:
                        raise BitgetParameterError(exc.code, exc.msg, exc.endpoint, exc.http_status) from exc
                else:
                    failures += 1
                    if failures >= policy.max_attempts:
                        raise
                wait = policy.backoff_s(failures + ambiguous)
                log.info("%s on %s: retrying in %.2f s", _describe(exc), path, wait)
                self.stats.add(retries=1)
                time.sleep(wait)

    def _wait_out_rate_limit(self, path: str, exc: BitgetRateLimitError, in_a_row: int, elapsed: float) -> None:
        """Pause the shared budget (the UID's; from the second 429 in a row also the IP's) or give up."""
        policy = self.retry_policy
        if elapsed >= policy.rate_limited_patience_s:
            raise BitgetRateLimitExhaustedError(
                exc.code,
                f"Too Many Requests: still rate limited after {elapsed:.0f} s ({in_a_row} answers 429 in a row); "
                "Bitget locks an IP out for 5 minutes once it passes 6,000 requests a minute",
                path,
                exc.http_status,
            ) from exc
        pause = min(policy.rate_limited_pause(in_a_row), policy.rate_limited_patience_s - elapsed)
        # One 429 may be this UID's endpoint budget (other software on the account); a second in a row after a
        # pause looks like the per-IP lock-out, which every account on this IP must wait out.
        keys = [self.budget_key(path)] + ([k for k, _ in self._ip_budget] if in_a_row >= 2 else [])
        for key in keys:
            self.limiter.pause(key, pause)
        log.warning(
            "HTTP 429 on %s (%d in a row): pausing the request budget of %s%s for %.1f s, in every process; "
            "retrying until %.0f s have passed (%.0f s so far)",
            path, in_a_row, self.budget_owner, " and of this IP" if len(keys) > 1 else "", pause,
            policy.rate_limited_patience_s, elapsed,
        )
        self.stats.add(retries=1)

    def _send_once(self, path: str, params: dict, signed: bool, rate_per_s: float | None = None):
        query = canonical_query(params)
        if signed and self.server_clock.offset_ms is None:
            self.server_clock.sync(self.server_clock.generation)  # before our slot: its request takes one too
        # Every attempt, retries included, spends one slot of the UID's budget for this endpoint and of the IP's,
        # and counts in the endpoint's window from before it is sent until a second after its answer.
        with self.limiter.sending(self.budget_key(path), rate_per_s, also=self._ip_budget) as admitted:
            headers = {"locale": "en-US"}
            if signed:
                # Taken after the limiter's wait (a pause can last a minute), on the exchange's clock.
                timestamp = str(self.server_clock.now_ms())
                headers |= {
                    "ACCESS-KEY": self.credentials.api_key,
                    "ACCESS-SIGN": sign(self.credentials.api_secret, timestamp, "GET", path, query),
                    "ACCESS-TIMESTAMP": timestamp,
                    "ACCESS-PASSPHRASE": self.credentials.passphrase,
                }
            url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
            self.stats.add(requests=1)
            sent = self.clock()
            resp = self.session.get(url, headers=headers, timeout=self.timeout)
            received = self.clock()
            took = max(received - sent, 0.0)
            self.fastest_round_trip_s = min(self.fastest_round_trip_s, took)
            self.answers += 1
            admitted.credit_s = window_credit(self.fastest_round_trip_s, self.answers)
        self.round_trip_s = took if self.round_trip_s is None else 0.8 * self.round_trip_s + 0.2 * took
        data = self._parse(resp, path)
        if path == TIME_PATH:  # every serverTime answer measures the clock offset: no extra request
            try:
                self.server_clock.record(int(data["serverTime"]), sent, received)
            except (TypeError, KeyError, ValueError):
                raise BitgetResponseError(f"{TIME_PATH}: no serverTime in the answer") from None
        return data

    def _parse(self, resp: requests.Response, path: str):
        if resp.status_code == 429:
            self.stats.add(rate_limited=1)
            raise BitgetRateLimitError("429", "Too Many Requests", path, 429)
        try:
            body = resp.json()
        except ValueError:
            raise BitgetResponseError(
                f"HTTP {resp.status_code} from {path} is not JSON ({len(resp.content)} bytes)"
            ) from None
        if not isinstance(body, dict) or "code" not in body:
            raise BitgetResponseError(f"HTTP {resp.status_code} from {path} is not a Bitget envelope")
        code = str(body["code"])
        if code == "429":
            self.stats.add(rate_limited=1)
        if code != "00000":
            raise api_error(code, str(body.get("msg") or ""), path, resp.status_code)
        if resp.status_code >= 400:
            raise BitgetResponseError(f"HTTP {resp.status_code} from {path} with success code")
        return body.get("data")

    # -- endpoints -------------------------------------------------------------------------------
    def server_time_ms(self) -> int:
        return int(self.request(TIME_PATH, signed=False)["serverTime"])
