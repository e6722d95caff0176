"""Jobs. Each runs the whole partition range in ONE run (see shared/dagster-notes.md: per-partition
runs cost seconds of process start-up each), fanning out to a few process steps inside it."""

import dagster as dg

from bitget_assets.assets import order_scan, sorted_orders, symbol_orders
from bitget_assets.executors import selected_executor
from bitget_assets.partitions import symbols_partitions_def

# forkserver starts step processes at ~0.6 CPU-s each instead of ~1.3 with spawn, and preloading the
# code location means every step is forked with dagster, polars and our assets already imported.
step_processes_executor = dg.multiprocess_executor.configured(
    {"max_concurrent": 4, "start_method": {"forkserver": {"preload_modules": ["bitget_assets.definitions"]}}}
)
# BITGET_EXECUTOR=celery sends every step, the scan included, to celery workers (bitget_assets.executors).
job_executor = selected_executor(step_processes_executor)

scan_job = dg.define_asset_job(
    "scan_job",
    selection=dg.AssetSelection.assets(order_scan),
    executor_def=selected_executor(dg.in_process_executor),  # one step: a second process only adds start-up
    tags={"bitget/scan": "true"},
    description="Read every order the account still has on Bitget and stage it per symbol.",
)

extract_job = dg.define_asset_job(
    "extract_job",
    selection=dg.AssetSelection.assets(symbol_orders, sorted_orders),
    partitions_def=symbols_partitions_def,
    executor_def=job_executor,
    description="Bring the selected symbol partitions up to date and rebuild sorted_orders.",
)

refresh_job = dg.define_asset_job(
    "refresh_job",
    selection=dg.AssetSelection.assets(order_scan, symbol_orders, sorted_orders),
    partitions_def=symbols_partitions_def,
    executor_def=job_executor,
    tags={"bitget/scan": "true"},
    description="Scan the account, update every registered symbol and rebuild sorted_orders.",
)


def partition_range_tags(keys: list[str]) -> dict[str, str]:
    """Tags that make one run cover keys[0]..keys[-1] (dynamic partitions keep insertion order)."""
    return {
        "dagster/asset_partition_range_start": keys[0],
        "dagster/asset_partition_range_end": keys[-1],
    }
