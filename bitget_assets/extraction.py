"""The extraction steps as plain functions over a client and a storage: scan, update a partition, merge.

Dagster assets call these; tests and benchmarks can too. Nothing here knows about Dagster.
"""

import hashlib
import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from bitget_assets import history_store as hs
from bitget_assets.bitget.client import RETENTION_MS, BitgetClient
from bitget_assets.orders import (
    PRODUCT_TYPE_COL,
    SOURCE_COL,
    concat,
    empty_frame,
    merge,
    orders_frame,
    public_columns,
    validate,
    write_json_document,
)
from bitget_assets.partitions import parse_partition_key, partition_key
from bitget_assets.scan import Scanner
from bitget_assets.storage import Storage

# Re-read at least this far behind the newest stored order, so orders that share its millisecond, or that the
# exchange had not yet shown in its history when we last read (a lag nobody documents: an hour is ample), are
# caught again. Orders that were open at the last read are found by their own cTime (refresh_start_ms).
SAFETY_OVERLAP_MS = 3_600_000
# A committed scan no partition run has finished taking in is reused for this long (SymbolChunkConfig's default).
RESUME_SCAN_AGE_S = 900
# Staged scan files outlive their scan's freshness with room to spare for the steps still reading them.
STAGED_SCAN_KEEP_S = 2 * RESUME_SCAN_AGE_S
IO_THREADS = 4  # files read or written at once when a step handles every symbol


@dataclass(frozen=True)
class ScanSummary:
    manifest: dict
    orders: int
    requests: int
    rate_limited: int
    seconds: float


def scan_account(
    client: BitgetClient,
    storage: Storage,
    product_types: list[str],
    *,
    scan_id: str,
    concurrency: int = 4,
    on_page=None,
) -> ScanSummary:
    """Read every order the API still holds, without `symbol`, and stage it per symbol for the partitions."""
    previous = hs.read_json(storage, hs.SCAN_MANIFEST)
    account = account_fingerprint(client)
    if previous and previous.get("account", account) != account:
        raise ValueError(
            "this output location holds the order history of another Bitget account; "
            "choose another --output (mixing accounts would corrupt both histories)"
        )
    began = time.time()
    before = client.stats.as_dict()
    applied = hs.read_json(storage, hs.SCAN_APPLIED) or {}
    if resumable_scan(storage, previous, applied, account, product_types):
        # A run stopped after this scan committed and before every partition took it in: finish that job
        # from the staged scan instead of reading the same window from Bitget again.
        return ScanSummary(previous, previous["orders"], 0, 0, 0.0)
    now_ms = client.server_time_ms()
    marks = applied.get("marks", {}) if applied.get("account") == account else {}
    open_now = None
    if marks:
        # A refresh reads the open orders first: only those open last time and gone now have finished with an
        # old cTime, so only they make the history read reach further back than the overlap.
        open_now = Scanner(client, concurrency, on_page).scan(dict.fromkeys(product_types)).pending
    ranges = {pt: (refresh_start_ms(marks.get(pt, {}), now_ms - RETENTION_MS,
                                    None if open_now is None else set(concat(open_now[pt])["orderId"])), now_ms)
              for pt in product_types}
    result = Scanner(client, concurrency, on_page).scan(ranges, pending=open_now is None)
    if open_now is not None:
        result.pending = open_now
    frames, new_marks = [], {}
    for pt in product_types:
        history, pending = concat(result.history[pt]), concat(result.pending[pt])
        frames += [history, pending]
        new_marks[pt] = scan_marks(marks.get(pt, {}), history, pending)
    df = concat(frames)
    validate(df)
    symbols: dict[str, int] = {}

    def stage(item) -> None:
        (pt, symbol), group = item
        symbols[partition_key(symbol, pt)] = group.height
        storage.write(f"scan/{scan_id}/{pt}/{symbol}.parquet", hs.parquet_bytes(group))

    # Parquet encoding and fsync release the GIL, so a few threads overlap them across hundreds of symbols,
    # once the first write alone has shown the storage takes writes (a refusal costs one attempt, not four).
    groups = iter(df.group_by([PRODUCT_TYPE_COL, "symbol"]))
    for first in itertools.islice(groups, 1):
        stage(first)
    with ThreadPoolExecutor(IO_THREADS) as pool:
        list(pool.map(stage, groups))
    stats = {k: v - before[k] for k, v in client.stats.as_dict().items()}
    manifest = {
        "scan_id": scan_id,
        "account": account,
        "started_at": began,
        "finished_at": time.time(),
        "server_now_ms": now_ms,
        "ranges": result.ranges,
        "incremental": bool(marks),
        "marks": new_marks,
        "product_types": list(product_types),
        "symbols": dict(sorted(symbols.items())),  # the sensor adds new keys in this order
        "orders": df.height,
        "chains": result.chains,
        "splits": result.splits,
        **stats,
    }
    # The manifest is the commit point: partitions only ever read a scan it names.
    hs.write_json(storage, hs.SCAN_MANIFEST, manifest)
    drop_stale_scans(storage, keep=scan_id)
    return ScanSummary(manifest, df.height, stats["requests"], stats["rate_limited"], time.time() - began)


def drop_stale_scans(storage: Storage, *, keep: str) -> None:
    """Delete staged scans written longer ago than any partition step may still be reading them.

    Age, not generation: with several runs of one account at once, any number of scans may commit while
    a step that read an older manifest is still reading that scan's files (or a scan is still staging).
    """
    staged: dict[str, dict[str, float]] = {}  # scan id -> its files -> when written
    for key, mtime in storage.modified_times("scan").items():
        parts = key.split("/")  # scan/<scan id>/<product type>/<symbol>.parquet
        if len(parts) == 4 and parts[1] != keep:
            staged.setdefault(parts[1], {})[key] = mtime
    for files in staged.values():
        if time.time() - max(files.values()) > STAGED_SCAN_KEEP_S:
            for key in files:
                storage.delete(key)


def resumable_scan(storage: Storage, manifest: dict | None, applied: dict, account: str, product_types) -> bool:
    """A committed scan, younger than a partition's max scan age, not applied yet, with every staged file."""
    return bool(
        manifest
        and manifest.get("account") == account
        and manifest["scan_id"] != applied.get("scan_id")
        and time.time() - manifest["finished_at"] <= RESUME_SCAN_AGE_S
        and set(manifest["product_types"]) == set(product_types)
        and len(storage.list(f"scan/{manifest['scan_id']}")) == len(manifest["symbols"])
    )


def scan_marks(previous: dict, history: pl.DataFrame, pending: pl.DataFrame) -> dict:
    """High-water marks of one product type after a scan: the newest cTime stored, and the oldest open order."""
    ctimes = [int(c) for c in (history["cTime"].cast(pl.Int64).max(), pending["cTime"].cast(pl.Int64).max(),
                               previous.get("newest_ctime")) if c is not None]
    return {
        "newest_ctime": max(ctimes) if ctimes else None,
        # pending is read in full every time, so these are the orders open right now
        "open_orders": open_orders(pending),
    }


def open_orders(frame: pl.DataFrame) -> dict[str, int]:
    """orderId -> cTime of open orders: the next read looks for those that have finished since."""
    return dict(zip(frame["orderId"].to_list(), frame["cTime"].cast(pl.Int64).to_list(), strict=True))


def commit_applied_scan(storage: Storage, manifest: dict | None) -> bool:
    """Record the scan's marks as the start of the next one, once every symbol it read is stored.

    Until then the next scan starts from the previous marks and re-reads this window, so a run that
    crashed between the scan and the partitions loses nothing.
    """
    if not manifest:
        return False
    for key in manifest["symbols"]:
        state = hs.read_partition_state(storage, key)
        if state.get("scan_id") != manifest["scan_id"] and (state.get("last_read_ms") or 0) < manifest["server_now_ms"]:
            return False
    applied = {"scan_id": manifest["scan_id"], "account": manifest["account"], "marks": manifest["marks"]}
    hs.write_json(storage, hs.SCAN_APPLIED, applied)
    return True


def account_fingerprint(client: BitgetClient) -> str:
    """Tells accounts apart in stored state without storing the key itself."""
    return hashlib.sha256(client.credentials.api_key.encode()).hexdigest()[:16]


def read_scan_rows(storage: Storage, manifest: dict, key: str) -> pl.DataFrame | None:
    """The scan's orders of one partition (empty if it saw none), or None if its staged file is gone."""
    symbol, pt = parse_partition_key(key)
    if key not in manifest.get("symbols", {}):
        return empty_frame()
    return hs.read_parquet(storage, f"scan/{manifest['scan_id']}/{pt}/{symbol}.parquet")


def refresh_start_ms(state: dict, retention_start_ms: int, open_now: set[str] | None = None) -> int:
    """Where a read (of one symbol, or a whole product type) must start to miss nothing since the last one.

    A safety overlap behind the newest stored order catches orders that share its millisecond or were still
    being written. Orders open at the last read may finish later but keep their old cTime: given the orders
    open now (`open_now`), the read reaches back to the oldest of those that have left the open list since;
    without it, to the oldest order that was open.
    """
    if not state.get("newest_ctime"):
        return retention_start_ms
    marks = [int(state["newest_ctime"]) - SAFETY_OVERLAP_MS]
    if "open_orders" in state:
        marks += [int(c) for oid, c in state["open_orders"].items() if open_now is None or oid not in open_now]
    elif state.get("oldest_open_ctime"):  # state written before the open orders themselves were kept
        marks.append(int(state["oldest_open_ctime"]))
    return max(retention_start_ms, min(marks))


def fetch_symbol(client: BitgetClient, key: str, state: dict) -> tuple[pl.DataFrame, int]:
    """Read one symbol's orders directly (the path when no fresh account scan covers it)."""
    symbol, pt = parse_partition_key(key)
    now_ms = client.server_time_ms()
    pending = client.pending_orders(pt, symbol=symbol)
    start = refresh_start_ms(state, now_ms - RETENTION_MS, {o["orderId"] for o in pending})
    history = list(client.iter_history(pt, symbol=symbol, start_ms=start, end_ms=now_ms))
    return concat([orders_frame(history, pt, "history"), orders_frame(pending, pt, "pending")]), now_ms


def update_partition(storage: Storage, key: str, fresh: pl.DataFrame, *, read_at_ms: int, scan_id: str | None) -> dict:
    """Merge freshly read orders into the stored partition (latest uTime wins) and save it atomically."""
    symbol, pt = parse_partition_key(key)
    if fresh.height:
        validate(fresh)
        foreign = fresh.filter(pl.col("symbol") != symbol)
        if foreign.height:
            raise ValueError(f"partition {key}: the API returned orders of other symbols")
    old = hs.read_partition(storage, key)
    merged = merge([old, fresh])
    # Open means "last seen on the pending endpoint": history also holds partially_filled orders that ended.
    open_rows = merged.filter(pl.col(SOURCE_COL) == "pending")
    state = {
        "orders": merged.height,
        "newest_ctime": merged["cTime"].cast(pl.Int64).max() if merged.height else None,
        # merged is in (cTime, orderId) order: its last row is the high-water mark
        "newest_order_id": merged["orderId"][-1] if merged.height else None,
        "open_orders": open_orders(open_rows),
        "last_read_ms": read_at_ms,
        "scan_id": scan_id,
    }
    uri = hs.write_partition(storage, key, merged, state)
    return {**state, "new_orders": merged.height - old.height, "read": fresh.height, "uri": uri}


@dataclass(frozen=True)
class OutputSummary:
    count: int
    symbols: int
    first_ctime: int | None
    last_ctime: int | None
    partition_rows: int
    json_uri: str
    parquet_uri: str


def build_sorted_orders(storage: Storage, keys: list[str], *, elapsed_seconds: float) -> OutputSummary:
    """Merge every partition, de-duplicate by orderId, sort by (cTime, orderId), write JSON and Parquet.

    Both files are written completely in a staging folder, then published together: a failure while building
    or uploading either leaves the previous pair exactly as it was.
    """
    with ThreadPoolExecutor(IO_THREADS) as pool:
        parts = list(pool.map(lambda k: hs.read_partition(storage, k), keys))
    partition_rows = sum(p.height for p in parts)
    df = merge(parts)
    del parts  # the merged copy is all that is needed from here on
    validate(df)
    generated_at = datetime.now(UTC).isoformat(timespec="seconds")
    with storage.staging_dir() as staging:
        files = {hs.OUTPUT_PARQUET: staging / hs.OUTPUT_PARQUET, hs.OUTPUT_JSON: staging / hs.OUTPUT_JSON}
        public_columns(df).write_parquet(files[hs.OUTPUT_PARQUET], compression="zstd")
        with open(files[hs.OUTPUT_JSON], "wb") as out:
            write_json_document(df, out, generated_at=generated_at, elapsed_seconds=elapsed_seconds)
        uris = storage.publish(files)
    ctimes = df["cTime"].cast(pl.Int64) if df.height else None
    return OutputSummary(
        count=df.height,
        symbols=df["symbol"].n_unique() if df.height else 0,
        first_ctime=ctimes.min() if ctimes is not None else None,
        last_ctime=ctimes.max() if ctimes is not None else None,
        partition_rows=partition_rows,
        json_uri=uris[hs.OUTPUT_JSON],
        parquet_uri=uris[hs.OUTPUT_PARQUET],
    )
