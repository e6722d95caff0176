"""Jobs. Each runs the whole partition range in ONE run (see shared/dagster-notes.md: per-partition
runs cost seconds of process start-up each), fanning out to a few process steps inside it."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg

from bitget_assets.assets import SCAN_TAG, AccountAssets, default_assets
from bitget_assets.executors import selected_executor

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

# Modules the step forkserver imports once, so every step is forked with dagster, polars and our assets loaded.
FORKSERVER_PRELOAD = ["dagster._core.executor.multiprocess", "bitget_assets.step_warmup"]
# forkserver starts step processes at ~0.6 CPU-s each instead of ~1.3 with spawn.
step_processes_executor = dg.multiprocess_executor.configured(
    {"max_concurrent": 4, "start_method": {"forkserver": {"preload_modules": FORKSERVER_PRELOAD}}}
)
# BITGET_EXECUTOR=celery sends every step, the scan included, to celery workers (bitget_assets.executors).
job_executor = selected_executor(step_processes_executor)


@dataclass(frozen=True)
class AccountJobs:
    scan_job: "UnresolvedAssetJobDefinition"
    extract_job: "UnresolvedAssetJobDefinition"
    refresh_job: "UnresolvedAssetJobDefinition"

    @property
    def all(self) -> list["UnresolvedAssetJobDefinition"]:
        return [self.scan_job, self.extract_job, self.refresh_job]


def build_jobs(assets: AccountAssets) -> AccountJobs:
    account, scan_tags = assets.account, {SCAN_TAG: assets.account.label}
    scan_job = dg.define_asset_job(
        account.object_name("scan_job"),
        selection=dg.AssetSelection.assets(assets.order_scan),
        executor_def=selected_executor(dg.in_process_executor),  # one step: a second process only adds start-up
        tags=scan_tags,
        description="Read every order the account still has on Bitget and stage it per symbol.",
    )
    extract_job = dg.define_asset_job(
        account.object_name("extract_job"),
        selection=dg.AssetSelection.assets(assets.symbol_orders, assets.sorted_orders),
        partitions_def=assets.partitions_def,
        executor_def=job_executor,
        description="Bring the selected symbol partitions up to date and rebuild sorted_orders.",
    )
    refresh_job = dg.define_asset_job(
        account.object_name("refresh_job"),
        selection=dg.AssetSelection.assets(*assets.all),
        partitions_def=assets.partitions_def,
        executor_def=job_executor,
        tags=scan_tags,
        description="Scan the account, update every registered symbol and rebuild sorted_orders.",
    )
    return AccountJobs(scan_job, extract_job, refresh_job)


def partition_range_tags(keys: list[str]) -> dict[str, str]:
    """Tags that make one run cover keys[0]..keys[-1] (dynamic partitions keep insertion order)."""
    return {
        "dagster/asset_partition_range_start": keys[0],
        "dagster/asset_partition_range_end": keys[-1],
    }


default_jobs = build_jobs(default_assets)
scan_job, extract_job, refresh_job = default_jobs.all
