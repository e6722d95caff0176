"""Applies each new account scan: registers the symbols it found as partitions and updates them from it."""

import dagster as dg

from bitget_assets.assets import AccountAssets
from bitget_assets.jobs import AccountJobs, partition_range_tags
from bitget_assets.lineage import SCAN_RUN_TAG, ScanRef

# A scan run with this tag is applied by whoever launched it (the CLI): the sensor only registers its symbols.
APPLIED_BY_LAUNCHER_TAG = "bitget/applied_by"


def scan_run_request(scan: ScanRef, scan_run, registered: list[str], new: list[str],
                     refresh_job_name: str) -> dg.RunRequest | None:
    """The run that applies a scan: every partition (a scan alone), only the new ones (refresh_job already
    applied it to the partitions it had), or none (its launcher applies it)."""
    if scan_run is not None and scan_run.tags.get(APPLIED_BY_LAUNCHER_TAG):
        return None
    keys = new if scan_run is not None and scan_run.job_name == refresh_job_name else registered + new
    if not keys:
        return None
    return dg.RunRequest(run_key=f"scan-{scan.scan_id}-{scan_run.run_id if scan_run else ''}",
                         tags={**partition_range_tags(keys), SCAN_RUN_TAG: scan_run.run_id if scan_run else ""})


def build_new_symbols_sensor(assets: AccountAssets, jobs: AccountJobs) -> dg.SensorDefinition:
    account, partitions_def = assets.account, assets.partitions_def
    scan_key = assets.order_scan.key

    @dg.sensor(
        name=account.object_name("new_symbols_sensor"),
        job=jobs.update_symbols_job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="After each account scan: adds newly traded symbols as partitions and updates the "
        "partitions from that scan in a single run.",
    )
    def new_symbols_sensor(context: dg.SensorEvaluationContext):
        after = int(context.cursor) if context.cursor else None
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=scan_key, after_storage_id=after), limit=1, ascending=False
        ).records
        if not records:
            return dg.SkipReason("no new account scan: the refresh schedule (or a materialization of "
                                 "order_scan) makes one")
        record = records[0]
        scan = ScanRef.from_event(record.event_log_entry)
        cursor = str(record.storage_id)
        if scan is None:
            return dg.SensorResult(skip_reason=dg.SkipReason("the latest scan recorded no symbols"), cursor=cursor)
        registered = list(context.instance.get_dynamic_partitions(partitions_def.name))
        known = set(registered)
        new = [k for k in scan.symbols if k not in known]  # appended in this order: one range covers them
        scan_run = context.instance.get_run_by_id(record.run_id)
        request = scan_run_request(scan, scan_run, registered, new, jobs.refresh_job.name)
        return dg.SensorResult(
            dynamic_partitions_requests=[partitions_def.build_add_request(new)] if new else [],
            run_requests=[request] if request else [],
            skip_reason=None if request or new else dg.SkipReason("scan applied already; no new symbols"),
            cursor=cursor,
        )

    return new_symbols_sensor
