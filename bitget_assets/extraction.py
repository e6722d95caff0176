"""The extraction steps as plain functions over a client and a storage: scan, update a partition, merge.

Dagster assets call these; tests and benchmarks can too. Nothing here knows about Dagster. Every dataset
(orders, plan orders, fills) goes through the same steps; the functions without a `dataset`/`datasets`
argument handle orders, as they always did.
"""

import hashlib
import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl

from bitget_assets import history_store as hs
from bitget_assets import paging
from bitget_assets.coverage import coverage_gaps as coverage_gaps  # for the asset check
from bitget_assets.coverage import describe_gaps, merge_intervals
from bitget_assets.datasets import dataset as dataset_named
from bitget_assets.datasets import stream_frame
from bitget_assets.identity import api_version_of, learn_identity
from bitget_assets.orders import SOURCE_COL
from bitget_assets.scan import DEFAULT_CONCURRENCY, Scanner, ScanResult, Task
from bitget_assets.sorted_merge import write_sorted
from bitget_assets.spool import ScanSpool
from bitget_assets.storage import IO_THREADS, Storage
from bitget_assets.streams import RETENTION_MS, check_datasets, ordered_datasets, streams_of

# Re-read at least this far behind the newest stored row, so rows that share its millisecond, or that the
# exchange had not yet shown in its history when we last read (a lag nobody documents: an hour is ample), are
# caught again. Rows that were open at the last read are found by their own cTime (refresh_start_ms).
SAFETY_OVERLAP_MS = 3_600_000
# A committed scan no partition run has finished taking in is reused for this long (SymbolChunkConfig's default).
RESUME_SCAN_AGE_S = 900
# Staged scan files outlive their scan's freshness with room to spare for the steps still reading them.
STAGED_SCAN_KEEP_S = 2 * RESUME_SCAN_AGE_S


@dataclass(frozen=True)
class ScanSummary:
    manifest: dict
    orders: int
    requests: int
    rate_limited: int
    seconds: float


def _dataset_marks(applied: dict, name: str) -> dict:
    if name == "orders":
        return applied.get("marks", {})
    return applied.get("datasets", {}).get(name, {}).get("marks", {})


def scan_account(
    client,
    storage: Storage,
    product_types: list[str],
    *,
    scan_id: str,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_page=None,
    streams=("orders",),
    api_version: int = 2,
    now_ms: int | None = None,
) -> ScanSummary:
    """Read every row of each dataset in `streams` the API still holds, without `symbol`, and stage it per
    dataset and symbol for the partitions. `manifest["symbols"]` is the union of the datasets' keys.
    `api_version` 3 reads a unified (UTA) account's v3 endpoints, rows mapped into the v2 schema. `now_ms`: the
    exchange's time the caller has just read (else it is read here), the end of every window."""
    datasets = check_datasets(streams)
    previous = hs.read_json(storage, hs.SCAN_MANIFEST)
    account = account_fingerprint(client)
    if previous and not same_account(previous.get("account"), client):
        raise ValueError(
            "this output location holds the order history of another Bitget account; "
            "choose another --output (mixing accounts would corrupt both histories)"
        )
    began = time.time()
    before = client.stats.as_dict()
    applied = hs.migrate_marks(hs.read_json(storage, hs.SCAN_APPLIED) or {})
    if resumable_scan(storage, previous, applied, account, product_types, datasets) and \
            previous.get("api_version", 2) == api_version:
        # A run stopped after this scan committed and before every partition took it in: finish that job
        # from the staged scan instead of reading the same window from Bitget again.
        return ScanSummary(previous, previous["orders"], 0, 0, 0.0)
    if now_ms is None:
        now_ms = client.server_time_ms()
    mine = bool(applied) and same_account(applied.get("account"), client)
    marks = {ds: (_dataset_marks(applied, ds) if mine else {}) for ds in datasets}
    # Rows go to a local spool as their pages arrive and are staged from there: memory stays bounded however
    # many rows the account holds. The spool's folder is removed however the scan ends.
    with ScanSpool() as spool:
        result, chains, splits = _read_streams(client, spool, datasets, marks, product_types, now_ms, api_version,
                                               concurrency=concurrency, on_page=on_page)
        spool.flush()
        manifest_datasets, columns = {}, {}
        for ds in datasets:
            manifest_datasets[ds], columns[ds] = _collect(ds, spool, result.ranges, product_types, marks[ds],
                                                          streams_of(ds, version=api_version))
        symbols = _stage(storage, scan_id, spool, columns)
    union: dict[str, int] = {}
    for ds in datasets:
        manifest_datasets[ds]["symbols"] = dict(sorted(symbols[ds].items()))
        for key, n in symbols[ds].items():
            union[key] = union.get(key, 0) + n
    stats = {k: v - before[k] for k, v in client.stats.as_dict().items()}
    orders_meta = manifest_datasets["orders"]
    total = {ds: meta["rows"] for ds, meta in manifest_datasets.items()}
    manifest = {
        "scan_id": scan_id,
        "account": account,
        "started_at": began,
        "finished_at": time.time(),
        "server_now_ms": now_ms,
        "ranges": orders_meta["ranges"],
        "incremental": bool(marks["orders"]),
        "marks": orders_meta["marks"],
        "product_types": list(product_types),
        "symbols": dict(sorted(union.items())),  # the sensor adds new keys in this order
        "datasets": manifest_datasets,
        "api_version": api_version,
        "staged_files": sum(len(s) for s in symbols.values()),
        "orders": total["orders"],
        "chains": chains,
        "splits": splits,
        **stats,
    }
    # The manifest is the commit point: partitions only ever read a scan it names.
    hs.write_json(storage, hs.SCAN_MANIFEST, manifest)
    drop_stale_scans(storage, keep=scan_id)
    return ScanSummary(manifest, total["orders"], stats["requests"], stats["rate_limited"], time.time() - began)


@dataclass(frozen=True)
class AccountScan:
    summary: ScanSummary
    identity: dict  # the account's mode and UID, as probed
    clock_offset_ms: int | None  # this machine's clock against the exchange's, as the signatures use it


def run_account_scan(client, storage: Storage, product_types: list[str], streams, *, scan_id: str,
                     concurrency: int = DEFAULT_CONCURRENCY, on_page=None, log=None) -> AccountScan:
    """The whole account scan, as `order_scan` runs it (in its step, or started early by the CLI)."""
    # The exchange's time first: its answer also measures the clock offset the signatures need.
    now_ms = client.server_time_ms()
    identity = learn_identity(client, storage, log=log)  # mode and UID: budgets keyed by the UID
    # The scan owns the scan bookkeeping. The previous scan's marks become the next start once every
    # partition has taken that scan in; before that, a fresh previous scan is finished instead of read
    # again (a run killed between its scan and its partitions), an old one read again from its marks.
    commit_applied_scan(storage, hs.read_json(storage, hs.SCAN_MANIFEST))
    summary = scan_account(client, storage, product_types, scan_id=scan_id, concurrency=concurrency,
                           on_page=on_page, streams=streams, api_version=api_version_of(identity), now_ms=now_ms)
    return AccountScan(summary, identity, client.clock_offset_ms)


def _read_streams(client, spool: ScanSpool, datasets, marks: dict, product_types, now_ms: int, api_version: int,
                  *, concurrency: int, on_page) -> tuple[ScanResult, int, int]:
    """Every stream of `datasets` over [its refresh start, now] per product type, its rows into `spool`:
    (what was read completely, chains, splits)."""
    incremental = [ds for ds in datasets if marks[ds]]
    early = None
    if incremental:
        # A refresh reads the open rows first: only those open last time and gone now have finished with an
        # old cTime, so only they make the history read reach further back than the overlap.
        early = Scanner(client, spool, concurrency, on_page).run(
            [Task(s, pt) for ds in incremental for s in streams_of(ds, version=api_version)
             if s.source == "pending" for pt in product_types])
    tasks = []
    for ds in datasets:
        specs = streams_of(ds, version=api_version)
        for spec in specs:
            for pt in product_types:
                if spec.source == "pending":
                    if ds not in incremental:
                        tasks.append(Task(spec, pt))
                    continue
                open_now = None
                if ds in incremental:
                    open_now = {i for s in specs if s.source == "pending"
                                for f in spool.kept(s.name, pt) for i in f[dataset_named(ds).key].to_list()}
                start = refresh_start_ms(marks[ds].get(pt, {}), now_ms - RETENTION_MS, open_now)
                tasks.append(Task(spec, pt, (start, now_ms)))
    result = Scanner(client, spool, concurrency, on_page).run(tasks)
    if early is None:
        return result, result.chains, result.splits
    return result, result.chains + early.chains, result.splits + early.splits


def _stage(storage: Storage, scan_id: str, spool: ScanSpool,
           columns: dict[str, list[str]]) -> dict[str, dict[str, int]]:
    """Write each dataset's spooled rows per (product type, symbol), every file with the dataset's `columns`;
    returns dataset -> partition key -> rows."""
    symbols: dict[str, dict[str, int]] = {ds: {} for ds in columns}

    def stage(item) -> None:
        ds, (pt, symbol) = item
        key = hs.staged_key(scan_id, pt, symbol, ds)
        symbols[ds][f"{symbol}:{pt}"] = spool.write_group(ds, pt, symbol, columns[ds],
                                                          lambda data: storage.write(key, data))

    # Parquet encoding and fsync release the GIL, so a few threads overlap them across hundreds of symbols,
    # once the first write alone has shown the storage takes writes (a refusal costs one attempt, not four).
    groups = ((ds, g) for ds in columns for g in spool.groups(ds))
    for first in itertools.islice(groups, 1):
        stage(first)
    with ThreadPoolExecutor(IO_THREADS) as pool:
        list(pool.map(stage, groups))
    return symbols


def _collect(ds: str, spool: ScanSpool, read: dict, product_types, marks: dict, specs) -> tuple[dict, list[str]]:
    """One dataset's rows of a scan, its new marks and what it read completely (`read`: the scan's ranges), and
    the columns of its staged files: every column any of its rows has, in the order they were first read."""
    d = dataset_named(ds)
    rows, columns, new_marks, ranges, coverage = 0, {}, {}, {}, {}
    for pt in product_types:
        for spec in sorted(specs, key=lambda s: s.source != "history"):  # history first, as rows were stacked
            rows += spool.rows(spec.name, pt)
            columns.update(dict.fromkeys(spool.columns(spec.name, pt)))
        history = [spool.newest_ctime(s.name, pt) for s in specs if s.source == "history"]
        pending = d.concat(f for s in specs if s.source == "pending" for f in spool.kept(s.name, pt))
        ends = [read.get((s.name, pt)) for s in specs if s.source == "history"]
        read_until = min(w[1] for w in ends) if ends and all(ends) else None
        new_marks[pt] = scan_marks(marks.get(pt, {}), history, pending, key=d.key, read_until_ms=read_until)
        for spec in specs:
            window = read.get((spec.name, pt))
            if window is not None:
                coverage.setdefault(spec.name, {})[pt] = [list(window)]
                if ds == "orders" and spec.source == "history":
                    ranges[pt] = list(window)
    # Every row was validated as its page arrived (ScanSpool.add), with the test d.validate makes.
    return {"rows": rows, "marks": new_marks, "ranges": ranges, "coverage": coverage}, list(columns)


def drop_stale_scans(storage: Storage, *, keep: str) -> None:
    """Delete staged scans written longer ago than any partition step may still be reading them.

    Age, not generation: with several runs of one account at once, any number of scans may commit while
    a step that read an older manifest is still reading that scan's files (or a scan is still staging).
    """
    staged: dict[str, dict[str, float]] = {}  # scan id -> its files -> when written
    for key, mtime in storage.modified_times("scan").items():
        parts = key.split("/")  # scan/<scan id>/[<dataset>/]<product type>/<symbol>.parquet
        if len(parts) >= 4 and parts[1] != keep:
            staged.setdefault(parts[1], {})[key] = mtime
    for files in staged.values():
        if time.time() - max(files.values()) > STAGED_SCAN_KEEP_S:
            for key in files:
                storage.delete(key)


def resumable_scan(storage: Storage, manifest: dict | None, applied: dict, account: str, product_types,
                   datasets=("orders",)) -> bool:
    """A committed scan of the same datasets, younger than a partition's max scan age, not applied yet, with
    every staged file."""
    return bool(
        manifest
        and manifest.get("account") == account
        and manifest["scan_id"] != applied.get("scan_id")
        and time.time() - manifest["finished_at"] <= RESUME_SCAN_AGE_S
        and set(manifest["product_types"]) == set(product_types)
        and set(manifest.get("datasets", {"orders": None})) == set(datasets)
        and len(storage.list(f"scan/{manifest['scan_id']}")) == manifest.get("staged_files", len(manifest["symbols"]))
    )


def scan_marks(previous: dict, history: list[int | None], pending: pl.DataFrame, *, key: str = "orderId",
               read_until_ms: int | None = None) -> dict:
    """High-water marks of one product type after a scan: the newest cTime stored, how far its history was read
    completely (so a stream with no rows at all is not read over the whole retention again), and the rows open
    now. `history`: the newest cTime each history stream read (None: no row)."""
    ctimes = [int(c) for c in (*history, pending["cTime"].cast(pl.Int64).max(), previous.get("newest_ctime"))
              if c is not None]
    reads = [int(t) for t in (read_until_ms, previous.get("read_until_ms")) if t is not None]
    return {
        "newest_ctime": max(ctimes) if ctimes else None,
        "read_until_ms": max(reads) if reads else None,
        # pending is read in full every time, so these are the rows open right now
        "open_orders": open_orders(pending, key),
    }


def open_orders(frame: pl.DataFrame, key: str = "orderId") -> dict[str, int]:
    """id -> cTime of open rows: the next read looks for those that have finished since."""
    return dict(zip(frame[key].to_list(), frame["cTime"].cast(pl.Int64).to_list(), strict=True))


def commit_applied_scan(storage: Storage, manifest: dict | None) -> bool:
    """Record the scan's marks (and what it read completely) as the start of the next one, once every
    symbol of every dataset it read is stored.

    Until then the next scan starts from the previous marks and re-reads this window, so a run that
    crashed between the scan and the partitions loses nothing.
    """
    if not manifest:
        return False
    per_dataset = manifest.get("datasets") or {"orders": {"symbols": manifest["symbols"], "marks": manifest["marks"]}}
    for ds, meta in per_dataset.items():
        for key in meta["symbols"]:
            state = hs.read_partition_state(storage, key, ds)
            taken = state.get("scan_id") == manifest["scan_id"]
            if not taken and (state.get("last_read_ms") or 0) < manifest["server_now_ms"]:
                return False
    previous = hs.read_json(storage, hs.SCAN_APPLIED) or {}
    if previous.get("account") != manifest["account"]:
        previous = {}
    applied = {"scan_id": manifest["scan_id"], "account": manifest["account"], "marks": manifest["marks"],
               "datasets": {}}
    for ds, meta in per_dataset.items():
        old = previous.get("datasets", {}).get(ds, {}).get("coverage", {})
        coverage = {}
        for stream, by_pt in {**old, **meta.get("coverage", {})}.items():
            coverage[stream] = {pt: merge_intervals(old.get(stream, {}).get(pt, []) +
                                                    meta.get("coverage", {}).get(stream, {}).get(pt, []))
                                for pt in {*old.get(stream, {}), *by_pt}}
        applied["datasets"][ds] = {"marks": meta["marks"], "coverage": coverage}
    hs.write_json(storage, hs.SCAN_APPLIED, applied)
    return True


def coverage_holes(storage: Storage, now_ms: int, retention_ms: int = RETENTION_MS) -> list[dict]:
    """Every hole in what the committed scans have read completely: one entry per dataset, history stream,
    product type and uncovered [start, end] (see coverage.coverage_gaps); [] when there is none."""
    applied = hs.read_json(storage, hs.SCAN_APPLIED) or {}
    holes = []
    for ds, meta in sorted(applied.get("datasets", {}).items()):
        for stream, by_pt in sorted(meta.get("coverage", {}).items()):
            for pt, intervals in sorted(by_pt.items()):
                holes += [{"dataset": ds, "stream": stream, "product_type": pt, "start_ms": lo, "end_ms": hi,
                           "interval": describe_gaps([(lo, hi)])}
                          for lo, hi in coverage_gaps(intervals, now_ms, retention_ms)]
    return holes


def account_fingerprint(client) -> str:
    """Tells accounts apart in stored state: the account's UID once known (a rotated key keeps its history),
    else a hash of the API key (never the key itself)."""
    return f"uid-{client.uid}" if getattr(client, "uid", None) else key_hash(client)


def key_hash(client) -> str:
    return hashlib.sha256(client.credentials.api_key.encode()).hexdigest()[:16]


def same_account(stored: str | None, client) -> bool:
    """Whether state recorded for `stored` is this client's account (releases before 2026-12-02 recorded the key's
    hash: still this account when this client has that key)."""
    return stored is None or stored in (account_fingerprint(client), key_hash(client))


def read_scan_rows(storage: Storage, manifest: dict, key: str, dataset: str = "orders") -> pl.DataFrame | None:
    """The scan's rows of one partition and dataset (empty if it saw none), or None if its staged file is gone."""
    symbol, pt = hs.split_key(key)
    symbols = manifest.get("datasets", {}).get(dataset, {}).get("symbols")
    if symbols is None:
        symbols = manifest.get("symbols", {}) if dataset == "orders" else {}
    if key not in symbols:
        return dataset_named(dataset).empty()
    return hs.read_parquet(storage, hs.staged_key(manifest["scan_id"], pt, symbol, dataset))


def refresh_start_ms(state: dict, retention_start_ms: int, open_now: set[str] | None = None) -> int:
    """Where a read (of one symbol, or a whole product type) must start to miss nothing since the last one.

    A safety overlap behind the newest stored row catches rows that share its millisecond or were still
    being written. Rows open at the last read may finish later but keep their old cTime: given the rows
    open now (`open_now`), the read reaches back to the oldest of those that have left the open list since;
    without it, to the oldest row that was open. (State of earlier releases is migrated when it is read.)
    """
    newest = max(int(state.get("newest_ctime") or 0), int(state.get("read_until_ms") or 0))
    if not newest:
        return retention_start_ms
    marks = [newest - SAFETY_OVERLAP_MS]
    marks += [int(c) for oid, c in state.get("open_orders", {}).items() if open_now is None or oid not in open_now]
    return max(retention_start_ms, min(marks))


@dataclass
class SymbolRead:
    """One symbol's direct read: a frame per dataset, when it was read, and what each stream read completely."""

    frames: dict[str, pl.DataFrame]
    read_at_ms: int
    coverage: dict[str, dict[str, list[list[int]]]] = field(default_factory=dict)  # dataset -> stream -> intervals


def fetch_symbol(client, key: str, state: dict, datasets=None, *, api_version: int = 2):
    """Read one symbol directly (the path when no fresh account scan covers it), over the one shared client.

    Without `datasets`: orders only, `state` is their partition state, returns (frame, read time).
    With `datasets`: `state` maps dataset -> its partition state, returns a SymbolRead.
    """
    if datasets is None:
        read = read_symbol(client, key, {"orders": state}, ("orders",))
        return read.frames["orders"], read.read_at_ms
    return read_symbol(client, key, state, check_datasets(datasets), api_version=api_version)


def read_symbol(client, key: str, states: dict[str, dict], datasets, *, api_version: int = 2) -> SymbolRead:
    symbol, pt = hs.split_key(key)
    now_ms = client.server_time_ms()
    out = SymbolRead({}, now_ms)
    for ds in datasets:
        d, state = dataset_named(ds), hs.migrate_state(states.get(ds) or {})
        frames, open_now = [], set()
        for spec in (s for s in streams_of(ds, version=api_version) if s.source == "pending"):
            for rows in paging.walk(client, spec, pt, symbol=symbol):
                frames.append(stream_frame(spec, rows, pt))
                open_now.update(str(r[spec.id_field]) for r in rows)
        start = refresh_start_ms(state, now_ms - RETENTION_MS, open_now)
        for spec in (s for s in streams_of(ds, version=api_version) if s.source == "history"):
            for rows in paging.walk(client, spec, pt, symbol=symbol, start_ms=start, end_ms=now_ms):
                frames.append(stream_frame(spec, rows, pt))
            out.coverage.setdefault(ds, {})[spec.name] = [[start, now_ms]]
        out.frames[ds] = d.concat(frames)
    return out


def update_partition(storage: Storage, key: str, fresh: pl.DataFrame, *, read_at_ms: int, scan_id: str | None,
                     dataset: str = "orders", coverage: dict[str, list[list[int]]] | None = None) -> dict:
    """Merge freshly read rows into the stored partition of `dataset` (latest uTime wins) and save it atomically.

    When the merge changes nothing the data file is not rewritten; the state (read time, scan, coverage) is.
    """
    d = dataset_named(dataset)
    symbol, pt = hs.split_key(key)
    if fresh.height:
        d.validate(fresh)
        foreign = fresh.filter(pl.col("symbol") != symbol)
        if foreign.height:
            raise ValueError(f"partition {key}: the API returned {dataset} of other symbols")
    old = hs.read_partition(storage, key, dataset)
    merged = d.merge([old, fresh])
    changed = not merged.equals(old)
    previous = hs.read_partition_state(storage, key, dataset)
    # Open means "last seen on the pending endpoint": history also holds partially_filled orders that ended.
    open_rows = merged.filter(pl.col(SOURCE_COL) == "pending") if SOURCE_COL in merged.columns else merged.clear()
    state = {
        "orders" if dataset == "orders" else "rows": merged.height,
        "newest_ctime": merged["cTime"].cast(pl.Int64).max() if merged.height else None,
        # merged is in (cTime, id) order: its last row is the high-water mark
        "newest_order_id" if dataset == "orders" else "newest_id": merged[d.key][-1] if merged.height else None,
        "open_orders": open_orders(open_rows, d.key),
        "last_read_ms": read_at_ms,
        "scan_id": scan_id,
    }
    covered = dict(previous.get("coverage", {}))
    for stream, intervals in (coverage or {}).items():
        covered[stream] = merge_intervals(covered.get(stream, []) + intervals)
    if covered:
        state["coverage"] = covered
    uri = hs.write_partition(storage, key, merged if changed else None, state, dataset)
    return {**state, "rows": merged.height, "new_orders": merged.height - old.height, "read": fresh.height,
            "uri": uri, "written": changed}


@dataclass(frozen=True)
class OutputSummary:
    count: int
    symbols: int
    first_ctime: int | None
    last_ctime: int | None
    partition_rows: int
    json_uri: str
    parquet_uri: str
    csv_uri: str = ""
    imported_rows: int = 0  # orders only the website's exports hold


def build_sorted_orders(storage: Storage, keys: list[str], *, elapsed_seconds: float) -> OutputSummary:
    """orders.json/.parquet/.csv from every partition (see build_sorted_outputs)."""
    return build_sorted_outputs(storage, keys, ("orders",), elapsed_seconds=elapsed_seconds)["orders"]


def build_sorted_outputs(storage: Storage, keys: list[str], datasets, *, elapsed_seconds: float,
                         imported: pl.DataFrame | None = None) -> dict[str, OutputSummary]:
    """Per dataset: merge every partition, de-duplicate by its key, sort by (cTime, key), write JSON, Parquet
    and CSV. Every file of every dataset is written completely in one staging folder, then all are published
    together: a failure while building or uploading any leaves the previous outputs exactly as they were.
    `imported`: orders from Bitget's website exports, merged into orders with the API's row winning.
    """
    generated_at = datetime.now(UTC).isoformat(timespec="seconds")
    summaries, files = {}, {}
    with storage.staging_dir() as staging:
        for ds in ordered_datasets(datasets):
            # A bucket of rows at a time (bitget_assets.sorted_merge): memory does not grow with the history.
            written, s = write_sorted(storage, dataset_named(ds), keys, staging, generated_at=generated_at,
                                      elapsed_seconds=elapsed_seconds, imported=imported if ds == "orders" else None)
            files |= written
            summaries[ds] = dict(count=s.count, symbols=s.symbols, first_ctime=s.first_ctime,
                                 last_ctime=s.last_ctime, partition_rows=s.partition_rows,
                                 imported_rows=s.imported_rows)
        uris = storage.publish({key: path for key, path in ((p.name, p) for p in files.values())})
    return {ds: OutputSummary(**s, json_uri=uris[f"{ds}.json"], parquet_uri=uris[f"{ds}.parquet"],
                              csv_uri=uris[f"{ds}.csv"]) for ds, s in summaries.items()}
