"""How long the client keeps trying, and how long it waits in between (docs/api-notes.md, "Live exchange").

Three kinds of trouble, three bounds:
- broken answers and "please retry" codes (5xx, resets, truncated bodies, the release window's 45001/40725/40015/
  40200): `max_attempts` attempts with random exponential backoff;
- 40808, which the release window sends but which is also a real parameter error: `ambiguous_retries` retries;
- 429: a pause of the shared budget that doubles from `rate_limited_pause_s` up to `rate_limited_max_pause_s`,
  for as long as `rate_limited_patience_s` (Bitget's lock-out lasts 5 minutes: the default waits longer).
"""

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    max_backoff_s: float = 8.0
    ambiguous_retries: int = 2
    rate_limited_pause_s: float = 1.0
    rate_limited_max_pause_s: float = 60.0
    rate_limited_patience_s: float = 360.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.ambiguous_retries < 0:
            raise ValueError(f"ambiguous_retries must be >= 0, got {self.ambiguous_retries}")
        for name in ("max_backoff_s", "rate_limited_pause_s", "rate_limited_max_pause_s", "rate_limited_patience_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    def backoff_s(self, failures: int) -> float:
        """Random exponential wait after the `failures`-th failure (full jitter: many threads do not align)."""
        return random.uniform(0, min(self.max_backoff_s, 0.25 * 2 ** min(failures, 32)))

    def rate_limited_pause(self, in_a_row: int) -> float:
        """Pause after the `in_a_row`-th consecutive 429 of one request: 1, 2, 4, ... s up to the cap."""
        return min(self.rate_limited_max_pause_s, self.rate_limited_pause_s * 2 ** min(in_a_row - 1, 32))
