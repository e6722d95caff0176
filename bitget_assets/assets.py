"""The asset graph of one account: order_scan → symbol_orders (one partition per symbol) → sorted_orders.

`build_assets(account)` makes the three assets for any account (see accounts.py); the module-level names are
the default account's, which is all a single-account deployment has.
"""

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import dagster as dg

from bitget_assets import extraction
from bitget_assets import history_store as hs
from bitget_assets.accounts import DEFAULT_ACCOUNT, Account
from bitget_assets.orders import sort_chronologically
from bitget_assets.partitions import parse_partition_key, symbols_partitions
from bitget_assets.progress import ProgressReporter
from bitget_assets.resources import BitgetResource, RateLimiterResource, StorageResource

# A missed refresh (every 15 min by default) turns sorted_orders amber, then red, in the UI.
HISTORY_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(minutes=int(os.environ.get("BITGET_STALE_AFTER_MINUTES", "60"))),
    warn_window=timedelta(minutes=30),
)
SYMBOL_CHUNKS = 4  # process steps the symbol partitions fan out to (threads inside each)
EXTRACTION_STARTED_TAG = "bitget/extraction_started_at"
SCAN_TAG = "bitget/scan"  # its value names the account: dagster.yaml allows one scan per account at a time
single_run = dg.BackfillPolicy.single_run()


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


def _resources(context, account: Account) -> _Resources:
    """This account's resources: each account has its own keys, so the ops look them up by name."""
    r = context.resources
    return _Resources(getattr(r, account.bitget_key), r.rate_limiter, getattr(r, account.storage_key))


def resource_keys(account: Account) -> set[str]:
    return {account.bitget_key, account.storage_key, "rate_limiter"}


class SymbolChunkConfig(dg.Config):
    max_scan_age_s: int = 900  # older scans are not trusted: the symbol is read directly instead


def build_assets(account: Account) -> AccountAssets:
    partitions_def = symbols_partitions(account)
    group = account.object_name("bitget")

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
        client = res.bitget.get_client(res.rate_limiter.get_limiter())
        progress = ProgressReporter("scan")
        context.log.info(f"scanning {', '.join(res.bitget.product_types)} on {res.bitget.exchange_label}")
        summary = extraction.scan_account(
            client,
            res.storage.get_storage(),
            res.bitget.product_types,
            scan_id=context.run_id,
            concurrency=res.bitget.concurrency,
            on_page=lambda chain, orders: progress.add(requests=1, orders=len(orders)),
        )
        symbols = summary.manifest["symbols"]
        progress.set(requests=summary.requests, rate_limited=summary.rate_limited, symbols=len(symbols))
        registered = set(context.instance.get_dynamic_partitions(partitions_def.name))
        new_symbols = [k for k in symbols if k not in registered]
        return dg.MaterializeResult(
            metadata={
                "exchange": res.bitget.exchange_label,
                "orders": summary.orders,
                "symbols": len(symbols),
                "new_symbol_count": len(new_symbols),
                "requests": summary.requests,
                "rate_limited_429": summary.rate_limited,
                "seconds": round(summary.seconds, 2),
                "incremental": summary.manifest["incremental"],
                "paging_chains": summary.manifest["chains"],
                "new_symbols": dg.MetadataValue.json(new_symbols),  # last: a long list would push the rest down
            }
        )

    chunk_ops = [_chunk_op(account, i) for i in range(SYMBOL_CHUNKS)]
    record = _record_op(account)

    @dg.graph_asset(
        name="symbol_orders",
        key_prefix=account.key_prefix,
        group_name=group,
        partitions_def=partitions_def,
        backfill_policy=single_run,
        kinds={"parquet"},
        ins={"order_scan": dg.AssetIn(key=order_scan.key, dagster_type=dg.Nothing)},
        description="Every order of one symbol (history and open orders), kept beyond Bitget's 90 days; "
        "an order seen again replaces the older copy (latest uTime wins).",
    )
    def symbol_orders(order_scan):
        return record([chunk(order_scan) for chunk in chunk_ops])

    sorted_key = account.asset_key("sorted_orders")

    @dg.asset(
        name="sorted_orders",
        key_prefix=account.key_prefix,
        group_name=group,
        deps=[symbol_orders],
        backfill_policy=single_run,
        kinds={"polars", "parquet", "json"},
        required_resource_keys={account.storage_key},
        automation_condition=dg.AutomationCondition.eager(),
        freshness_policy=HISTORY_FRESHNESS,
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
        summary = extraction.build_sorted_orders(store, keys, elapsed_seconds=_extraction_seconds(context))
        committed = extraction.commit_applied_scan(store, hs.read_json(store, hs.SCAN_MANIFEST))
        # Checks read back what was persisted (the columns they judge), not the frame in memory.
        written = hs.read_parquet(store, hs.OUTPUT_PARQUET, columns=["orderId", "cTime"])
        return dg.MaterializeResult(
            metadata={
                "count": summary.count,
                "symbols": summary.symbols,
                "first_cTime": summary.first_ctime or 0,
                "last_cTime": summary.last_ctime or 0,
                "elapsed_seconds": round(_extraction_seconds(context), 2),
                "json_uri": summary.json_uri,
                "parquet_uri": summary.parquet_uri,
                "dagster/uri": summary.json_uri,
                "dagster/row_count": summary.count,
                "scan_committed": committed,
            },
            check_results=output_checks(written, summary.partition_rows),
        )

    return AccountAssets(account, partitions_def, order_scan, symbol_orders, sorted_orders)


def chunk_keys(context: dg.OpExecutionContext, bitget: BitgetResource, index: int) -> list[str]:
    """This step's share of the run's partition keys, each checked before any request is made."""
    keys = list(context.partition_keys)
    for key in keys:
        _, product_type = parse_partition_key(key)
        if product_type not in bitget.product_types:
            raise dg.Failure(f"partition {key}: product type {product_type} is not configured")
    return keys[index::SYMBOL_CHUNKS]


def materialize_symbol_chunk(
    context: dg.OpExecutionContext, config: SymbolChunkConfig, index: int, res: _Resources
) -> dict:
    """Bring each symbol of the chunk up to date: from a fresh account scan, else by reading it directly."""
    keys = chunk_keys(context, res.bitget, index)
    store = res.storage.get_storage()
    manifest = hs.read_json(store, hs.SCAN_MANIFEST)
    fresh = manifest and time.time() - manifest["finished_at"] <= config.max_scan_age_s
    limiter = res.rate_limiter.get_limiter()
    progress = ProgressReporter("symbols")

    def one(key: str) -> tuple[str, dict]:
        began = time.time()
        rows = extraction.read_scan_rows(store, manifest, key) if fresh else None
        if fresh and rows is None:
            context.log.warning(f"{key}: the staged orders of scan {manifest['scan_id']} are gone; "
                                "reading the symbol directly instead")
        if rows is not None:
            result = extraction.update_partition(
                store, key, rows, read_at_ms=manifest["server_now_ms"], scan_id=manifest["scan_id"]
            )
            stats = {"requests": 0, "rate_limited": 0}
            source = f"account scan {manifest['scan_id'][:8]}"
        else:
            client = res.bitget.get_client(limiter)
            state = hs.read_partition_state(store, key)
            rows, now_ms = extraction.fetch_symbol(client, key, state)
            result = extraction.update_partition(store, key, rows, read_at_ms=now_ms, scan_id=None)
            stats = client.stats.as_dict()
            source = "direct read of the symbol"
        progress.add(symbols_done=1, partition_orders=result["orders"])
        return key, {**result, **stats, "seconds": time.time() - began, "source": source}

    with ThreadPoolExecutor(max(1, res.bitget.concurrency)) as pool:
        results = dict(pool.map(one, keys))
    progress.close()
    context.log.info(f"{len(results)} symbols up to date")
    return results


def _chunk_op(account: Account, index: int) -> dg.OpDefinition:
    # A fixed fan-out (not DynamicOut) saves a planning step's process start on the critical path.
    @dg.op(name=account.object_name(f"symbol_chunk_{index}"), ins={"order_scan": dg.In(dg.Nothing)},
           required_resource_keys=resource_keys(account))
    def chunk_op(context: dg.OpExecutionContext, config: SymbolChunkConfig) -> dict:
        return materialize_symbol_chunk(context, config, index, _resources(context, account))

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
                metadata_by_key[key] = {
                    "orders": r["orders"],
                    "new_orders": r["new_orders"],
                    "requests": r["requests"],
                    "rate_limited_429": r["rate_limited"],
                    "seconds": round(r["seconds"], 3),
                    "newest_cTime": r["newest_ctime"] or 0,
                    "source": r["source"],
                    "uri": r["uri"],
                }
        _add_partition_metadata(context, account.asset_key("symbol_orders"), metadata_by_key)

    return record_symbol_partitions


def _add_partition_metadata(context: dg.OpExecutionContext, asset_key: dg.AssetKey,
                            metadata_by_key: dict[str, dict]) -> None:
    """Per-partition metadata, which Dagster only exposes on the step context.

    The public `add_asset_metadata` re-reads every dynamic partition key on each call (O(n²) for a run over
    n symbols: 20 s for 300); the keys were checked against the run's targets above, so fold them in
    directly, and fall back to the public call if Dagster's internals ever move.
    """
    step = context.get_step_execution_context()
    accumulator = getattr(step, "_metadata_accumulator", None)
    if accumulator is None or not hasattr(accumulator, "with_additional_asset_metadata"):
        for key, metadata in metadata_by_key.items():
            step.add_asset_metadata(metadata, asset_key=asset_key, partition_key=key)
        return
    for key, metadata in metadata_by_key.items():
        accumulator = accumulator.with_additional_asset_metadata(asset_key, key, metadata)
    step._metadata_accumulator = accumulator


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


default_assets = build_assets(DEFAULT_ACCOUNT)
order_scan, symbol_orders, sorted_orders = default_assets.all
