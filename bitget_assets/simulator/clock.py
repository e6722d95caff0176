"""The data clock: the simulated exchange's "now" for retention, default windows, new orders and serverTime.

It starts at an anchor (the first account's `now_ms`) and runs with the wall clock unless frozen, so ground
truth stays reproducible while time still passes. Signature timestamps are NOT checked against it (they use
the real wall clock, like the real exchange's gateway).
"""

from __future__ import annotations

import threading
import time


class DataClock:
    def __init__(self, anchor_ms: int, frozen: bool = False):
        self._lock = threading.Lock()
        self._base_ms = int(anchor_ms)
        self._wall = time.time()
        self._frozen = frozen

    def now_ms(self) -> int:
        with self._lock:
            return self._read()

    def _read(self) -> int:
        if self._frozen:
            return self._base_ms
        return self._base_ms + int((time.time() - self._wall) * 1000)

    def _rebase(self, ms: int) -> None:
        self._base_ms, self._wall = int(ms), time.time()

    def freeze(self) -> int:
        with self._lock:
            self._rebase(self._read())
            self._frozen = True
            return self._base_ms

    def unfreeze(self) -> int:
        with self._lock:
            self._rebase(self._read())
            self._frozen = False
            return self._base_ms

    def advance(self, ms: int) -> int:
        with self._lock:
            self._rebase(self._read() + int(ms))
            return self._base_ms

    def set(self, ms: int) -> int:
        with self._lock:
            self._rebase(ms)
            return self._base_ms

    @property
    def frozen(self) -> bool:
        return self._frozen

    def state(self) -> dict:
        with self._lock:
            return {"now_ms": self._read(), "frozen": self._frozen}
