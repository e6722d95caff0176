"""Assembles the code location: every configured account's assets, checks, jobs, sensor and schedule."""

import os

import dagster as dg

from bitget_assets.accounts import DEFAULT_ACCOUNT, configured_accounts
from bitget_assets.assets import build_assets, default_assets
from bitget_assets.checks import build_partition_check
from bitget_assets.executors import step_io_manager
from bitget_assets.jobs import build_jobs, default_jobs, job_executor
from bitget_assets.resources import RateLimiterResource, account_resources
from bitget_assets.schedules import build_refresh_schedule
from bitget_assets.sensors import build_new_symbols_sensor


def account_definitions(account) -> dg.Definitions:
    assets = default_assets if account == DEFAULT_ACCOUNT else build_assets(account)
    jobs = default_jobs if account == DEFAULT_ACCOUNT else build_jobs(assets)
    return dg.Definitions(
        assets=assets.all,
        asset_checks=[build_partition_check(assets)],
        jobs=jobs.all,
        sensors=[build_new_symbols_sensor(assets, jobs)],
        schedules=[build_refresh_schedule(assets, jobs)],
        resources=account_resources(account),
    )


def shared_definitions() -> dg.Definitions:
    """What every account shares: the executor, the rate limiter (keyed per account inside) and step I/O."""
    rate_limiter = RateLimiterResource(
        backend=os.environ.get("BITGET_RATE_LIMIT_BACKEND", "file"),
        requests_per_second=float(os.environ.get("BITGET_REQUESTS_PER_SECOND", "9.5")),
        # An EnvVar keeps a password in the URL out of the UI.
        redis_url=dg.EnvVar("BITGET_REDIS_URL") if os.environ.get("BITGET_REDIS_URL") else "redis://127.0.0.1:6379/0",
        redis_key_prefix=os.environ.get("BITGET_REDIS_KEY_PREFIX", "bitget_assets:ratelimit:"),
    )
    # BITGET_IO_MANAGER_BASE: step results on S3 or a shared folder, for workers anywhere.
    return dg.Definitions(executor=job_executor, resources={"rate_limiter": rate_limiter, **step_io_manager()})


defs = dg.Definitions.merge(shared_definitions(), *(account_definitions(a) for a in configured_accounts()))
