"""Live progress shared between the step processes of a run and the CLI that shows it.

Each process writes its own small JSON file (atomically, at most a few times a second) into the
folder named by BITGET_PROGRESS_DIR; the CLI sums them. Without that variable nothing is written.
"""

import json
import os
import threading
import time
from pathlib import Path

PROGRESS_ENV = "BITGET_PROGRESS_DIR"


class ProgressReporter:
    def __init__(self, stage: str, min_interval_s: float = 0.25):
        folder = os.environ.get(PROGRESS_ENV)
        self.path = Path(folder) / f"{stage}-{os.getpid()}-{threading.get_ident()}.json" if folder else None
        self.counts: dict[str, float] = {}
        self.min_interval_s = min_interval_s
        self._last = 0.0
        self._lock = threading.Lock()

    def add(self, **counts: float) -> None:
        with self._lock:
            for name, n in counts.items():
                self.counts[name] = self.counts.get(name, 0) + n
            if self.path and time.monotonic() - self._last >= self.min_interval_s:
                self._flush()

    def set(self, **values: float) -> None:
        with self._lock:
            self.counts.update(values)
            if self.path:
                self._flush()

    def close(self) -> None:
        with self._lock:
            if self.path:
                self._flush()

    def _flush(self) -> None:
        self._last = time.monotonic()
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.counts))
        os.replace(tmp, self.path)


def read_progress(folder: str | os.PathLike) -> dict[str, float]:
    """Sum of every process's counters."""
    total: dict[str, float] = {}
    for path in Path(folder).glob("*.json"):
        try:
            counts = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a file being replaced right now: read it next time
        for name, n in counts.items():
            total[name] = total.get(name, 0) + n
    return total
