"""The request log: one entry per non-admin request, in arrival order.

Entries never contain headers, keys, signatures or passphrases: only what an auditor needs to check paging
and the rate limit (`t` is the arrival wall time, the same float the limiter decided on).
"""

from __future__ import annotations

import json
import threading


class RequestLog:
    def __init__(self, path: str | None = None):
        self._entries: list[dict] = []
        self._lock = threading.Lock()
        self._fh = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115 - closed in close()

    def append(self, entry: dict) -> None:
        with self._lock:
            self._entries.append(entry)
            if self._fh is not None:
                self._fh.write(json.dumps(entry, separators=(",", ":")) + "\n")
                self._fh.flush()

    def entries(self, since: float | None = None) -> list[dict]:
        """Entries with arrival time after `since` (all when None)."""
        with self._lock:
            items = list(self._entries)
        return items if since is None else [e for e in items if e["t"] > since]

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
