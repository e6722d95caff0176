"""The exchange's clock as seen from here: signatures must carry Bitget's time to within about 30 s.

Every serverTime answer is a measurement: offset = serverTime - midpoint of send and receive, as ccxt's
time-difference logic does (docs/api-notes.md, "Live exchange": clock). The client asks once, lazily, before
its first signed request (a run that starts by reading serverTime already has it), and again on 40008.
"""

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("bitget_assets.client")


class ServerClock:
    """Local time corrected by the measured offset; thread-safe, one measurement at a time."""

    def __init__(self, measure: Callable[[], object], local: Callable[[], float] = time.time):
        """`measure()` asks the exchange for its time; the answer arrives through `record`."""
        self._measure, self._local = measure, local
        self._lock = threading.RLock()  # `measure` records through `record` while `sync` holds the lock
        self.offset_ms: int | None = None
        self.round_trip_ms: int | None = None
        self.generation = 0  # bumped by every measurement, so a burst of 40008s re-measures once

    def now_ms(self) -> int:
        """Milliseconds on the exchange's clock, measuring the offset first if never done."""
        if self.offset_ms is None:
            self.sync(self.generation)
        return int(self._local() * 1000) + (self.offset_ms or 0)

    def record(self, server_ms: int, sent: float, received: float) -> None:
        """One serverTime answer, asked at `sent` and answered at `received` (local seconds)."""
        with self._lock:
            first = self.offset_ms is None
            self.offset_ms = round(server_ms - (sent + received) * 500)  # midpoint in ms
            self.round_trip_ms = round((received - sent) * 1000)
            self.generation += 1
        (log.info if first else log.debug)(
            "exchange clock offset %+d ms (round trip %d ms)", self.offset_ms, self.round_trip_ms
        )

    def sync(self, seen_generation: int | None = None) -> int:
        """Measure the offset, unless another thread did since `seen_generation`; return the offset in ms."""
        with self._lock:
            if seen_generation is not None and seen_generation != self.generation and self.offset_ms is not None:
                return self.offset_ms
            before = self.generation
            self._measure()
            if self.generation == before or self.offset_ms is None:
                raise RuntimeError("the exchange's time answer was not recorded")
            return self.offset_ms
