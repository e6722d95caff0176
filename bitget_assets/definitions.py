"""The code location: built from the settings, one set of assets, checks, jobs, sensor and schedule per account."""

import dagster as dg

from bitget_assets.accounts import Account
from bitget_assets.assets import build_assets
from bitget_assets.checks import build_partition_check
from bitget_assets.executors import selected_executor, step_io_manager, step_processes_executor
from bitget_assets.jobs import build_jobs
from bitget_assets.resources import ProgressResource, RateLimiterResource, account_resources
from bitget_assets.schedules import build_refresh_schedule
from bitget_assets.sensors import build_new_symbols_sensor
from bitget_assets.settings import Settings, load_settings


def account_definitions(account: Account, settings: Settings) -> dg.Definitions:
    assets = build_assets(account)
    jobs = build_jobs(assets, settings.executor)
    return dg.Definitions(
        assets=assets.all,
        asset_checks=[build_partition_check(assets)],
        jobs=jobs.all,
        sensors=[build_new_symbols_sensor(assets, jobs)],
        schedules=[build_refresh_schedule(assets, jobs)],
        resources=account_resources(account, settings.s3_endpoint_url),
    )


def build_definitions(settings: Settings) -> dg.Definitions:
    """Every account's definitions plus what they share: the executor, the rate limiter (keyed per account and
    endpoint inside), live progress and step I/O."""
    shared = dg.Definitions(
        executor=selected_executor(settings.executor, step_processes_executor),
        resources={
            "rate_limiter": RateLimiterResource.from_settings(settings.rate_limit),
            "progress": ProgressResource(),
            **step_io_manager(settings),
        },
    )
    return dg.Definitions.merge(shared, *(account_definitions(a, settings) for a in settings.accounts))


defs = build_definitions(load_settings())
