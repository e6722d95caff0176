"""Refresh everything on a cron: scan the account, update every symbol, rebuild sorted_orders."""

import os

import dagster as dg

from bitget_assets.assets import AccountAssets, default_assets
from bitget_assets.jobs import AccountJobs, default_jobs, partition_range_tags

REFRESH_CRON = os.environ.get("BITGET_REFRESH_CRON", "*/15 * * * *")


def build_refresh_schedule(assets: AccountAssets, jobs: AccountJobs) -> dg.ScheduleDefinition:
    partitions_name = assets.partitions_def.name

    @dg.schedule(
        name=assets.account.object_name("refresh_schedule"),
        cron_schedule=REFRESH_CRON,
        job_name=jobs.refresh_job.name,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Full refresh; symbols first seen by the scan are added by new_symbols_sensor.",
    )
    def refresh_schedule(context: dg.ScheduleEvaluationContext):
        keys = context.instance.get_dynamic_partitions(partitions_name)
        if not keys:
            # Nothing registered yet: only the scan can run; the sensor takes it from there.
            return dg.RunRequest(job_name=jobs.scan_job.name, run_key=None)
        return dg.RunRequest(run_key=None, tags=partition_range_tags(keys))

    return refresh_schedule


refresh_schedule = build_refresh_schedule(default_assets, default_jobs)
