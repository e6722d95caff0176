"""Registers symbols found by the latest account scan as partitions and requests one run for them."""

import dagster as dg

from bitget_assets import history_store as hs
from bitget_assets.assets import AccountAssets, default_assets
from bitget_assets.jobs import AccountJobs, default_jobs, partition_range_tags


def new_symbol_keys(manifest: dict | None, registered: set[str]) -> list[str]:
    """Symbols in the scan that have no partition yet, in the scan's order."""
    return [k for k in (manifest or {}).get("symbols", {}) if k not in registered]


def build_new_symbols_sensor(assets: AccountAssets, jobs: AccountJobs) -> dg.SensorDefinition:
    account, partitions_def = assets.account, assets.partitions_def

    @dg.sensor(
        name=account.object_name("new_symbols_sensor"),
        job=jobs.extract_job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        required_resource_keys={account.storage_key},
        description="Adds newly traded symbols as partitions and materializes them in a single run.",
    )
    def new_symbols_sensor(context: dg.SensorEvaluationContext, **resources):
        # The daemon hands the account's storage over on context.resources, a direct call as a keyword.
        storage = resources.get(account.storage_key) or getattr(context.resources, account.storage_key)
        manifest = hs.read_json(storage.get_storage(), hs.SCAN_MANIFEST)
        if not manifest:
            return dg.SkipReason("no account scan yet: materialize order_scan (or wait for the refresh schedule)")
        if manifest["scan_id"] == context.cursor:
            return dg.SkipReason(f"scan {manifest['scan_id'][:8]} already handled")
        registered = set(context.instance.get_dynamic_partitions(partitions_def.name))
        new = new_symbol_keys(manifest, registered)
        if not new:
            return dg.SensorResult(skip_reason=dg.SkipReason("no new symbols"), cursor=manifest["scan_id"])
        # New keys are appended in this order, so one range-tagged run covers exactly them.
        return dg.SensorResult(
            dynamic_partitions_requests=[partitions_def.build_add_request(new)],
            run_requests=[dg.RunRequest(run_key=f"new-symbols-{manifest['scan_id']}",
                                        tags=partition_range_tags(new))],
            cursor=manifest["scan_id"],
        )

    return new_symbols_sensor


new_symbols_sensor = build_new_symbols_sensor(default_assets, default_jobs)
