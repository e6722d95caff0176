"""Dagster resources: the exchange, the shared rate limit and where outputs are kept."""

import os
import tempfile
from urllib.parse import urlparse

import dagster as dg
from pydantic import Field, field_validator

from bitget_assets.accounts import Account
from bitget_assets.bitget import DEMO_PRODUCT_TYPES, PRODUCT_TYPES, BitgetClient, Credentials
from bitget_assets.bitget.credentials import DEFAULT_BASE_URL
from bitget_assets.ratelimit import FileLimiter, Limiter, RedisLimiter, ThreadLimiter
from bitget_assets.storage import LocalStorage, S3Storage, Storage, parse_location


class RateLimiterResource(dg.ConfigurableResource):
    """ONE request budget per Bitget account and endpoint, shared by every process that uses it.

    The default file backend keeps a "next free slot" per account in a locked file, so every step
    process and every concurrent run on this machine draws on the same schedule; the redis backend
    keeps it in Redis, shared by every worker of a cluster.
    """

    backend: str = Field(
        default="file", description="'file' (all processes of this machine), 'redis' (all machines) or 'memory'"
    )
    # Bitget allows 10 order-history requests per second per account; spacing them at 9.5/s keeps
    # network jitter from ever landing 11 in one server-side second.
    requests_per_second: float = Field(default=9.5, gt=0)
    state_dir: str = Field(default="", description="folder of the file backend; default a machine-wide temp folder")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="server of the redis backend")
    redis_key_prefix: str = Field(default="bitget_assets:ratelimit:", description="namespace of its keys")

    def get_limiter(self) -> Limiter:
        if self.backend == "memory":
            return ThreadLimiter(self.requests_per_second)
        if self.backend == "file":
            state_dir = self.state_dir or os.path.join(tempfile.gettempdir(), "bitget_assets-ratelimit")
            return FileLimiter(self.requests_per_second, state_dir)
        if self.backend == "redis":
            return RedisLimiter(self.requests_per_second, self.redis_url, self.redis_key_prefix)
        raise ValueError(f"unknown rate-limit backend {self.backend!r} (expected 'file', 'redis' or 'memory')")


class BitgetResource(dg.ConfigurableResource):
    """A Bitget account. With no API key set, the embedded demo simulator serves as the exchange."""

    api_key: str = ""
    api_secret: str = ""
    api_passphrase: str = ""
    base_url: str = DEFAULT_BASE_URL
    product_types: list[str] = Field(default_factory=lambda: list(PRODUCT_TYPES))
    concurrency: int = Field(default=4, ge=1, le=32, description="paging chains in flight at once")
    read_timeout_s: float = 10.0

    @field_validator("product_types")
    @classmethod
    def _known_product_types(cls, value: list[str]) -> list[str]:
        # Refused here, before any request: Bitget would only answer 40034 once the scan is under way.
        unknown = [t for t in value if t not in (*PRODUCT_TYPES, *DEMO_PRODUCT_TYPES)]
        if unknown:
            raise ValueError(f"unknown product type(s) {', '.join(unknown)}; known: {', '.join(PRODUCT_TYPES)}")
        return value

    def __repr_args__(self):
        # The secret and passphrase never reach a log line or a traceback through repr().
        for name, value in super().__repr_args__():
            yield name, ("****" if name in ("api_secret", "api_passphrase") and value else value)

    def credentials(self) -> Credentials:
        if not self.api_key:
            from bitget_assets.demo import shared_demo_credentials

            return shared_demo_credentials()
        missing = [n for n in ("api_secret", "api_passphrase") if not getattr(self, n)]
        if missing:
            raise dg.Failure(f"Bitget credentials incomplete: {', '.join(missing)} not set")
        return Credentials(self.api_key, self.api_secret, self.api_passphrase, base_url=self.base_url)

    def get_client(self, limiter: Limiter) -> BitgetClient:
        return BitgetClient(self.credentials(), limiter, timeout=(3.05, self.read_timeout_s))

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
        kind, where, prefix = parse_location(self.location)
        if kind == "s3":
            # Imported here: dagster-aws costs 1.4 s of start-up, which local outputs should not pay.
            from dagster_aws.s3 import S3Resource

            s3 = S3Resource(endpoint_url=self.s3_endpoint_url, region_name=self.s3_region_name)
            return S3Storage(s3.get_client(), where, prefix)
        return LocalStorage(where)


def account_resources(account: Account, environ: dict[str, str] | None = None) -> dict[str, dg.ConfigurableResource]:
    """The `bitget` and `storage` resources of one account, from the environment.

    Secrets are bound through EnvVar, so the UI and run config show the variable's name, never its value. The
    default account with no credentials gets the embedded demo exchange; a named one must have its own.
    """
    env = os.environ if environ is None else environ
    creds = Credentials.from_env(env, prefix=account.env_var(""))  # raises, naming the variable, if incomplete
    if creds is None and account.name:
        raise ValueError(f"account {account.name!r}: set {account.env_var('API_KEY')}, "
                         f"{account.env_var('API_SECRET')} and {account.env_var('API_PASSPHRASE')}")
    settings = {
        "product_types": (account.setting("PRODUCT_TYPES", env) or ",".join(PRODUCT_TYPES)).split(","),
        "read_timeout_s": float(account.setting("READ_TIMEOUT_S", env) or "10"),
    }
    if creds is not None:
        settings |= {name: dg.EnvVar(account.env_var(var)) for name, var in (
            ("api_key", "API_KEY"), ("api_secret", "API_SECRET"), ("api_passphrase", "API_PASSPHRASE"))}
        settings["base_url"] = creds.base_url
    bitget = BitgetResource(**settings)
    storage = StorageResource(location=account.output(env), s3_endpoint_url=env.get("BITGET_S3_ENDPOINT_URL") or None)
    return {account.bitget_key: bitget, account.storage_key: storage}
