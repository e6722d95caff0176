"""One Bitget account's settings, and the names its Dagster objects get.

The default account (name "") keeps the plain names: `order_scan`, `symbol_orders`, `sorted_orders`, the
`symbols` partitions, the `bitget` and `storage` resources. A named account (BITGET_ACCOUNTS=alpha,...) gets its
own asset-key prefix, partitions, jobs, sensor, schedule, resources, output and rate budget, so one account's
trouble never touches another. Settings are read by `bitget_assets.settings`, never here.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bitget_assets.bitget import PRODUCT_TYPES
from bitget_assets.bitget.credentials import DEFAULT_BASE_URL

if TYPE_CHECKING:
    import dagster as dg


def account_env_var(name: str, setting: str) -> str:
    """BITGET_<SETTING> for the default account, BITGET_<NAME>_<SETTING> for a named one."""
    return f"BITGET_{name.upper()}_{setting}" if name else f"BITGET_{setting}"


@dataclass(frozen=True)
class Account:
    name: str = ""  # "" is the default account
    # Names of the variables holding key, secret and passphrase (bound as EnvVar); None: the demo exchange.
    credential_vars: tuple[str, str, str] | None = None
    base_url: str = DEFAULT_BASE_URL
    product_types: tuple[str, ...] = PRODUCT_TYPES
    streams: tuple[str, ...] = ("orders", "plan_orders")
    output: str = "data"
    read_timeout_s: float = 10.0
    refresh_cron: str = "*/15 * * * *"
    stale_after_minutes: int = 60
    import_tz: str | None = None  # the zone Bitget's website export files were written in (BITGET_IMPORT_TZ)
    # Requests per second over every endpoint from this machine's IP (Bitget locks an IP out above 6,000/min);
    # 0 = no IP budget. How long the client keeps retrying through consecutive 429s (the lock-out lasts 5 min).
    ip_requests_per_second: float = 90.0
    rate_limited_patience_s: float = 360.0

    @property
    def label(self) -> str:
        return self.name or "default"

    def object_name(self, base: str) -> str:
        """Name of one of this account's jobs, ops, sensors, schedules, partition sets or resources."""
        return f"{self.name}__{base}" if self.name else base

    def asset_key(self, base: str) -> "dg.AssetKey":
        import dagster as dg  # here: settings, and the CLI's early scan, are read before Dagster is imported

        return dg.AssetKey([self.name, base] if self.name else [base])

    @property
    def key_prefix(self) -> list[str]:
        return [self.name] if self.name else []

    @property
    def bitget_key(self) -> str:
        return self.object_name("bitget")

    @property
    def storage_key(self) -> str:
        return self.object_name("storage")

    @property
    def partitions_name(self) -> str:
        return self.object_name("symbols")
