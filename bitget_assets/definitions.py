"""Assembles the code location; everything it names is defined in its own module."""

import os

import dagster as dg
from dagster_aws.s3 import S3Resource

from bitget_assets.assets import order_scan, sorted_orders, symbol_orders
from bitget_assets.bitget import Credentials
from bitget_assets.checks import partitions_hold_only_their_symbol
from bitget_assets.executors import step_io_manager
from bitget_assets.jobs import extract_job, job_executor, refresh_job, scan_job
from bitget_assets.resources import BitgetResource, RateLimiterResource, StorageResource
from bitget_assets.schedules import refresh_schedule
from bitget_assets.sensors import new_symbols_sensor


def bitget_resource() -> BitgetResource:
    """Real credentials from the environment when set; otherwise the embedded demo simulator."""
    if Credentials.from_env() is None:  # raises, naming the variable, when only some are set
        return BitgetResource()
    return BitgetResource(
        api_key=dg.EnvVar("BITGET_API_KEY"),
        api_secret=dg.EnvVar("BITGET_API_SECRET"),
        api_passphrase=dg.EnvVar("BITGET_API_PASSPHRASE"),
        base_url=os.environ.get("BITGET_BASE_URL", "https://api.bitget.com"),
        product_types=os.environ.get("BITGET_PRODUCT_TYPES", "USDT-FUTURES,COIN-FUTURES,USDC-FUTURES").split(","),
        read_timeout_s=float(os.environ.get("BITGET_READ_TIMEOUT_S", "10")),
    )


defs = dg.Definitions(
    assets=[order_scan, symbol_orders, sorted_orders],
    asset_checks=[partitions_hold_only_their_symbol],
    jobs=[scan_job, extract_job, refresh_job],
    sensors=[new_symbols_sensor],
    schedules=[refresh_schedule],
    executor=job_executor,
    resources={
        "bitget": bitget_resource(),
        "rate_limiter": RateLimiterResource(
            backend=os.environ.get("BITGET_RATE_LIMIT_BACKEND", "file"),
            requests_per_second=float(os.environ.get("BITGET_REQUESTS_PER_SECOND", "9.5")),
            # An EnvVar keeps a password in the URL out of the UI.
            redis_url=dg.EnvVar("BITGET_REDIS_URL")
            if os.environ.get("BITGET_REDIS_URL")
            else "redis://127.0.0.1:6379/0",
            redis_key_prefix=os.environ.get("BITGET_REDIS_KEY_PREFIX", "bitget_assets:ratelimit:"),
        ),
        "storage": StorageResource(
            location=os.environ.get("BITGET_OUTPUT", "data"),
            s3=S3Resource(endpoint_url=os.environ.get("BITGET_S3_ENDPOINT_URL") or None),
        ),
        **step_io_manager(),  # BITGET_IO_MANAGER_BASE: step results on S3 or a shared folder, for workers anywhere
    },
)
