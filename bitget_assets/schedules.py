"""Refresh on a cron: the schedule scans the account; new_symbols_sensor takes the scan on from there."""

import dagster as dg

from bitget_assets.assets import AccountAssets
from bitget_assets.jobs import AccountJobs


def build_refresh_schedule(assets: AccountAssets, jobs: AccountJobs) -> dg.ScheduleDefinition:
    # The scan needs no partition, so the first tick on a fresh instance works too: the sensor then registers
    # the symbols it found and updates every partition from it.
    return dg.ScheduleDefinition(
        name=assets.account.object_name("refresh_schedule"),
        cron_schedule=assets.account.refresh_cron,
        job=jobs.scan_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Scan the account for new and changed orders; new_symbols_sensor applies each scan.",
    )
