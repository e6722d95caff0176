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
_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("partition", "string", description="SYMBOL:PRODUCT-TYPE"),
    dg.TableColumn("orders", "int", description="orders this scan read"),
    dg.TableColumn("new", "bool", description="not a partition before this scan"),
])


def scan_metadata(manifest: dict, registered: set[str]) -> dict:
    """What order_scan records so that steps of any run can take its orders in."""
    records = [dg.TableRecord({"partition": k, "orders": int(n), "new": k not in registered})
               for k, n in manifest["symbols"].items()]
    return {
        "scan_id": manifest["scan_id"],
        "exchange_time_ms": int(manifest["server_now_ms"]),
        SYMBOL_TABLE: dg.MetadataValue.table(records, schema=_SCHEMA),
    }


@dataclass(frozen=True)
class ScanRef:
    scan_id: str
    server_now_ms: int
    symbols: dict[str, int]  # partition key -> orders staged
    must_be_newer: bool = False  # the latest scan, not this run's: only for partitions it is newer than

    @classmethod
    def from_event(cls, entry, must_be_newer: bool = False) -> "ScanRef | None":
        metadata = entry.asset_materialization.metadata
        if "scan_id" not in metadata or SYMBOL_TABLE not in metadata:
            return None  # a materialization from before scans recorded their symbols
        rows = [r.data for r in metadata[SYMBOL_TABLE].value.records]
        return cls(metadata["scan_id"].value, int(metadata["exchange_time_ms"].value),
                   {r["partition"]: r["orders"] for r in rows}, must_be_newer)

    @property
    def manifest(self) -> dict:
        return {"scan_id": self.scan_id, "symbols": self.symbols, "server_now_ms": self.server_now_ms}

    def rows_for(self, storage: Storage, key: str, state: dict) -> pl.DataFrame | None:
        """The scan's orders of one partition (empty if it saw none), or None when it cannot serve: its staged
        file is gone, or (latest scan only) the partition was read after it."""
        if self.must_be_newer and (state.get("last_read_ms") or 0) >= self.server_now_ms:
            return None
        return extraction.read_scan_rows(storage, self.manifest, key)


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
