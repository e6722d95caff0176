"""Jobs of one account. Each runs the whole partition range in ONE run (per-partition runs cost seconds of
process start-up each: docs/performance.md), fanning out to a few process steps inside it."""

from dataclasses import dataclass
from typing import Any

import dagster as dg

from bitget_assets.assets import SCAN_TAG, AccountAssets
from bitget_assets.executors import selected_executor, step_processes_executor
from bitget_assets.settings import ExecutorSettings


@dataclass(frozen=True)
class AccountJobs:
    # What define_asset_job returns (its class is not exported by dagster).
    scan_job: Any
    update_symbols_job: Any
    refresh_job: Any

    @property
    def all(self) -> list:
        return [self.scan_job, self.update_symbols_job, self.refresh_job]


def build_jobs(assets: AccountAssets, executor: ExecutorSettings) -> AccountJobs:
    account, scan_tags = assets.account, {SCAN_TAG: assets.account.label}
    steps = selected_executor(executor, step_processes_executor)
    scan_job = dg.define_asset_job(
        account.object_name("scan_job"),
        selection=dg.AssetSelection.assets(assets.order_scan),
        executor_def=selected_executor(executor, dg.in_process_executor),  # one step: a process only adds start-up
        tags=scan_tags,
        description="Read every order the account still has on Bitget and stage it per symbol; "
        "new_symbols_sensor then registers new symbols and updates the partitions from it.",
    )
    update_symbols_job = dg.define_asset_job(
        account.object_name("update_symbols_job"),
        selection=dg.AssetSelection.assets(assets.symbol_partitions, assets.imported_orders, assets.sorted_outputs),
        partitions_def=assets.partitions_def,
        executor_def=steps,
        description="Bring the selected symbol partitions up to date from an account scan (the run's "
        "bitget/scan_run_id tag, else the latest scan newer than each partition) and rebuild sorted_orders.",
    )
    refresh_job = dg.define_asset_job(
        account.object_name("refresh_job"),
        selection=dg.AssetSelection.assets(*assets.all),
        partitions_def=assets.partitions_def,
        executor_def=steps,
        tags=scan_tags,
        description="Scan the account, update every selected symbol from that scan and rebuild sorted_orders, "
        "in one run.",
    )
    return AccountJobs(scan_job, update_symbols_job, refresh_job)


def partition_range_tags(keys: list[str]) -> dict[str, str]:
    """Tags that make one run cover keys[0]..keys[-1] (dynamic partitions keep insertion order)."""
    return {
        "dagster/asset_partition_range_start": keys[0],
        "dagster/asset_partition_range_end": keys[-1],
    }
