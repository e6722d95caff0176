"""Which account scan a partition step takes in, found through Dagster's own records, never by file age.

An `order_scan` materialization carries what a step needs of its scan in its metadata: the scan id (the folder
its orders are staged in), the exchange time it read up to, and one row per symbol. A step finds that
materialization by lineage: the scan run named by the run's `bitget/scan_run_id` tag (the sensor and the CLI set
it), else this run's own scan (refresh_job), else the latest scan, which a partition takes in only if it is
newer than the partition's last read (a UI materialization with no scan in its run). The tag's value `none`
makes every selected symbol read from the API instead.
"""

from dataclasses import dataclass

import dagster as dg
import polars as pl

from bitget_assets import extraction
from bitget_assets.storage import Storage

SCAN_RUN_TAG = "bitget/scan_run_id"
DIRECT_READ = "none"  # SCAN_RUN_TAG value: take in no scan, read each symbol from the API
SYMBOL_TABLE = "symbol_table"
DATASETS = ("orders", "plan_orders", "fills")


def _dataset_symbols(manifest: dict) -> dict[str, dict[str, int]]:
    per = manifest.get("datasets")
    if not per:
        return {"orders": manifest["symbols"]}
    return {ds: meta["symbols"] for ds, meta in per.items()}


def scan_metadata(manifest: dict, registered: set[str]) -> dict:
    """What order_scan records so that steps of any run can take its rows in: one table row per symbol."""
    per = _dataset_symbols(manifest)
    columns = [dg.TableColumn("partition", "string", description="SYMBOL:PRODUCT-TYPE")]
    columns += [dg.TableColumn(ds, "int", description=f"{ds.replace('_', ' ')} rows this scan read") for ds in per]
    columns.append(dg.TableColumn("new", "bool", description="not a partition before this scan"))
    records = [dg.TableRecord({"partition": k, **{ds: int(per[ds].get(k, 0)) for ds in per},
                               "new": k not in registered}) for k in manifest["symbols"]]
    return {
        "scan_id": manifest["scan_id"],
        "exchange_time_ms": int(manifest["server_now_ms"]),
        SYMBOL_TABLE: dg.MetadataValue.table(records, schema=dg.TableSchema(columns=columns)),
    }


@dataclass(frozen=True)
class ScanRef:
    scan_id: str
    server_now_ms: int
    symbols: dict[str, int]  # partition key -> orders staged
    must_be_newer: bool = False  # the latest scan, not this run's: only for partitions it is newer than
    datasets: dict[str, dict[str, int]] | None = None  # dataset -> partition key -> rows staged
    run_id: str = ""  # the run that materialized the scan: what the UI links, unlike the scan id (a folder name)

    @property
    def label(self) -> str:
        """How steps name the scan to users: by its run, which the UI can find."""
        return f"account scan {(self.run_id or self.scan_id)[:8]}"

    @classmethod
    def from_event(cls, entry, must_be_newer: bool = False) -> "ScanRef | None":
        metadata = entry.asset_materialization.metadata
        if "scan_id" not in metadata or SYMBOL_TABLE not in metadata:
            return None  # a materialization from before scans recorded their symbols
        rows = [r.data for r in metadata[SYMBOL_TABLE].value.records]
        datasets = {ds: {r["partition"]: r[ds] for r in rows if r.get(ds)} for ds in DATASETS
                    if rows and ds in rows[0]}
        return cls(metadata["scan_id"].value, int(metadata["exchange_time_ms"].value),
                   {r["partition"]: r.get("orders", 0) for r in rows}, must_be_newer, datasets, entry.run_id)

    @property
    def manifest(self) -> dict:
        datasets = {ds: {"symbols": symbols} for ds, symbols in (self.datasets or {}).items()}
        return {"scan_id": self.scan_id, "symbols": self.symbols, "server_now_ms": self.server_now_ms,
                "datasets": datasets}

    def rows_for(self, storage: Storage, key: str, state: dict, dataset: str = "orders") -> pl.DataFrame | None:
        """The scan's rows of one partition and dataset (empty if it saw none), or None when it cannot serve: it
        did not read that dataset, its staged file is gone, or (latest scan only) the partition was read after it."""
        if self.datasets is not None and dataset not in self.datasets:
            return None
        if self.must_be_newer and (state.get("last_read_ms") or 0) >= self.server_now_ms:
            return None
        return extraction.read_scan_rows(storage, self.manifest, key, dataset)


def scan_of_run(instance: dg.DagsterInstance, run_id: str, scan_key: dg.AssetKey) -> ScanRef | None:
    """The scan materialized by run `run_id`, if it materialized one."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    for record in reversed(records):
        entry = record.event_log_entry
        if entry.asset_materialization and entry.asset_materialization.asset_key == scan_key:
            return ScanRef.from_event(entry)
    return None


def latest_scan(instance: dg.DagsterInstance, scan_key: dg.AssetKey) -> ScanRef | None:
    entry = instance.get_latest_materialization_event(scan_key)
    return ScanRef.from_event(entry, must_be_newer=True) if entry else None
