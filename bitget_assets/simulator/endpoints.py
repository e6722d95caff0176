"""The routes beyond v2 orders (v3 orders, account info) and each signed route's per-UID rate limit."""

from __future__ import annotations

from collections.abc import Mapping

from .accounts import Account
from .identity import INFO_PATH, SETTINGS_PATH, account_info, account_settings
from .modes import AccountModes
from .v3 import V3Orders
from .v3activity import V3Activity

V3_HISTORY = "/api/v3/trade/history-orders"
V3_UNFILLED = "/api/v3/trade/unfilled-orders"
V3_STRATEGY_HISTORY = "/api/v3/trade/history-strategy-orders"
V3_STRATEGY_UNFILLED = "/api/v3/trade/unfilled-strategy-orders"
V3_FILLS = "/api/v3/trade/fills"
EXTRA_ROUTES = {  # path -> (endpoint kind, signed)
    INFO_PATH: ("account_info", True),
    SETTINGS_PATH: ("v3_settings", True),
    V3_HISTORY: ("v3_history", True),
    V3_UNFILLED: ("v3_unfilled", True),
    V3_STRATEGY_HISTORY: ("v3_strategy_history", True),
    V3_STRATEGY_UNFILLED: ("v3_strategy_unfilled", True),
    V3_FILLS: ("v3_fills", True),
}
EXTRA_KINDS = frozenset(kind for kind, _ in EXTRA_ROUTES.values())


def signed_limit(path: str, config) -> int | None:
    """Accepted requests per second per UID on `path`: v3 20/s, account info 1/s, v2 orders `rate_limit`."""
    if path.startswith("/api/v3/"):
        return config.v3_rate_limit
    if path == INFO_PATH:
        return config.info_rate_limit
    return config.rate_limit


class ExtraEndpoints:
    def __init__(self, v3: V3Orders, modes: AccountModes):
        self.v3, self.modes = v3, modes
        self.activity = V3Activity(v3)

    def answer(self, kind: str, account: Account, q: Mapping[str, str], now_ms: int) -> bytes:
        if kind == "account_info":
            return account_info(account, now_ms)
        if kind == "v3_settings":
            return account_settings(account, self.modes.mode(account.name), now_ms)
        if kind == "v3_strategy_history":
            return self.activity.strategy_history(account, q)
        if kind == "v3_strategy_unfilled":
            return self.activity.strategy_unfilled(account, q)
        if kind == "v3_fills":
            return self.activity.fills(account, q)
        return self.v3.orders_page(account, q, pending=kind == "v3_unfilled")
