"""Read whole streams with the fewest requests the paging rules allow, several paging chains at once.

Bitget has no "symbols I traded" endpoint, so discovery reads each stream without `symbol` per product type,
and that read already returns every row: we keep it instead of reading twice. One paging chain is sequential
(each page needs the previous cursor), so to keep the rate budget busy the scanner splits a chain's remaining
time range between idle workers. Each split costs at most one partially filled page, and splits only happen
while a worker would otherwise sit idle. Streams are data (bitget_assets.streams); pages are parsed by
bitget_assets.paging, the same code the per-symbol direct read uses.
"""

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bitget_assets.bitget.errors import BitgetAPIError
from bitget_assets.datasets import stream_frame
from bitget_assets.paging import (
    SpanMemory,
    check_advances,
    fallback_of,
    fetch_page,
    has_more,
    is_span_error,
    is_unsupported,
    windows,
)
from bitget_assets.streams import StreamSpec

__all__ = ["Chain", "ScanResult", "Scanner", "Task", "windows"]

# A chain is only split when about this many pages remain on it, so splitting pays for itself.
MIN_PAGES_TO_SPLIT = 3


@dataclass(frozen=True)
class Task:
    """Read `spec` for `product_type` over [lower, upper] (ignored by unwindowed streams)."""

    spec: StreamSpec
    product_type: str
    window: tuple[int, int] | None = None
    key: str | None = None  # the result slot (default: the spec's name); a fallback keeps its primary's


@dataclass
class Chain:
    """One paging walk: rows of `spec` and `product_type` with time in [lower, upper] and id below `cursor`."""

    spec: StreamSpec
    product_type: str
    lower: int | None = None
    upper: int | None = None
    cursor: str | None = None
    slot: str = ""
    oldest_ms: int | None = None  # time of the oldest row this chain has read
    pages: int = 0

    @property
    def path(self) -> str:
        return self.spec.path

    def remaining_pages(self) -> float:
        """Pages left if rows are spread evenly over time, judged from what was read so far."""
        if self.oldest_ms is None or self.upper is None or self.lower is None:
            return 0.0
        read_span = max(self.upper - self.oldest_ms, 1)
        return self.pages * (self.oldest_ms - self.lower) / read_span

    def split(self) -> "Chain":
        """Hand the older half of the unread range to a new chain; this one keeps the newer half."""
        mid = self.lower + (self.oldest_ms - self.lower) // 2
        older = Chain(self.spec, self.product_type, self.lower, mid - 1, slot=self.slot)
        self.lower = mid
        return older

    def fresh(self, spec: StreamSpec, lower: int, upper: int) -> "Chain":
        return Chain(spec, self.product_type, lower, upper, slot=self.slot)


@dataclass
class ScanResult:
    # (slot, product type) -> [start, end] read completely (recorded once the whole scan has succeeded)
    ranges: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    chains: int = 0
    splits: int = 0
    seconds: float = 0.0


DEFAULT_CONCURRENCY = 4  # paging chains in flight at once, unless the account's resource says otherwise


class Scanner:
    """A small work-stealing pool of paging chains over one client (and so its rate budgets)."""

    def __init__(self, client, sink, concurrency: int = DEFAULT_CONCURRENCY, on_page: Callable | None = None):
        self.client = client
        self.concurrency = max(1, concurrency)
        self.on_page = on_page or (lambda chain, rows: None)
        # sink.add(slot, product type, spec, frame) takes each page as it arrives, from any worker thread: a page
        # becomes columns as it arrives, while its chain waits for the rate budget, so no list of a million dicts
        # (~2.5 KB each) builds up (spool.ScanSpool keeps memory bounded).
        self.sink = sink
        self.spans = SpanMemory.of(client)
        self._queue: deque[Chain] = deque()
        self._cond = threading.Condition()
        self._busy = 0
        self._busy_on: dict[str, int] = {}  # endpoint -> chains with a request in flight
        self._idle = 0
        self._error: BaseException | None = None
        self.result = ScanResult()

    def run(self, tasks: list[Task]) -> ScanResult:
        """Every task's rows; raises the first error any chain met (nothing is then recorded as read)."""
        began = time.monotonic()
        self.result = ScanResult()
        for task in tasks:
            slot = task.key or task.spec.name
            if not task.spec.windowed:
                self._queue.append(Chain(task.spec, task.product_type, slot=slot))
                continue
            if task.window is None:
                continue
            for lower, upper in windows(*task.window, self.spans.span(task.spec)):
                self._queue.append(Chain(task.spec, task.product_type, lower, upper, slot=slot))
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
        self.result.ranges = {(t.key or t.spec.name, t.product_type): t.window for t in tasks
                              if t.spec.windowed and t.window is not None}
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
            chain = self._pick()
            serving = self.spans.serving(chain.spec) if chain.cursor is None else chain.spec
            if serving is not chain.spec:
                # Another chain has just learnt that this stream's fallback serves instead: go there directly.
                parts = self._windows_of(chain, serving)
                chain = parts[0]
                self._queue.extendleft(reversed(parts[1:]))
            if self._wider_than_allowed(chain):
                # Another chain has just learnt the server's shorter span: cut this one before sending it.
                parts = self._windows_of(chain, chain.spec)
                chain = parts[0]
                self._queue.extendleft(reversed(parts[1:]))
            if self._idle and not self._queue and chain.remaining_pages() >= MIN_PAGES_TO_SPLIT \
                    and self._budget_wants_more(chain.spec):
                self._queue.append(chain.split())
                self.result.splits += 1
                self.result.chains += 1
                self._cond.notify()
            self._busy += 1
            self._busy_on[chain.path] = self._busy_on.get(chain.path, 0) + 1
            return chain

    def _pick(self) -> Chain:
        """The queued chain of the endpoint that has the fewest chains in flight for what its rate needs (the
        first in queue order among equals).

        Each endpoint is its own budget: taken in plain queue order, every worker could wait on the plan-order
        endpoints' budgets (18 first pages at once) while orders-history, whose pages decide the run's length,
        sits idle."""
        best, best_load = 0, math.inf
        for i, chain in enumerate(self._queue):
            load = self._busy_on.get(chain.path, 0) / self._chains_needed(chain.spec)
            if load < best_load:
                best, best_load = i, load
                if load == 0:
                    break
        chain = self._queue[best]
        del self._queue[best]
        return chain

    def _chains_needed(self, spec: StreamSpec) -> int:
        """Chains in flight that keep `spec`'s endpoint at its rate, at the answers' round trip (unknown: all)."""
        round_trip = getattr(self.client, "round_trip_s", None)
        if round_trip is None:
            return self.concurrency
        return max(1, math.ceil(spec.rate_per_s * round_trip))

    def _budget_wants_more(self, spec: StreamSpec) -> bool:
        """Whether another chain on `spec`'s endpoint would raise its rate: each split costs up to one partly
        filled page, and once the chains in flight cover the endpoint's rate at the answers' round trip, another
        only queues."""
        return self._busy_on.get(spec.path, 0) + 1 < self._chains_needed(spec)

    def _work(self) -> None:
        while (chain := self._next_chain()) is not None:
            follow_ups: list[Chain] = []
            try:
                follow_ups = self._advance(chain)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller of run()
                with self._cond:
                    self._error = self._error or exc
            with self._cond:
                self._busy -= 1
                self._busy_on[chain.path] -= 1
                self._queue.extend(follow_ups)
                self._cond.notify_all()

    def _advance(self, chain: Chain) -> list[Chain]:
        """Fetch one page of `chain`; return the chains that carry on from it."""
        spec = chain.spec
        try:
            page = fetch_page(self.client, spec, chain.product_type, start_ms=chain.lower, end_ms=chain.upper,
                              cursor=chain.cursor)
        except BitgetAPIError as exc:
            if spec.windowed and chain.cursor is None:
                fallback = fallback_of(spec)
                if fallback and (is_span_error(exc) or is_unsupported(exc)):
                    self.spans.refuse(spec)
                    with self._cond:
                        return self._windows_of(chain, fallback)
                if is_span_error(exc):
                    return self._narrow(chain, exc)
            raise
        check_advances(spec, chain.cursor, page)
        frame = stream_frame(spec, page.rows, chain.product_type)
        self.sink.add(chain.slot, chain.product_type, spec, frame)
        self.on_page(chain, page.rows)
        if not has_more(spec, page):
            return []
        chain.pages += 1
        chain.cursor = page.cursor
        chain.oldest_ms = int(page.rows[-1][spec.time_field])
        return [chain]

    def _narrow(self, chain: Chain, exc: BitgetAPIError) -> list[Chain]:
        """The server allows a shorter span than we asked for: cut this range into windows it accepts."""
        with self._cond:
            if self.spans.shrink(chain.spec, chain.upper - chain.lower) is None:
                raise exc
            return self._windows_of(chain, chain.spec)

    def _wider_than_allowed(self, chain: Chain) -> bool:
        return chain.spec.windowed and chain.cursor is None and chain.upper - chain.lower > self.spans.span(chain.spec)

    def _windows_of(self, chain: Chain, spec: StreamSpec) -> list[Chain]:
        """`chain`'s range as fresh chains of `spec` no wider than its accepted span (caller holds the lock)."""
        parts = windows(chain.lower, chain.upper, self.spans.span(spec))
        self.result.chains += len(parts) - 1
        return [chain.fresh(spec, lo, hi) for lo, hi in parts]
