"""The exchange client, the shared rate limit and the output location, built from plain values.

The Dagster resources build theirs here, and so does the CLI's early scan (early_scan.py), which starts before
Dagster is imported: both reach the account, its budgets and its files through the same code.
"""

import json
import os
import tempfile
import threading

from bitget_assets.bitget import BitgetClient, Credentials
from bitget_assets.ratelimit import FileLimiter, Limiter, RedisLimiter, ThreadLimiter
from bitget_assets.settings import RateLimitSettings
from bitget_assets.storage import LocalStorage, S3Storage, Storage, parse_location

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

# One in-process budget per rate: every `memory` limiter of this process at that rate shares it.
_MEMORY_LIMITERS: dict[float, ThreadLimiter] = {}
_MEMORY_LOCK = threading.Lock()


def open_limiter(backend: str, requests_per_second: float, *, state_dir: str = "",
                 redis_url: str = DEFAULT_REDIS_URL, redis_key_prefix: str = "bitget_assets:ratelimit:") -> Limiter:
    if backend == "memory":
        with _MEMORY_LOCK:
            return _MEMORY_LIMITERS.setdefault(requests_per_second, ThreadLimiter(requests_per_second))
    if backend == "file":
        return FileLimiter(requests_per_second, state_dir or os.path.join(tempfile.gettempdir(),
                                                                          "bitget_assets-ratelimit"))
    if backend == "redis":
        return RedisLimiter(requests_per_second, redis_url, redis_key_prefix)
    raise ValueError(f"unknown rate-limit backend {backend!r} (expected 'file', 'redis' or 'memory')")


def open_settings_limiter(rate: RateLimitSettings) -> Limiter:
    """The limiter the settings describe; the Redis URL is read from its variable only here, at use (it may
    carry a password, so the settings keep the variable's name, and the resource an EnvVar)."""
    redis_url = os.environ.get(rate.redis_url_env, "") if rate.redis_url_env else DEFAULT_REDIS_URL
    return open_limiter(rate.backend, rate.requests_per_second, redis_url=redis_url,
                        redis_key_prefix=rate.redis_key_prefix)


def demo_credentials(demo_exchange_file: str = "") -> Credentials:
    """The demo exchange described by `demo_exchange_file` (the CLI's own), else the shared one."""
    if demo_exchange_file:
        with open(demo_exchange_file) as f:
            i = json.load(f)
        return Credentials(i["api_key"], i["api_secret"], i["passphrase"], base_url=i["base_url"])
    from bitget_assets.demo import shared_demo_credentials

    return shared_demo_credentials()


def open_client(credentials: Credentials, limiter: Limiter, *, read_timeout_s: float,
                ip_requests_per_second: float, rate_limited_patience_s: float, uid: str | None = None) -> BitgetClient:
    """A client drawing on `limiter`; with the account's UID its budgets are the UID's from the first request."""
    return BitgetClient(credentials, limiter, timeout=(3.05, read_timeout_s), uid=uid,
                        ip_requests_per_second=ip_requests_per_second or None,
                        rate_limited_patience_s=rate_limited_patience_s)


def open_storage(location: str, s3_endpoint_url: str | None = None, s3_region_name: str | None = None) -> Storage:
    """A local folder, or `s3://bucket/prefix` through dagster-aws's S3Resource."""
    kind, where, prefix = parse_location(location)
    if kind == "s3":
        # Imported here: dagster-aws is slow to import, which local outputs should not pay.
        from dagster_aws.s3 import S3Resource

        s3 = S3Resource(endpoint_url=s3_endpoint_url, region_name=s3_region_name)
        return S3Storage(s3.get_client(), where, prefix)
    return LocalStorage(where)
