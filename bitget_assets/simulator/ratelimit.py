"""Server-side sliding-window rate limit, and the same window arithmetic for auditing a request log.

A request is accepted iff fewer than `limit` accepted requests of its key arrived in the last `window_s`
(an earlier arrival `a` still counts for `b` iff not `a <= b - window_s`). Rejected requests are not counted.
Every 1-second window [s, s + 1) then holds at most `limit` accepted requests; `max_in_window` checks that
with the identical float comparison, so audit and limiter never disagree by rounding.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Hashable, Iterable


class SlidingWindowLimiter:
    def __init__(self, window_s: float = 1.0):
        self.window_s = window_s
        self._hits: dict[Hashable, deque[float]] = defaultdict(deque)

    def allow(self, key: Hashable, t: float, limit: int | None) -> bool:
        """Decide for an arrival at wall time `t` (callers pass non-decreasing `t`)."""
        if limit is None:
            return True
        hits = self._hits[key]
        cutoff = t - self.window_s
        while hits and hits[0] <= cutoff:
            hits.popleft()
        if len(hits) >= limit:
            return False
        hits.append(t)
        return True

    def remaining(self, key: Hashable, t: float, limit: int | None) -> int | None:
        """Calls `key` has left in the window ending at `t` (None when unlimited): the
        `x-mbx-used-remain-limit` header."""
        if limit is None:
            return None
        hits = self._hits.get(key, ())
        cutoff = t - self.window_s
        return max(0, limit - sum(1 for h in hits if h > cutoff))

    def reset(self) -> None:
        self._hits.clear()


def max_in_window(times: Iterable[float], window_s: float = 1.0) -> int:
    """Largest number of `times` inside any half-open window [s, s + window_s)."""
    ts = sorted(times)
    best = left = 0
    for right, b in enumerate(ts):
        cutoff = b - window_s
        while ts[left] <= cutoff:
            left += 1
        best = max(best, right - left + 1)
    return best
