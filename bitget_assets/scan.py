"""Read every order of an account with the fewest requests the paging rules allow, several chains at once.

Bitget has no "symbols I traded" endpoint, so discovery must read orders-history without `symbol`
per product type, and that read already returns every order: we keep it instead of reading twice.
One paging chain is sequential (each page needs the previous `endId`), so to keep the rate budget
busy the engine splits a chain's remaining time range between idle workers. Each split costs at most
one partially filled page, and splits only happen while a worker would otherwise sit idle.
"""

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from bitget_assets.bitget.client import (
    FALLBACK_SPANS_MS,
    HISTORY_PATH,
    PAGE_LIMIT,
    PENDING_PATH,
    BitgetClient,
)
from bitget_assets.bitget.errors import BitgetAPIError
from bitget_assets.orders import orders_frame

# A chain is only split when about this many pages remain on it, so splitting pays for itself.
MIN_PAGES_TO_SPLIT = 3


@dataclass
class Chain:
    """One paging walk: orders of `product_type` with cTime in [lower, upper] and orderId < cursor."""

    path: str
    product_type: str
    lower: int | None = None
    upper: int | None = None
    cursor: str | None = None
    oldest_ms: int | None = None  # cTime of the oldest order this chain has read
    pages: int = 0

    def remaining_pages(self) -> float:
        """Pages left if orders are spread evenly over time, judged from what was read so far."""
        if self.oldest_ms is None or self.upper is None or self.lower is None:
            return 0.0
        read_span = max(self.upper - self.oldest_ms, 1)
        return self.pages * (self.oldest_ms - self.lower) / read_span

    def split(self) -> "Chain":
        """Hand the older half of the unread range to a new chain; this one keeps the newer half."""
        mid = self.lower + (self.oldest_ms - self.lower) // 2
        older = Chain(self.path, self.product_type, self.lower, mid - 1)
        self.lower = mid
        return older


@dataclass
class ScanResult:
    # product type -> one frame per page: a page becomes columns as it arrives, while its chain waits for
    # the rate budget, so no list of a million dicts (~2.5 KB each) builds up and nothing is left to convert.
    history: dict[str, list[pl.DataFrame]] = field(default_factory=dict)
    pending: dict[str, list[pl.DataFrame]] = field(default_factory=dict)
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)  # product type -> [start, end] read
    chains: int = 0
    splits: int = 0
    seconds: float = 0.0


def windows(lower: int, upper: int, span_ms: int) -> list[tuple[int, int]]:
    """Adjacent inclusive windows of at most `span_ms`, newest first, covering [lower, upper]."""
    out = []
    while upper >= lower:
        start = max(lower, upper - span_ms)
        out.append((start, upper))
        upper = start - 1
    return out


class Scanner:
    """A small work-stealing pool of paging chains over one client (and so one rate budget)."""

    def __init__(self, client: BitgetClient, concurrency: int = 4, on_page: Callable | None = None):
        self.client = client
        self.concurrency = max(1, concurrency)
        self.on_page = on_page or (lambda chain, orders: None)
        self._queue: deque[Chain] = deque()
        self._cond = threading.Condition()
        self._busy = 0
        self._idle = 0
        self._error: BaseException | None = None
        self.result = ScanResult()

    def scan(self, ranges: dict[str, tuple[int, int] | None], *, pending: bool = True) -> ScanResult:
        """Per product type: finished orders with cTime in its [start, end] (none for None), and every open order
        unless `pending` is False."""
        began = time.monotonic()
        self.result = ScanResult(ranges={pt: r for pt, r in ranges.items() if r is not None})
        for pt, window in ranges.items():
            self.result.history[pt], self.result.pending[pt] = [], []
            if pending:
                self._queue.append(Chain(PENDING_PATH, pt))
            for lower, upper in windows(*window, self.client.max_span_ms) if window else ():
                self._queue.append(Chain(HISTORY_PATH, pt, lower, upper))
        self.result.chains = len(self._queue)
        if self._queue:
            # One request before the fan-out: its answer checks key, passphrase, signature and clock, so
            # refused credentials cost one request, not one per worker.
            first = self._queue.popleft()
            self._queue.extendleft(reversed(self._advance(first)))
        workers = [threading.Thread(target=self._work, daemon=True) for _ in range(self.concurrency)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        if self._error is not None:
            raise self._error
        self.result.seconds = time.monotonic() - began
        return self.result

    def _next_chain(self) -> Chain | None:
        with self._cond:
            while not self._queue and self._busy and self._error is None:
                self._idle += 1
                self._cond.wait()
                self._idle -= 1
            if self._error is not None or not self._queue:
                self._cond.notify_all()
                return None
            chain = self._queue.popleft()
            if self._wider_than_allowed(chain):
                # Another chain has just learnt the server's shorter span: cut this one before sending it.
                parts = self._windows_of(chain)
                chain = parts[0]
                self._queue.extendleft(reversed(parts[1:]))
            if self._idle and not self._queue and chain.remaining_pages() >= MIN_PAGES_TO_SPLIT:
                self._queue.append(chain.split())
                self.result.splits += 1
                self.result.chains += 1
                self._cond.notify()
            self._busy += 1
            return chain

    def _work(self) -> None:
        while (chain := self._next_chain()) is not None:
            follow_ups: list[Chain] = []
            try:
                follow_ups = self._advance(chain)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller of scan()
                with self._cond:
                    self._error = self._error or exc
            with self._cond:
                self._busy -= 1
                self._queue.extend(follow_ups)
                self._cond.notify_all()

    def _advance(self, chain: Chain) -> list[Chain]:
        """Fetch one page of `chain`; return the chains that carry on from it."""
        try:
            page = self.client.order_page(
                chain.path,
                chain.product_type,
                start_ms=chain.lower,
                end_ms=chain.upper,
                id_less_than=chain.cursor,
            )
        except BitgetAPIError as exc:
            if exc.code == "40705" and chain.path == HISTORY_PATH and chain.cursor is None:
                return self._narrow(chain)
            raise
        history = chain.path == HISTORY_PATH
        frame = orders_frame(page.orders, chain.product_type, "history" if history else "pending")
        sink = self.result.history if history else self.result.pending
        with self._cond:
            sink[chain.product_type].append(frame)
        self.on_page(chain, page.orders)
        if len(page.orders) < PAGE_LIMIT or not page.end_id:
            return []
        chain.pages += 1
        chain.cursor = page.end_id
        chain.oldest_ms = int(page.orders[-1]["cTime"])
        return [chain]

    def _narrow(self, chain: Chain) -> list[Chain]:
        """The server allows a shorter span than we asked for: cut this range into windows it accepts."""
        with self._cond:
            shorter = [s for s in FALLBACK_SPANS_MS if s < chain.upper - chain.lower]
            if not shorter:
                raise BitgetAPIError("40705", "span rejected even at one day", HISTORY_PATH)
            self.client.max_span_ms = min(self.client.max_span_ms, shorter[0])
            return self._windows_of(chain)

    def _wider_than_allowed(self, chain: Chain) -> bool:
        return (
            chain.path == HISTORY_PATH
            and chain.cursor is None
            and chain.upper - chain.lower > self.client.max_span_ms
        )

    def _windows_of(self, chain: Chain) -> list[Chain]:
        """`chain`'s range as fresh chains no wider than the span the server accepts (caller holds the lock)."""
        parts = windows(chain.lower, chain.upper, self.client.max_span_ms)
        self.result.chains += len(parts) - 1
        return [Chain(HISTORY_PATH, chain.product_type, lo, hi) for lo, hi in parts]
