"""Server-wide settings of the simulator."""

from __future__ import annotations

from dataclasses import dataclass, field

from .faults import FaultConfig

EMPTY_STYLES = ("mixed", "list", "null")


@dataclass
class SimulatorConfig:
    rate_limit: int | None = 10          # accepted requests per second per account UID and endpoint
    public_rate_limit: int | None = 20   # per client IP and endpoint (public endpoints)
    max_span_days: float = 90            # endTime - startTime beyond this -> 40705
    retention_days: float = 90           # older orders are never returned; older startTime -> 40704
    latency: tuple[float, float] | None = None  # uniform seconds added to every non-admin request
    faults: FaultConfig = field(default_factory=FaultConfig)
    seed: int = 0
    request_log_path: str | None = None
    admin_token: str | None = None       # random when None
    frozen: bool = False                 # data clock frozen at the anchor
    timestamp_tolerance_s: float = 30
    empty_style: str = "mixed"           # empty page: "mixed" (seeded choice per request), "list", "null"
    host: str = "127.0.0.1"
    port: int = 0                        # 0 = random free port

    def __post_init__(self):
        if self.empty_style not in EMPTY_STYLES:
            raise ValueError(f"empty_style must be one of {EMPTY_STYLES}")
        if self.latency is not None:
            lo, hi = self.latency
            if not 0 <= lo <= hi:
                raise ValueError("latency must be (low, high) with 0 <= low <= high")
            self.latency = (float(lo), float(hi))
