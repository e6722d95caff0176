"""Refresh everything on a cron: scan the account, update every symbol, rebuild sorted_orders."""

import os

import dagster as dg

from bitget_assets.jobs import partition_range_tags, refresh_job, scan_job
from bitget_assets.partitions import symbols_partitions_def

REFRESH_CRON = os.environ.get("BITGET_REFRESH_CRON", "*/15 * * * *")


@dg.schedule(
    cron_schedule=REFRESH_CRON,
    job_name=refresh_job.name,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Full refresh; symbols first seen by the scan are added by new_symbols_sensor.",
)
def refresh_schedule(context: dg.ScheduleEvaluationContext):
    keys = context.instance.get_dynamic_partitions(symbols_partitions_def.name)
    if not keys:
        # Nothing registered yet: only the scan can run; the sensor takes it from there.
        return dg.RunRequest(job_name=scan_job.name, run_key=None)
    return dg.RunRequest(run_key=None, tags=partition_range_tags(keys))
