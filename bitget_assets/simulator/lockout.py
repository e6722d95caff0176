"""Bitget's per-IP ceiling: `limit` requests per `window_s` over all endpoints (6,000 per minute); the request
over it locks the IP out, and every request of that IP then answers HTTP 429 until `lockout_s` after the
trigger (5 minutes since 2025-08-11, docs/api-notes.md). Requests refused during a lock-out do not count."""

from __future__ import annotations

from collections import defaultdict, deque


class IpCeiling:
    def __init__(self, limit: int, window_s: float = 60.0, lockout_s: float = 300.0):
        if limit < 1 or window_s <= 0 or lockout_s < 0:
            raise ValueError("ip limit must be >= 1, window > 0 and lockout >= 0")
        self.limit, self.window_s, self.lockout_s = limit, window_s, lockout_s
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._locked_until: dict[str, float] = {}

    def admit(self, ip: str, t: float) -> bool:
        """Decide one arrival at wall time `t` (non-decreasing per server): False = answer 429."""
        until = self._locked_until.get(ip)
        if until is not None:
            if t < until:
                return False
            del self._locked_until[ip]
        hits = self._hits[ip]
        cutoff = t - self.window_s
        while hits and hits[0] <= cutoff:
            hits.popleft()
        if len(hits) >= self.limit:
            self._locked_until[ip] = t + self.lockout_s
            hits.clear()
            return False
        hits.append(t)
        return True

    def locked_until(self, ip: str) -> float | None:
        return self._locked_until.get(ip)
