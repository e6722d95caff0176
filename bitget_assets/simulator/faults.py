"""Fault injection: which request gets which failure, decided by a seeded RNG.

All probabilities are per request (their sum must stay <= 1); one draw per eligible request picks at most
one fault. A 429 burst answers this request and the next `burst_len` requests of the same account.

`release_window` models Bitget's release window (Tue-Thu 06:00-09:00 UTC, docs/api-notes.md): the answer is
one of the retryable codes below, with HTTP 400 (share `release_http400`) or HTTP 200, seeded.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields

KINDS = ("error_5xx", "burst_429", "reset", "slow", "truncated", "error_200", "release_window")
RELEASE_CODES = (
    ("45001", "Unknown error"),
    ("40725", "service return an error"),
    ("40808", "Parameter verification exception {0}"),
    ("40015", "System is abnormal, please try again later"),
    ("40200", "Server upgrade, please try again later"),
)


@dataclass(frozen=True)
class FaultConfig:
    error_5xx: float = 0.0     # HTTP 502/503 with an HTML body (a CDN/gateway error page)
    burst_429: float = 0.0     # starts a 429 burst
    reset: float = 0.0         # connection aborted without a response
    slow: float = 0.0          # answer after `slow_seconds`
    truncated: float = 0.0     # HTTP 200, body cut in half
    error_200: float = 0.0     # HTTP 200 with code 40015 (guess of a transient "system error")
    release_window: float = 0.0  # one of RELEASE_CODES (release-window mode)
    release_http400: float = 0.5  # share of release-window answers sent with HTTP 400 (others: HTTP 200)
    burst_len: int = 5
    slow_seconds: float = 15.0
    only_signed: bool = True   # spare the public endpoints

    def __post_init__(self):
        probs = [getattr(self, k) for k in KINDS]
        if any(p < 0 for p in probs) or sum(probs) > 1:
            raise ValueError("fault probabilities must be >= 0 and sum to <= 1")
        if not 0 <= self.release_http400 <= 1:
            raise ValueError("release_http400 must be between 0 and 1")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FaultConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}")
        return cls(**d)


class FaultInjector:
    def __init__(self, config: FaultConfig, seed: int = 0):
        self.config = config
        self._rng = random.Random(f"{seed}:faults")
        self._bursts: dict[str, int] = {}

    def set(self, config: FaultConfig) -> None:
        self.config = config
        self._bursts.clear()

    def decide(self, who: str, signed: bool) -> str | None:
        """The fault for one request of `who` (account uid or client IP), or None."""
        cfg = self.config
        if cfg.only_signed and not signed:
            return None
        left = self._bursts.get(who, 0)
        if left > 0:
            self._bursts[who] = left - 1
            return "burst_429"
        u = self._rng.random()
        for kind in KINDS:
            p = getattr(cfg, kind)
            if u < p:
                if kind == "burst_429":
                    self._bursts[who] = cfg.burst_len
                return kind
            u -= p
        return None

    def pick(self, choices):
        return self._rng.choice(choices)

    def release_answer(self) -> tuple[int, str, str]:
        """(HTTP status, code, msg) of one release-window answer."""
        code, msg = self._rng.choice(RELEASE_CODES)
        status = 400 if self._rng.random() < self.config.release_http400 else 200
        return status, code, msg
