"""The asset graph of one account.

    order_scan ─> symbol_orders, symbol_plan_orders, symbol_fills  (one partition per symbol; one step set)
              ─> sorted_orders, sorted_plan_orders, sorted_fills    (published together)

Orders are always read; plan orders and fills are assets only when their stream is on (the account's settings),
so a stream that is off has no asset and no empty materialization. `build_assets(account)` makes them for any
account (see accounts.py); definitions.py builds one set per account.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import dagster as dg
import polars as pl

from bitget_assets import early_scan, extraction
from bitget_assets import history_store as hs
from bitget_assets.accounts import Account
from bitget_assets.datasets import dataset
from bitget_assets.early_scan import EARLY_SCAN_TAG
from bitget_assets.identity import account_identity, api_version_of
from bitget_assets.imported import partition_keys, read_imported, read_imports, write_imported
from bitget_assets.imports import ExportFileError, MissingTimeZoneError
from bitget_assets.lineage import DIRECT_READ, SCAN_RUN_TAG, ScanRef, latest_scan, scan_metadata, scan_of_run
from bitget_assets.partitions import parse_partition_key, symbols_partitions
from bitget_assets.resources import BitgetResource, ProgressResource, RateLimiterResource, StorageResource
from bitget_assets.sorted_checks import (
    check_specs,
    coverage_check,
    coverage_starts,
    cross_check_columns,
    cross_checks,
    import_checks,
    output_checks,
    overlap_columns,
)
from bitget_assets.sorted_merge import local_files
from bitget_assets.step_metadata import add_partition_metadata

SYMBOL_CHUNKS = 4  # process steps the symbol partitions fan out to (threads inside each)
EXTRACTION_STARTED_TAG = "bitget/extraction_started_at"
SCAN_TAG = "bitget/scan"  # its value names the account: dagster.yaml allows one scan per account at a time
single_run = dg.BackfillPolicy.single_run()
ROW_NAMES = {"orders": "orders", "plan_orders": "plans", "fills": "fills"}


def freshness_policy(account: Account) -> dg.FreshnessPolicy:
    """A missed refresh turns the outputs amber, then red, in the UI."""
    fail = timedelta(minutes=account.stale_after_minutes)
    return dg.FreshnessPolicy.time_window(fail_window=fail, warn_window=min(timedelta(minutes=30), fail / 2))


@dataclass(frozen=True)
class AccountAssets:
    account: Account
    partitions_def: dg.DynamicPartitionsDefinition
    order_scan: dg.AssetsDefinition
    symbol_partitions: dg.AssetsDefinition  # symbol_orders (+ symbol_plan_orders, symbol_fills)
    sorted_outputs: dg.AssetsDefinition  # sorted_orders (+ sorted_plan_orders, sorted_fills)
    imported_orders: dg.AssetsDefinition  # orders from Bitget's website exports

    @property
    def all(self) -> list[dg.AssetsDefinition]:
        return [self.order_scan, self.symbol_partitions, self.imported_orders, self.sorted_outputs]

    def symbol_key(self, ds: str = "orders") -> dg.AssetKey:
        return self.account.asset_key(f"symbol_{ds}")

    def sorted_key(self, ds: str = "orders") -> dg.AssetKey:
        return self.account.asset_key(f"sorted_{ds}")


@dataclass(frozen=True)
class _Resources:
    bitget: BitgetResource
    rate_limiter: RateLimiterResource
    storage: StorageResource
    progress: ProgressResource


def _resources(context, account: Account) -> _Resources:
    """This account's resources: each account has its own keys, so the ops look them up by name."""
    r = context.resources
    return _Resources(getattr(r, account.bitget_key), r.rate_limiter, getattr(r, account.storage_key), r.progress)


def resource_keys(account: Account) -> set[str]:
    return {account.bitget_key, account.storage_key, "rate_limiter", "progress"}


def location_metadata(uri: str) -> dg.MetadataValue:
    return dg.MetadataValue.url(uri) if "://" in uri else dg.MetadataValue.path(uri)


def ms_timestamp(ms: int | None) -> dg.MetadataValue | None:
    return dg.MetadataValue.timestamp(ms / 1000) if ms else None


def _without_none(metadata: dict) -> dict:
    return {k: v for k, v in metadata.items() if v is not None}


def build_assets(account: Account) -> AccountAssets:
    partitions_def = symbols_partitions(account)
    group = account.object_name("bitget")
    datasets = account.streams
    scan_key = account.asset_key("order_scan")

    @dg.asset(
        name="order_scan",
        key_prefix=account.key_prefix,
        group_name=group,
        backfill_policy=single_run,
        kinds={"python", "parquet"},
        required_resource_keys=resource_keys(account),
        description="Every order (and plan order, fill, when on) Bitget still holds for the account (90 days), "
        "read per product type without `symbol`: the cheapest complete way to find every traded symbol. "
        "Staged per symbol for the partitions.",
    )
    def order_scan(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        res = _resources(context, account)
        progress = res.progress.sender("scan")
        early_id = context.run.tags.get(EARLY_SCAN_TAG)
        if early_id:
            # The CLI started this scan before Dagster was up: take it over instead of reading again.
            early = early_scan.take(early_id)
            if early is None:
                raise dg.Failure(f"run tag {EARLY_SCAN_TAG}={early_id}: no such scan was started in this process "
                                 "(only `bitget-orders extract` starts one, and only its own scan run takes it)")
            plan = early_scan.ScanPlan(tuple(res.bitget.product_types), tuple(res.bitget.streams),
                                       res.bitget.concurrency, res.bitget.credentials().base_url)
            scanned = early.result(plan)
            for line in early.log.lines:
                context.log.info(line)
        else:
            client = res.bitget.get_client(res.rate_limiter.get_limiter())
            scanned = extraction.run_account_scan(
                client, res.storage.get_storage(), res.bitget.product_types, res.bitget.streams,
                scan_id=context.run_id, concurrency=res.bitget.concurrency, log=context.log,
                on_page=lambda chain, rows: progress.add(requests=1, orders=len(rows)))
        summary, identity = scanned.summary, scanned.identity
        context.log.info(f"scanned {', '.join(res.bitget.streams)} of {', '.join(res.bitget.product_types)} on "
                         f"{res.bitget.exchange_label} ({identity['mode']} account)"
                         + (", started before Dagster" if early_id else ""))
        manifest = summary.manifest
        progress.add(symbols=len(manifest["symbols"]))
        progress.close()
        registered = set(context.instance.get_dynamic_partitions(partitions_def.name))
        rows = {f"{ROW_NAMES[ds]}_read": meta["rows"] for ds, meta in manifest.get("datasets", {}).items()}
        return dg.MaterializeResult(
            metadata=_without_none({
                "exchange": res.bitget.exchange_label,
                "account_mode": identity["mode"],
                "orders": summary.orders,
                **{k: v for k, v in rows.items() if k != "orders_read"},
                "symbols": len(manifest["symbols"]),
                "new_symbol_count": len([k for k in manifest["symbols"] if k not in registered]),
                "requests": summary.requests,
                "rate_limited_429": summary.rate_limited,
                "seconds": round(summary.seconds, 2),
                "incremental": manifest["incremental"],
                "paging_chains": manifest["chains"],
                "clock_offset_ms": scanned.clock_offset_ms,
                "started_before_dagster": bool(early_id),
                "exchange_time": ms_timestamp(manifest["server_now_ms"]),
                **scan_metadata(manifest, registered),  # last: the per-symbol table is long
            })
        )

    chunk_ops = [_chunk_op(account, scan_key, datasets, i) for i in range(SYMBOL_CHUNKS)]
    record = _record_op(account, datasets)

    @dg.graph_multi_asset(
        name=account.object_name("symbol_partitions"),
        outs={f"symbol_{ds}": dg.AssetOut(key=account.asset_key(f"symbol_{ds}"), kinds={"parquet"},
                                          description=_symbol_description(ds))
              for ds in datasets},
        group_name=group,
        partitions_def=partitions_def,
        backfill_policy=single_run,
        ins={"order_scan": dg.AssetIn(key=scan_key, dagster_type=dg.Nothing)},
        can_subset=False,  # one read of a symbol feeds every dataset
    )
    def symbol_partitions(order_scan):
        return record([chunk(order_scan) for chunk in chunk_ops])

    imported_orders = _imported_orders_asset(account, partitions_def, group)
    imported_key = imported_orders.key

    specs = [dg.AssetSpec(account.asset_key(f"sorted_{ds}"),
                          deps=[account.asset_key(f"symbol_{ds}"), *([imported_key] if ds == "orders" else [])],
                          group_name=group, kinds={"polars", "parquet", "json", "csv"},
                          freshness_policy=freshness_policy(account), description=_sorted_description(ds),
                          automation_condition=dg.AutomationCondition.eager())
             for ds in datasets]

    @dg.multi_asset(
        name=account.object_name("sorted_outputs"),
        specs=specs,
        check_specs=[spec for ds in datasets for spec in check_specs(account, ds, datasets)],
        backfill_policy=single_run,
        can_subset=False,  # every dataset's files are published together
        required_resource_keys={account.storage_key},
    )
    def sorted_outputs(context: dg.AssetExecutionContext):
        store = getattr(context.resources, account.storage_key).get_storage()
        keys = context.instance.get_dynamic_partitions(partitions_def.name)
        elapsed = _extraction_seconds(context)
        scan = scan_for_run(context, scan_key)
        imported = read_imported(store)
        summaries = extraction.build_sorted_outputs(store, keys, datasets, elapsed_seconds=elapsed,
                                                    imported=imported)
        now_ms = scan.server_now_ms if scan else int(time.time() * 1000)
        holes = extraction.coverage_holes(store, now_ms)
        starts = coverage_starts(store)
        # Checks read back what was persisted, not the frames in memory: only the columns each needs.
        with local_files(store, [dataset(ds).files["parquet"] for ds in datasets]) as paths:
            files = {ds: pl.scan_parquet(paths[dataset(ds).files["parquet"]]) for ds in datasets}
            written = cross_check_columns(files) if len(datasets) > 1 else {}
            results = {ds: [
                *output_checks(files[ds], summaries[ds].partition_rows + summaries[ds].imported_rows,
                               dataset(ds).key, asset_key=account.asset_key(f"sorted_{ds}")),
                *(cross_checks(ds, written, account.asset_key(f"sorted_{ds}"), starts) if written else []),
                *(import_checks(overlap_columns(files[ds], imported), imported, keys,
                                account.asset_key(f"sorted_{ds}")) if ds == "orders" else []),
            ] for ds in datasets}
        del written
        for ds in datasets:
            s, asset_key = summaries[ds], account.asset_key(f"sorted_{ds}")
            yield dg.MaterializeResult(
                asset_key=asset_key,
                metadata=_without_none({
                    "count": s.count,
                    "symbols": s.symbols,
                    "first_cTime": ms_timestamp(s.first_ctime),
                    "last_cTime": ms_timestamp(s.last_ctime),
                    "elapsed_seconds": round(elapsed, 2),
                    "json_uri": location_metadata(s.json_uri),
                    "parquet_uri": location_metadata(s.parquet_uri),
                    "csv_uri": location_metadata(s.csv_uri),
                    "dagster/uri": s.json_uri,
                    "dagster/row_count": s.count,
                    "scan_id": scan.scan_id if scan else None,  # the scan these files were written from
                }),
                check_results=[*results[ds], coverage_check(ds, holes, asset_key)],
            )

    return AccountAssets(account, partitions_def, order_scan, symbol_partitions, sorted_outputs, imported_orders)


def _imported_orders_asset(account: Account, partitions_def, group: str) -> dg.AssetsDefinition:
    @dg.asset(
        name="imported_orders",
        key_prefix=account.key_prefix,
        group_name=group,
        kinds={"csv", "parquet"},
        required_resource_keys={account.storage_key},
        description="Orders from Bitget's website exports (futures order history) in `imports/` at the output "
        "location: older than the API's 90 days. Merged into sorted_orders; the API's row wins.",
    )
    def imported_orders(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        store = getattr(context.resources, account.storage_key).get_storage()
        try:
            imported, files = read_imports(store, account.import_tz)
        except (ExportFileError, MissingTimeZoneError) as exc:
            raise dg.Failure(str(exc)) from None  # names the file, the line and what was expected
        if files or read_imported(store) is not None:  # nothing imported, ever: nothing to write
            write_imported(store, imported)
        keys = partition_keys(imported)
        registered = set(context.instance.get_dynamic_partitions(partitions_def.name))
        new = [k for k in keys if k not in registered]
        if new:  # a symbol traded only before the API's 90 days still gets its partition
            context.instance.add_dynamic_partitions(partitions_def.name, new)
        ctimes = imported["cTime"].cast(pl.Int64) if imported.height else None
        return dg.MaterializeResult(metadata=_without_none({
            "orders": imported.height,
            "files": dg.MetadataValue.json([f.rsplit("/", 1)[-1] for f in files]),
            "symbols": len(keys),
            "new_partitions": len(new),
            "first_cTime": ms_timestamp(ctimes.min() if ctimes is not None else None),
            "last_cTime": ms_timestamp(ctimes.max() if ctimes is not None else None),
            "dagster/row_count": imported.height,
        }))

    return imported_orders


def _symbol_description(ds: str) -> str:
    what = {"orders": "order (history and open orders)", "plan_orders": "plan order (trigger, trailing, TP/SL; "
            "history and pending)", "fills": "fill"}[ds]
    return (f"Every {what} of one symbol, kept beyond Bitget's 90 days; a row seen again replaces the older copy "
            "(latest uTime wins).")


def _sorted_description(ds: str) -> str:
    key = dataset(ds).key
    return (f"Every {ds.replace('_', ' ')} row of every symbol, de-duplicated by {key} and sorted by (cTime, {key}), "
            f"written as {ds}.json, {ds}.parquet and {ds}.csv, published together with the other datasets.")


def chunk_keys(context: dg.OpExecutionContext, bitget: BitgetResource, index: int) -> list[str]:
    """This step's share of the run's partition keys, each checked before any request is made."""
    keys = list(context.partition_keys)
    for key in keys:
        _, product_type = parse_partition_key(key)
        if product_type not in bitget.product_types:
            raise dg.Failure(f"partition {key}: product type {product_type} is not configured")
    return keys[index::SYMBOL_CHUNKS]


def scan_for_run(context, scan_key: dg.AssetKey) -> ScanRef | None:
    """The account scan this run's partitions take in, by lineage: the scan run named by the run's tag (the
    sensor and the CLI set it), else this run's own scan, else the latest scan (judged per partition)."""
    instance, named = context.instance, context.run.tags.get(SCAN_RUN_TAG)
    if named == DIRECT_READ:
        return None
    if named:
        scan = scan_of_run(instance, named, scan_key)
        if scan is None:
            raise dg.Failure(f"run tag {SCAN_RUN_TAG}={named}: that run materialized no {scan_key.to_user_string()}")
        return scan
    return scan_of_run(instance, context.run_id, scan_key) or latest_scan(instance, scan_key)


def materialize_symbol_chunk(context: dg.OpExecutionContext, index: int, res: _Resources,
                             scan_key: dg.AssetKey, datasets: tuple[str, ...]) -> dict:
    """Bring each symbol of the chunk up to date, every dataset at once: from the run's account scan, else by
    reading it directly. Returns {partition key: {dataset: figures}}."""
    keys = chunk_keys(context, res.bitget, index)
    if not keys:
        return {}
    store = res.storage.get_storage()
    scan = scan_for_run(context, scan_key)
    identity = account_identity(store)
    limiter = res.rate_limiter.get_limiter()
    progress = res.progress.sender("symbols")
    clients = threading.local()  # one client per thread: exact per-symbol request counts, one pool each
    # Applying a symbol's rows to its partition (read, merge, write) is CPU and memory work that polars already
    # spreads over the cores: one symbol at a time per step bounds a step's memory by its largest symbol,
    # while the threads' reads from the exchange, which wait on the network, still overlap.
    applying = threading.Lock()

    def client():
        if not hasattr(clients, "client"):
            clients.client = res.bitget.get_client(limiter, uid=identity.get("uid"))
        return clients.client

    def one(key: str) -> tuple[str, dict]:
        began = time.time()
        states = {ds: hs.read_partition_state(store, key, ds) for ds in datasets}
        if scan and not scan.must_be_newer and all(states[ds].get("scan_id") == scan.scan_id for ds in datasets):
            # The run's scan is in the partition already (a resumed or repeated run): nothing to read or write.
            results = {ds: already_applied(store, key, ds, states[ds]) for ds in datasets}
            progress.add(symbols_done=1)
            return key, {ds: {**r, "requests": 0, "rate_limited": 0, "seconds": time.time() - began,
                              "source": scan.label} for ds, r in results.items()}
        with applying:
            rows = {ds: scan.rows_for(store, key, states[ds], ds) for ds in datasets} if scan else {}
            from_scan = bool(scan) and all(r is not None for r in rows.values())
            if from_scan:
                results = {ds: extraction.update_partition(store, key, rows[ds], read_at_ms=scan.server_now_ms,
                                                           scan_id=scan.scan_id, dataset=ds) for ds in datasets}
            del rows
        if from_scan:
            stats = {"requests": 0, "rate_limited": 0}
            source = scan.label
        else:
            c = client()
            before = c.stats.as_dict()
            read = extraction.fetch_symbol(c, key, states, datasets, api_version=api_version_of(identity))
            with applying:
                results = {ds: extraction.update_partition(store, key, read.frames[ds], read_at_ms=read.read_at_ms,
                                                           scan_id=None, dataset=ds, coverage=read.coverage.get(ds))
                           for ds in datasets}
            stats = {k: v - before[k] for k, v in c.stats.as_dict().items()}
            source = "direct read of the symbol"
        progress.add(symbols_done=1, partition_orders=results["orders"]["rows"])
        seconds = time.time() - began
        return key, {ds: {**r, **stats, "seconds": seconds, "source": source} for ds, r in results.items()}

    with ThreadPoolExecutor(max(1, res.bitget.concurrency)) as pool:
        results = dict(pool.map(one, keys))
    progress.close()
    context.log.info(f"{len(results)} symbols up to date" + (f" from {scan.label}" if scan else ""))
    return results


def already_applied(store, key: str, ds: str, state: dict) -> dict:
    """A partition's figures, from its state, when the scan has nothing to add."""
    return {"rows": state.get("orders", state.get("rows", 0)), "new_orders": 0, "newest_ctime": state.get(
        "newest_ctime"), "written": False, "uri": store.uri(hs.partition_base(key, ds) + ".parquet")}


def _chunk_op(account: Account, scan_key: dg.AssetKey, datasets, index: int) -> dg.OpDefinition:
    # A fixed fan-out (not DynamicOut) saves a planning step's process start on the critical path.
    @dg.op(name=account.object_name(f"symbol_chunk_{index}"), ins={"order_scan": dg.In(dg.Nothing)},
           required_resource_keys=resource_keys(account))
    def chunk_op(context: dg.OpExecutionContext) -> dict:
        return materialize_symbol_chunk(context, index, _resources(context, account), scan_key, datasets)

    return chunk_op


def _record_op(account: Account, datasets) -> dg.OpDefinition:
    @dg.op(name=account.object_name("record_symbol_partitions"), ins={"chunk_results": dg.In(list)},
           out={f"symbol_{ds}": dg.Out(dg.Nothing) for ds in datasets})
    def record_symbol_partitions(context: dg.OpExecutionContext, chunk_results: list):
        """Attach each partition's own figures to its materialization of each dataset in the UI."""
        targeted = set(context.partition_keys)
        by_dataset: dict[str, dict[str, dict]] = {ds: {} for ds in datasets}
        for results in chunk_results:
            for key, per_dataset in results.items():
                if key not in targeted:
                    raise dg.Failure(f"a chunk reported partition {key}, which this run does not target")
                for ds, r in per_dataset.items():
                    by_dataset[ds][key] = _without_none({
                        ROW_NAMES[ds]: r["rows"],
                        f"new_{ROW_NAMES[ds]}": r["new_orders"],
                        "requests": r["requests"] if ds == "orders" else None,  # one read serves every dataset
                        "rate_limited_429": r["rate_limited"] if ds == "orders" else None,
                        "seconds": round(r["seconds"], 3),
                        "newest_cTime": ms_timestamp(r["newest_ctime"]),
                        "rewritten": r["written"],
                        "source": r["source"],
                        "uri": location_metadata(r["uri"]),
                    })
        for ds in datasets:
            add_partition_metadata(context, account.asset_key(f"symbol_{ds}"), by_dataset[ds])
        return tuple(None for _ in datasets) if len(datasets) > 1 else None

    return record_symbol_partitions


def _extraction_seconds(context: dg.AssetExecutionContext) -> float:
    """Since the CLI started the extraction (run tag), else since this run started."""
    started = context.run.tags.get(EXTRACTION_STARTED_TAG)
    if started is None:
        record = context.instance.get_run_record_by_id(context.run_id)
        started = record.start_time if record and record.start_time else time.time()
    return time.time() - float(started)
