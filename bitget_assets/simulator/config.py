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
    fills_span_days: float = 90          # /mix/order/fills: beyond this -> 40705
    fill_history_span_days: float = 7    # /mix/order/fill-history: beyond this -> 00001
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
    # The server's clock (data clock, /public/time, timestamp check) is this many seconds off this machine's
    # clock; None = anchored at the accounts' now_ms. See clock.py.
    clock_skew_s: float | None = None
    accept_wall_clock: bool = True       # also accept timestamps near this machine's clock (not with a skew)
    v3_rate_limit: int | None = 20       # v3 endpoints, per UID and endpoint per second
    info_rate_limit: int | None = 1      # /api/v2/spot/account/info, per UID per second
    v3_max_span_days: float = 30         # v3 history endTime - startTime beyond this -> 00001
    account_modes: dict = field(default_factory=dict)  # account name -> "classic" (default) / "unified"
    mode_transition_s: float = 60.0      # how long upgrading/switching lasts (admin may override per switch)
    ip_limit: int | None = None          # requests per client IP per ip_window_s over all endpoints (Bitget 6000)
    ip_window_s: float = 60.0
    ip_lockout_s: float = 300.0          # HTTP 429 for everything from that IP this long after the trigger

    def __post_init__(self):
        if self.empty_style not in EMPTY_STYLES:
            raise ValueError(f"empty_style must be one of {EMPTY_STYLES}")
        if self.mode_transition_s < 0 or self.v3_max_span_days <= 0 or self.ip_window_s <= 0 or self.ip_lockout_s < 0:
            raise ValueError("mode_transition_s and ip_lockout_s must be >= 0, v3_max_span_days and ip_window_s > 0")
        if self.latency is not None:
            lo, hi = self.latency
            if not 0 <= lo <= hi:
                raise ValueError("latency must be (low, high) with 0 <= low <= high")
            self.latency = (float(lo), float(hi))
