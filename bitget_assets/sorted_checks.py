"""The checks each sorted output reports with its materialization: their specs, and their results from the
written files (ids unique and in order, counts, links between datasets, imports, history coverage)."""

import dagster as dg
import polars as pl

from bitget_assets import dataset_checks
from bitget_assets import history_store as hs
from bitget_assets.accounts import Account
from bitget_assets.datasets import dataset
from bitget_assets.imports import PROVENANCE_COL, describe, outside_partitions, overlap_disagreements
from bitget_assets.sorted_merge import id_figures


def import_checks(orders, imported, keys, asset_key: dg.AssetKey) -> list[dg.AssetCheckResult]:
    """Imported rows land in partitions; where an export and the API both have an order they agree (a wrong
    time zone shows here, as orders whose times differ by whole hours)."""
    if imported is None or imported.is_empty():
        imported = None
    outside = outside_partitions(imported, keys) if imported is not None else []
    api = orders.filter(pl.col("source") == "api") if "source" in orders.columns else orders
    disagreements = overlap_disagreements(api, imported) if imported is not None else []
    return [
        dg.AssetCheckResult(asset_key=asset_key, check_name="imported_symbols_are_partitions", passed=not outside,
                            metadata={"orders": dg.MetadataValue.json(outside[:20])}),
        dg.AssetCheckResult(asset_key=asset_key, check_name="imports_agree_with_the_api", passed=not disagreements,
                            metadata={"disagreements": len(disagreements),
                                      "explained": describe(disagreements) if disagreements else "",
                                      "orders": dg.MetadataValue.json([d.orderId for d in disagreements[:20]])}),
    ]


def _id_word(key: str) -> str:
    """How a check names the id column `key`: unique_order_ids, sorted_by_ctime_then_trade_id."""
    return "trade_id" if key == "tradeId" else "order_id"


def check_specs(account: Account, ds: str, datasets) -> list[dg.AssetCheckSpec]:
    key, asset = dataset(ds).key, account.asset_key(f"sorted_{ds}")
    word = _id_word(key)
    specs = [
        dg.AssetCheckSpec(f"unique_{word}s", asset=asset,
                          description=f"Every {key} appears once in the written {ds}.parquet."),
        dg.AssetCheckSpec(f"sorted_by_ctime_then_{word}", asset=asset,
                          description=f"The written file is in (cTime, numeric {key}) order."),
        dg.AssetCheckSpec("count_equals_sum_of_partitions", asset=asset,
                          description="Rows written equal the rows of all symbol partitions together."),
        dg.AssetCheckSpec("no_history_gap", asset=asset,
                          description="The history streams were read completely back to Bitget's 90-day edge "
                          "since the first run: refreshes never stopped for longer than Bitget keeps data."),
    ]
    if ds == "plan_orders":
        specs.append(dg.AssetCheckSpec("executed_plans_link_to_orders", asset=asset,
                                       description="Every executed plan's executeOrderId is in orders."))
    if ds == "orders":
        specs += [dg.AssetCheckSpec("imported_symbols_are_partitions", asset=asset,
                                    description="Every order imported from a website export has its partition."),
                  dg.AssetCheckSpec("imports_agree_with_the_api", asset=asset,
                                    description="Where an export and the API both hold an order, they agree on "
                                    "symbol, side, size and time (a wrong time zone shows here).")]
    if ds == "fills":
        specs += [dg.AssetCheckSpec("fills_link_to_orders", asset=asset,
                                    description="Every fill's orderId is in orders."),
                  dg.AssetCheckSpec("fills_add_up_to_orders", asset=asset,
                                    description="Per finished order, the fills' summed size equals baseVolume.")]
    return specs


def output_checks(df: pl.DataFrame | pl.LazyFrame, partition_rows: int, key: str = "orderId",
                  asset_key: dg.AssetKey | None = None) -> list[dg.AssetCheckResult]:
    """`df`: the written rows, or a scan of the written file (read two columns, a slice at a time)."""
    word = _id_word(key)
    rows, ids_unique, in_order = id_figures(df, key)
    return [
        dg.AssetCheckResult(asset_key=asset_key, check_name=f"unique_{word}s", passed=ids_unique,
                            metadata={"rows": rows}),
        dg.AssetCheckResult(asset_key=asset_key, check_name=f"sorted_by_ctime_then_{word}", passed=in_order),
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name="count_equals_sum_of_partitions",
            passed=rows == partition_rows,
            metadata={"output_rows": rows, "partition_rows": partition_rows},
        ),
    ]


# The columns cross_checks reads of each written dataset (dataset_checks).
CROSS_CHECK_COLUMNS = {
    "orders": ("orderId", "cTime", "status", "baseVolume"),
    "plan_orders": ("orderId", "executeOrderId", "planStatus", "uTime", "cTime"),
    "fills": ("tradeId", "orderId", "cTime", "baseVolume"),
}
OVERLAP_COLUMNS = ("orderId", "symbol", "side", "tradeSide", "posSide", "size", "cTime", "uTime", PROVENANCE_COL)


def _present(scan: pl.LazyFrame, columns) -> list[str]:
    names = set(scan.collect_schema().names())
    return [c for c in columns if c in names]


def cross_check_columns(files: dict[str, pl.LazyFrame]) -> dict[str, pl.DataFrame]:
    return {ds: scan.select(_present(scan, CROSS_CHECK_COLUMNS[ds])).collect() for ds, scan in files.items()}


def overlap_columns(orders: pl.LazyFrame, imported: pl.DataFrame | None) -> pl.DataFrame:
    """The written orders import_checks compares with the exports: those an export holds too."""
    ids = imported["orderId"] if imported is not None else pl.Series(dtype=pl.String)
    return orders.select(_present(orders, OVERLAP_COLUMNS)).filter(pl.col("orderId").is_in(ids.implode())).collect()


def verdict_result(name: str, verdict: dataset_checks.Verdict, asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    """A failure where both datasets cover the time; only rows outside that: a warning."""
    severity = dg.AssetCheckSeverity.ERROR if verdict.failures else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=name,
        passed=not verdict.failures and not verdict.warnings,
        severity=severity,
        metadata={"failures": len(verdict.failures), "outside_coverage": len(verdict.warnings),
                  "examples": dg.MetadataValue.json((verdict.failures or verdict.warnings)[:20])},
    )


def cross_checks(ds: str, written: dict, asset_key: dg.AssetKey,
                 covered_from: dict[str, int] | None = None) -> list[dg.AssetCheckResult]:
    """`covered_from`: dataset -> where the history the scans read completely starts (rows older than that are
    judged warnings, see dataset_checks)."""
    orders, rows, since = written["orders"], written[ds], covered_from or {}
    if ds == "plan_orders":
        return [verdict_result("executed_plans_link_to_orders",
                               dataset_checks.plans_link_to_orders(rows, orders, since.get("orders")), asset_key)]
    if ds == "fills":
        return [verdict_result("fills_link_to_orders",
                               dataset_checks.fills_link_to_orders(rows, orders, since.get("orders")), asset_key),
                verdict_result("fills_add_up_to_orders",
                               dataset_checks.fills_add_up_to_orders(rows, orders, since.get("fills")), asset_key)]
    return []


def coverage_starts(store) -> dict[str, int]:
    """Per dataset, the earliest start of what its history streams have read completely (committed or just
    scanned)."""
    starts: dict[str, int] = {}
    for doc in (hs.read_json(store, hs.SCAN_APPLIED), hs.read_json(store, hs.SCAN_MANIFEST)):
        for ds, meta in ((doc or {}).get("datasets") or {}).items():
            for by_pt in (meta.get("coverage") or {}).values():
                for intervals in by_pt.values():
                    for lo, _ in intervals:
                        starts[ds] = min(starts.get(ds, lo), int(lo))
    return starts


def coverage_check(ds: str, holes: list[dict], asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    mine = [h for h in holes if h["dataset"] == ds]
    return dg.AssetCheckResult(
        asset_key=asset_key, check_name="no_history_gap", passed=not mine,
        metadata={"holes": dg.MetadataValue.json([f"{h['stream']} {h['product_type']}: {h['interval']}"
                                                  for h in mine[:20]])},
    )
