"""Dagster resources: the exchange, the shared rate limit, where outputs are kept, and live progress."""

from urllib.parse import urlparse

import dagster as dg
from pydantic import Field, field_validator

from bitget_assets.accounts import Account
from bitget_assets.bitget import DEMO_PRODUCT_TYPES, PRODUCT_TYPES, BitgetClient, Credentials
from bitget_assets.bitget.credentials import DEFAULT_BASE_URL
from bitget_assets.connections import (
    DEFAULT_REDIS_URL,
    demo_credentials,
    open_client,
    open_limiter,
    open_storage,
)
from bitget_assets.progress import ProgressSender
from bitget_assets.ratelimit import Limiter
from bitget_assets.scan import DEFAULT_CONCURRENCY
from bitget_assets.settings import STREAMS, RateLimitSettings
from bitget_assets.storage import Storage


class RateLimiterResource(dg.ConfigurableResource):
    """ONE request budget per Bitget account and endpoint, shared by every process that uses it.

    The default file backend keeps a "next free slot" per account in a locked file, so every step
    process and every concurrent run on this machine draws on the same schedule; the redis backend
    keeps it in Redis, shared by every worker of a cluster; `memory` shares it between the threads of one process.
    """

    backend: str = Field(
        default="file", description="'file' (all processes of this machine), 'redis' (all machines) or 'memory'"
    )
    # Bitget allows 10 order-history requests per second per account; spacing them at 9.5/s keeps
    # network jitter from ever landing 11 in one server-side second.
    requests_per_second: float = Field(default=9.5, gt=0)
    state_dir: str = Field(default="", description="folder of the file backend; default a machine-wide temp folder")
    redis_url: str = Field(default=DEFAULT_REDIS_URL, description="server of the redis backend")
    redis_key_prefix: str = Field(default="bitget_assets:ratelimit:", description="namespace of its keys")

    def get_limiter(self) -> Limiter:
        return open_limiter(self.backend, self.requests_per_second, state_dir=self.state_dir,
                            redis_url=self.redis_url, redis_key_prefix=self.redis_key_prefix)

    @classmethod
    def from_settings(cls, settings: RateLimitSettings) -> "RateLimiterResource":
        # An EnvVar keeps a password in the URL out of the UI.
        url = dg.EnvVar(settings.redis_url_env) if settings.redis_url_env else DEFAULT_REDIS_URL
        return cls(backend=settings.backend, requests_per_second=settings.requests_per_second, redis_url=url,
                   redis_key_prefix=settings.redis_key_prefix)


class BitgetResource(dg.ConfigurableResource):
    """A Bitget account. With no API key set, a demo simulator serves as the exchange: the one described by
    `demo_exchange_file` (the CLI's own), else a shared one started on first use."""

    api_key: str = ""
    api_secret: str = ""
    api_passphrase: str = ""
    base_url: str = DEFAULT_BASE_URL
    product_types: list[str] = Field(default_factory=lambda: list(PRODUCT_TYPES))
    streams: list[str] = Field(default_factory=lambda: ["orders", "plan_orders"])
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1, le=32, description="paging chains in flight at once")
    read_timeout_s: float = 10.0
    ip_requests_per_second: float = Field(default=90.0, ge=0, description="budget over every endpoint of this IP; "
                                          "0 = none (Bitget locks an IP out above 6,000 requests a minute)")
    rate_limited_patience_s: float = Field(default=360.0, gt=0, description="how long to keep retrying through "
                                           "consecutive 429s (Bitget's IP lock-out lasts 5 minutes)")
    demo_exchange_file: str = Field(default="", description="JSON file describing a demo exchange (no API key)")

    @field_validator("product_types")
    @classmethod
    def _known_product_types(cls, value: list[str]) -> list[str]:
        # Refused here, before any request: Bitget would only answer 40034 once the scan is under way.
        unknown = [t for t in value if t not in (*PRODUCT_TYPES, *DEMO_PRODUCT_TYPES)]
        if unknown:
            raise ValueError(f"unknown product type(s) {', '.join(unknown)}; known: {', '.join(PRODUCT_TYPES)}")
        return value

    @field_validator("streams")
    @classmethod
    def _known_streams(cls, value: list[str]) -> list[str]:
        unknown = [s for s in value if s not in STREAMS]
        if unknown:
            raise ValueError(f"unknown stream(s) {', '.join(unknown)}; known: {', '.join(STREAMS)}")
        return value

    def __repr_args__(self):
        # The secret and passphrase never reach a log line or a traceback through repr().
        for name, value in super().__repr_args__():
            yield name, ("****" if name in ("api_secret", "api_passphrase") and value else value)

    def credentials(self) -> Credentials:
        if not self.api_key:
            return demo_credentials(self.demo_exchange_file)
        missing = [n for n in ("api_secret", "api_passphrase") if not getattr(self, n)]
        if missing:
            raise dg.Failure(f"Bitget credentials incomplete: {', '.join(missing)} not set")
        return Credentials(self.api_key, self.api_secret, self.api_passphrase, base_url=self.base_url)

    def get_client(self, limiter: Limiter, uid: str | None = None) -> BitgetClient:
        """A client drawing on `limiter`; with the account's UID its budgets are the UID's from the first request."""
        return open_client(self.credentials(), limiter, read_timeout_s=self.read_timeout_s, uid=uid,
                           ip_requests_per_second=self.ip_requests_per_second,
                           rate_limited_patience_s=self.rate_limited_patience_s)

    @property
    def exchange_label(self) -> str:
        """What the UI shows as the data source, so nobody mistakes demo data for their account."""
        if not self.api_key:
            return "embedded Bitget simulator (demo account)"
        host = urlparse(self.base_url).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1"):
            return f"Bitget simulator at {self.base_url}"
        return f"Bitget live API ({self.base_url})"


class StorageResource(dg.ConfigurableResource):
    """A local folder (default `data/`) or `s3://bucket/prefix` through dagster-aws's S3Resource."""

    location: str = "data"
    s3_endpoint_url: str | None = Field(default=None, description="any S3-compatible server; default AWS")
    s3_region_name: str | None = None

    def get_storage(self) -> Storage:
        return open_storage(self.location, self.s3_endpoint_url, self.s3_region_name)


class ProgressResource(dg.ConfigurableResource):
    """Where steps report live counts (pages, orders, symbols done): a UDP address on loopback that the
    `bitget-orders` command listens on, or "" (the default, in the UI and on schedules) for nowhere."""

    address: str = Field(default="", description="host:port of a progress listener; empty = off")

    def sender(self, stage: str) -> ProgressSender:
        return ProgressSender(self.address, stage)


def _plain_fields(account: Account) -> dict:
    """The `bitget` resource's fields that are plain values (not credentials)."""
    return {
        "product_types": list(account.product_types),
        "streams": list(account.streams),
        "read_timeout_s": account.read_timeout_s,
        "base_url": account.base_url,
        "ip_requests_per_second": account.ip_requests_per_second,
        "rate_limited_patience_s": account.rate_limited_patience_s,
    }


def bitget_run_config(account: Account, demo_exchange_file: str = "") -> dict:
    """The account's `bitget` resource as run config. Run config replaces a resource's whole configuration, so it
    carries every field, the credentials as references to their variables (never their values)."""
    config = _plain_fields(account)
    if account.credential_vars:
        config |= {name: {"env": var} for name, var in
                   zip(("api_key", "api_secret", "api_passphrase"), account.credential_vars, strict=True)}
    elif demo_exchange_file:
        config["demo_exchange_file"] = demo_exchange_file
    return config


def account_resources(account: Account, s3_endpoint_url: str | None = None) -> dict[str, dg.ConfigurableResource]:
    """The `bitget` and `storage` resources of one account.

    Secrets are bound through EnvVar, so the UI and run config show the variable's name, never its value. An
    account with no credentials gets a demo exchange.
    """
    fields = _plain_fields(account)
    if account.credential_vars:
        key, secret, passphrase = (dg.EnvVar(v) for v in account.credential_vars)
        fields |= {"api_key": key, "api_secret": secret, "api_passphrase": passphrase}
    storage = StorageResource(location=account.output, s3_endpoint_url=s3_endpoint_url)
    return {account.bitget_key: BitgetResource(**fields), account.storage_key: storage}
