"""The data clock: the simulated exchange's "now" for retention, default windows, new orders and serverTime.

It starts at an anchor (the first account's `now_ms`, or this machine's clock + `clock_skew_s`) and runs with
the wall clock unless frozen, so ground truth stays reproducible while time still passes. It is also the
server's clock: `/public/time` reports it and signature timestamps are checked against it, as Bitget checks
against its own clock (a client must correct its clock by `/public/time`, docs/api-notes.md).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence


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

    def accepts(self, ts_ms: int, tolerance_ms: int) -> bool:
        """Whether a signature timestamp is close enough to this clock. A frozen clock stood still since it was
        frozen (or last moved): any reading taken since then, carried forward by the client's own clock, passes."""
        with self._lock:
            now = self._read()
            ran = 0 if not self._frozen else int((time.time() - self._wall) * 1000)
        return now - tolerance_ms <= ts_ms <= now + ran + tolerance_ms

    @property
    def frozen(self) -> bool:
        return self._frozen

    def state(self) -> dict:
        with self._lock:
            return {"now_ms": self._read(), "frozen": self._frozen}


def timestamp_ok(clock: DataClock, ts_ms: int, tolerance_ms: int, wall_ms: int | None = None) -> bool:
    """The 40008 check: within tolerance of the server's clock, or (legacy clients, `wall_ms` given) of the
    wall clock of this machine."""
    if clock.accepts(ts_ms, tolerance_ms):
        return True
    return wall_ms is not None and abs(ts_ms - wall_ms) <= tolerance_ms


def skewed_specs(specs: Sequence, skew_s: float | None) -> list:
    """With a clock skew, every account is generated at (and the data clock starts from) this machine's clock
    plus the skew, so the server's clock is `skew_s` seconds off the wall clock."""
    if skew_s is None:
        return list(specs)
    if any(s.now_ms is not None for s in specs):
        raise ValueError("clock_skew_s anchors the data clock at this machine's clock + skew: "
                         "leave the accounts' now_ms unset")
    now_ms = int((time.time() + float(skew_s)) * 1000)
    return [dataclasses.replace(s, now_ms=now_ms) for s in specs]
