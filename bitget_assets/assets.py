"""The asset graph of one account: order_scan → symbol_orders (one partition per symbol) → sorted_orders.

`build_assets(account)` makes them for any account (see accounts.py); definitions.py builds one set per account.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import dagster as dg

from bitget_assets import extraction
from bitget_assets import history_store as hs
from bitget_assets.accounts import Account
from bitget_assets.lineage import DIRECT_READ, SCAN_RUN_TAG, ScanRef, latest_scan, scan_metadata, scan_of_run
from bitget_assets.orders import sort_chronologically
from bitget_assets.partitions import parse_partition_key, symbols_partitions
from bitget_assets.resources import BitgetResource, ProgressResource, RateLimiterResource, StorageResource
from bitget_assets.step_metadata import add_partition_metadata

SYMBOL_CHUNKS = 4  # process steps the symbol partitions fan out to (threads inside each)
EXTRACTION_STARTED_TAG = "bitget/extraction_started_at"
SCAN_TAG = "bitget/scan"  # its value names the account: dagster.yaml allows one scan per account at a time
single_run = dg.BackfillPolicy.single_run()


def freshness_policy(account: Account) -> dg.FreshnessPolicy:
    """A missed refresh turns sorted_orders amber, then red, in the UI."""
    fail = timedelta(minutes=account.stale_after_minutes)
    return dg.FreshnessPolicy.time_window(fail_window=fail, warn_window=min(timedelta(minutes=30), fail / 2))


@dataclass(frozen=True)
class AccountAssets:
    account: Account
    partitions_def: dg.DynamicPartitionsDefinition
    order_scan: dg.AssetsDefinition
    symbol_orders: dg.AssetsDefinition
    sorted_orders: dg.AssetsDefinition

    @property
    def all(self) -> list[dg.AssetsDefinition]:
        return [self.order_scan, self.symbol_orders, self.sorted_orders]


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
    scan_key = account.asset_key("order_scan")
    sorted_key = account.asset_key("sorted_orders")

    @dg.asset(
        name="order_scan",
        key_prefix=account.key_prefix,
        group_name=group,
        backfill_policy=single_run,
        kinds={"python", "parquet"},
        required_resource_keys=resource_keys(account),
        description="Every order Bitget still holds for the account (90 days), read once per product type "
        "without `symbol`: the cheapest complete way to find every traded symbol. Staged per symbol.",
    )
    def order_scan(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        res = _resources(context, account)
        store = res.storage.get_storage()
        client = res.bitget.get_client(res.rate_limiter.get_limiter())
        progress = res.progress.sender("scan")
        context.log.info(f"scanning {', '.join(res.bitget.product_types)} on {res.bitget.exchange_label}")
        # The scan owns the scan bookkeeping. The previous scan's marks become the next start once its orders
        # are published (every partition took it in, sorted_orders was written from it); before that, a fresh
        # previous scan is finished instead of read again (a run killed after its scan), and an old one is
        # read again from its marks, so nothing is lost either way.
        previous = hs.read_json(store, hs.SCAN_MANIFEST)
        if previous and published_scan_id(context.instance, sorted_key) == previous["scan_id"]:
            extraction.commit_applied_scan(store, previous)
        summary = extraction.scan_account(
            client,
            store,
            res.bitget.product_types,
            scan_id=context.run_id,
            concurrency=res.bitget.concurrency,
            on_page=lambda chain, orders: progress.add(requests=1, orders=len(orders)),
        )
        progress.add(symbols=len(summary.manifest["symbols"]))
        progress.close()
        registered = set(context.instance.get_dynamic_partitions(partitions_def.name))
        manifest = summary.manifest
        return dg.MaterializeResult(
            metadata=_without_none({
                "exchange": res.bitget.exchange_label,
                "orders": summary.orders,
                "symbols": len(manifest["symbols"]),
                "new_symbol_count": len([k for k in manifest["symbols"] if k not in registered]),
                "requests": summary.requests,
                "rate_limited_429": summary.rate_limited,
                "seconds": round(summary.seconds, 2),
                "incremental": manifest["incremental"],
                "paging_chains": manifest["chains"],
                "exchange_time": ms_timestamp(manifest["server_now_ms"]),
                **scan_metadata(manifest, registered),  # last: the per-symbol table is long
            })
        )

    chunk_ops = [_chunk_op(account, scan_key, i) for i in range(SYMBOL_CHUNKS)]
    record = _record_op(account)

    @dg.graph_asset(
        name="symbol_orders",
        key_prefix=account.key_prefix,
        group_name=group,
        partitions_def=partitions_def,
        backfill_policy=single_run,
        kinds={"parquet"},
        ins={"order_scan": dg.AssetIn(key=scan_key, dagster_type=dg.Nothing)},
        description="Every order of one symbol (history and open orders), kept beyond Bitget's 90 days; "
        "an order seen again replaces the older copy (latest uTime wins).",
    )
    def symbol_orders(order_scan):
        return record([chunk(order_scan) for chunk in chunk_ops])

    @dg.asset(
        name="sorted_orders",
        key_prefix=account.key_prefix,
        group_name=group,
        deps=[symbol_orders],
        backfill_policy=single_run,
        kinds={"polars", "parquet", "json"},
        required_resource_keys={account.storage_key},
        automation_condition=dg.AutomationCondition.eager(),
        freshness_policy=freshness_policy(account),
        check_specs=[
            dg.AssetCheckSpec("unique_order_ids", asset=sorted_key,
                              description="Every orderId appears once in the written orders.parquet."),
            dg.AssetCheckSpec("sorted_by_ctime_then_order_id", asset=sorted_key,
                              description="The written file is in (cTime, numeric orderId) order."),
            dg.AssetCheckSpec("count_equals_sum_of_partitions", asset=sorted_key,
                              description="Rows written equal the rows of all symbol partitions together."),
        ],
        description="Every order of every symbol, de-duplicated by orderId and sorted by (cTime, orderId), "
        "written atomically as orders.json and orders.parquet.",
    )
    def sorted_orders(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        store = getattr(context.resources, account.storage_key).get_storage()
        keys = context.instance.get_dynamic_partitions(partitions_def.name)
        elapsed = _extraction_seconds(context)
        scan = scan_for_run(context, scan_key)
        summary = extraction.build_sorted_orders(store, keys, elapsed_seconds=elapsed)
        # Checks read back what was persisted (the columns they judge), not the frame in memory.
        written = hs.read_parquet(store, hs.OUTPUT_PARQUET, columns=["orderId", "cTime"])
        return dg.MaterializeResult(
            metadata=_without_none({
                "count": summary.count,
                "symbols": summary.symbols,
                "first_cTime": ms_timestamp(summary.first_ctime),
                "last_cTime": ms_timestamp(summary.last_ctime),
                "elapsed_seconds": round(elapsed, 2),
                "json_uri": location_metadata(summary.json_uri),
                "parquet_uri": location_metadata(summary.parquet_uri),
                "dagster/uri": summary.json_uri,
                "dagster/row_count": summary.count,
                "scan_id": scan.scan_id if scan else None,  # what order_scan commits once published
            }),
            check_results=output_checks(written, summary.partition_rows),
        )

    return AccountAssets(account, partitions_def, order_scan, symbol_orders, sorted_orders)


def published_scan_id(instance: dg.DagsterInstance, sorted_key: dg.AssetKey) -> str | None:
    """The scan the latest sorted_orders was written from."""
    entry = instance.get_latest_materialization_event(sorted_key)
    value = entry.asset_materialization.metadata.get("scan_id") if entry else None
    return value.value if value else None


def chunk_keys(context: dg.OpExecutionContext, bitget: BitgetResource, index: int) -> list[str]:
    """This step's share of the run's partition keys, each checked before any request is made."""
    keys = list(context.partition_keys)
    for key in keys:
        _, product_type = parse_partition_key(key)
        if product_type not in bitget.product_types:
            raise dg.Failure(f"partition {key}: product type {product_type} is not configured")
    return keys[index::SYMBOL_CHUNKS]


def scan_for_run(context: dg.OpExecutionContext, scan_key: dg.AssetKey) -> ScanRef | None:
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
                             scan_key: dg.AssetKey) -> dict:
    """Bring each symbol of the chunk up to date: from the run's account scan, else by reading it directly."""
    keys = chunk_keys(context, res.bitget, index)
    if not keys:
        return {}
    store = res.storage.get_storage()
    scan = scan_for_run(context, scan_key)
    limiter = res.rate_limiter.get_limiter()
    progress = res.progress.sender("symbols")
    clients = threading.local()  # one client per thread: exact per-symbol request counts, one pool each

    def client():
        if not hasattr(clients, "client"):
            clients.client = res.bitget.get_client(limiter)
        return clients.client

    def one(key: str) -> tuple[str, dict]:
        began = time.time()
        state = hs.read_partition_state(store, key)
        rows = scan.rows_for(store, key, state) if scan else None
        if rows is not None:
            result = extraction.update_partition(store, key, rows, read_at_ms=scan.server_now_ms,
                                                 scan_id=scan.scan_id)
            stats = {"requests": 0, "rate_limited": 0}
            source = f"account scan {scan.scan_id[:8]}"
        else:
            c = client()
            before = c.stats.as_dict()
            rows, now_ms = extraction.fetch_symbol(c, key, state)
            result = extraction.update_partition(store, key, rows, read_at_ms=now_ms, scan_id=None)
            stats = {k: v - before[k] for k, v in c.stats.as_dict().items()}
            source = "direct read of the symbol"
        progress.add(symbols_done=1, partition_orders=result["orders"])
        return key, {**result, **stats, "seconds": time.time() - began, "source": source}

    with ThreadPoolExecutor(max(1, res.bitget.concurrency)) as pool:
        results = dict(pool.map(one, keys))
    progress.close()
    context.log.info(f"{len(results)} symbols up to date" + (f" from scan {scan.scan_id[:8]}" if scan else ""))
    return results


def _chunk_op(account: Account, scan_key: dg.AssetKey, index: int) -> dg.OpDefinition:
    # A fixed fan-out (not DynamicOut) saves a planning step's process start on the critical path.
    @dg.op(name=account.object_name(f"symbol_chunk_{index}"), ins={"order_scan": dg.In(dg.Nothing)},
           required_resource_keys=resource_keys(account))
    def chunk_op(context: dg.OpExecutionContext) -> dict:
        return materialize_symbol_chunk(context, index, _resources(context, account), scan_key)

    return chunk_op


def _record_op(account: Account) -> dg.OpDefinition:
    @dg.op(name=account.object_name("record_symbol_partitions"), ins={"chunk_results": dg.In(list)},
           out=dg.Out(dg.Nothing))
    def record_symbol_partitions(context: dg.OpExecutionContext, chunk_results: list) -> None:
        """Attach each partition's own figures to its materialization in the UI."""
        targeted = set(context.partition_keys)
        metadata_by_key = {}
        for results in chunk_results:
            for key, r in results.items():
                if key not in targeted:
                    raise dg.Failure(f"a chunk reported partition {key}, which this run does not target")
                metadata_by_key[key] = _without_none({
                    "orders": r["orders"],
                    "new_orders": r["new_orders"],
                    "requests": r["requests"],
                    "rate_limited_429": r["rate_limited"],
                    "seconds": round(r["seconds"], 3),
                    "newest_cTime": ms_timestamp(r["newest_ctime"]),
                    "source": r["source"],
                    "uri": location_metadata(r["uri"]),
                })
        add_partition_metadata(context, account.asset_key("symbol_orders"), metadata_by_key)

    return record_symbol_partitions


def output_checks(df, partition_rows: int) -> list[dg.AssetCheckResult]:
    ids_unique = df["orderId"].n_unique() == df.height
    resorted = sort_chronologically(df)
    in_order = df.select("cTime", "orderId").equals(resorted.select("cTime", "orderId"))
    return [
        dg.AssetCheckResult(check_name="unique_order_ids", passed=ids_unique, metadata={"rows": df.height}),
        dg.AssetCheckResult(check_name="sorted_by_ctime_then_order_id", passed=in_order),
        dg.AssetCheckResult(
            check_name="count_equals_sum_of_partitions",
            passed=df.height == partition_rows,
            metadata={"output_rows": df.height, "partition_rows": partition_rows},
        ),
    ]


def _extraction_seconds(context: dg.AssetExecutionContext) -> float:
    """Since the CLI started the extraction (run tag), else since this run started."""
    started = context.run.tags.get(EXTRACTION_STARTED_TAG)
    if started is None:
        record = context.instance.get_run_record_by_id(context.run_id)
        started = record.start_time if record and record.start_time else time.time()
    return time.time() - float(started)
