"""Merge every partition of a dataset into its sorted outputs, a bounded number of rows at a time.

The result is exactly that of the in-memory merge (`Dataset.merge` over every partition, then, for orders,
`merge_sources` with the imported orders, then `datasets.write_outputs`): the same rows, order, columns and
files. Only the memory differs: it is bounded by the bucket size, not by the history.

How: every partition file holds one symbol, sorted by (cTime, id) (`extraction.update_partition`). One pass
reads only its id and time columns: it validates them, chooses cTime bounds that cut the whole history into
buckets of about `bucket_rows` rows (rows of one millisecond always share a bucket), finds where each bound
falls in each partition, and resolves ids present more than once (which would sit in different buckets) by
the merge rule, up front. Then each bucket reads its row range of every partition (row groups outside it are
skipped: history_store.PARTITION_ROW_GROUP) and is sorted like the whole would be; the buckets, in order, are
streamed a slice at a time into the output Parquet (a polars IO source feeding `sink_parquet`). JSON and CSV are
then written from that file, a row group at a time.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path

import polars as pl
from polars.io.plugins import register_io_source

from bitget_assets import history_store as hs
from bitget_assets import orders as table
from bitget_assets.datasets import Dataset, write_text_outputs
from bitget_assets.imports.parse import PROVENANCE_COL
from bitget_assets.storage import IO_THREADS, Storage

BUCKET_ROWS = 250_000  # rows merged, sorted and written at once (~200 bytes each in memory)
TEXT_SLICE = 50_000  # rows per row group of the output Parquet: JSON and CSV are written from it a group at a time
_ROW = "__row"  # a partition's row number, where some of its rows lose to a copy elsewhere


@dataclass
class _Partition:
    path: Path
    rows: int
    schema: pl.Schema
    ctime: pl.Series | None  # Int64, until the bucket bounds are found in it
    in_order: bool  # by cTime (always, for files this release wrote): buckets are row ranges
    hashes: pl.Series | None = None  # of its ids, until ids held twice are found
    found: set[str] = field(default_factory=set)  # imported orderIds it holds
    cuts: list[int] = field(default_factory=list)  # bucket i is rows cuts[i]:cuts[i + 1]
    losers: pl.Series | None = None  # row numbers of rows that lose to another copy of their id


@dataclass
class MergeSummary:
    count: int
    symbols: int
    first_ctime: int | None
    last_ctime: int | None
    partition_rows: int
    imported_rows: int
    largest_bucket: int  # the most rows held at once (what bounds the memory)
    buckets: int


def write_sorted(storage: Storage, d: Dataset, keys: list[str], folder: Path, *, generated_at: str,
                 elapsed_seconds: float, imported: pl.DataFrame | None = None,
                 bucket_rows: int = BUCKET_ROWS) -> tuple[dict[str, Path], MergeSummary]:
    """`d`'s three output files in `folder` (staging), keyed by storage key, and what they hold.
    `imported` (orders only): orders from website exports, added where the API has no row of their orderId."""
    files = {name: folder / name for name in d.files.values()}
    parquet = files[d.files["parquet"]]
    with local_partitions(storage, keys, d.name) as paths:
        with ThreadPoolExecutor(IO_THREADS) as pool:
            parts = [p for p in pool.map(_survey(d, imported), paths) if p.rows]
        partition_rows = sum(p.rows for p in parts)
        found = set().union(*(p.found for p in parts))
        _mark_losers(d, parts)
        bounds = _bounds(parts, bucket_rows)
        for p in parts:
            p.cuts = [0, *p.ctime.search_sorted(bounds, side="left").to_list(), p.rows] if p.in_order else []
            p.ctime = None
        api_schema = _concat_schema([p.schema for p in parts]) if parts else d.empty().schema
        extra = _extra(imported, found) if d.name == "orders" and imported is not None and imported.height else None
        schema = _output_schema(api_schema, bool(parts), extra)
        stats = _Stats()
        buckets = _buckets(d, parts, bounds, api_schema, schema, extra, stats)
        # The buckets, in order and a slice at a time, streamed into one file (no bucket is held by the writer).
        public = table.public_columns(pl.DataFrame(schema=schema)).schema
        register_io_source(_slices_of(buckets), schema=public).sink_parquet(
            parquet, compression="zstd", row_group_size=TEXT_SLICE)
    write_text_outputs(d, parquet, files, generated_at=generated_at, elapsed_seconds=elapsed_seconds)
    api_rows = partition_rows - sum(p.losers.len() for p in parts if p.losers is not None)
    return files, MergeSummary(
        count=stats.count, symbols=len(stats.symbols), first_ctime=stats.first, last_ctime=stats.last,
        partition_rows=partition_rows, imported_rows=stats.count - api_rows if extra is not None else 0,
        largest_bucket=stats.largest, buckets=bounds.len() + 1)


def _buckets(d: Dataset, parts: list[_Partition], bounds: pl.Series, api_schema: pl.Schema, schema: pl.Schema,
             extra: pl.DataFrame | None, stats: _Stats) -> Iterator[pl.DataFrame]:
    """Every bucket's rows, merged and in output order (public columns), as slices of `TEXT_SLICE` rows."""
    extra_bucket = _bucket_of(extra, bounds) if extra is not None else None
    for b in range(bounds.len() + 1):
        lo = bounds[b - 1] if b else None
        hi = bounds[b] if b < bounds.len() else None
        with ThreadPoolExecutor(IO_THREADS) as pool:
            pieces = [f for f in pool.map(_piece, parts, repeat(b), repeat(lo), repeat(hi), repeat(api_schema))
                      if f is not None]
        rows = table.concat(pieces, d.empty())
        del pieces
        order = table.merge_order(rows, key=d.key, history_wins=d.history_wins) if rows.height else None
        if extra is not None:  # merge_sources: the API's rows, marked, and the exports' rows it has not
            if order is not None and order.len() != rows.height:
                rows = rows[order]
            api = rows.with_columns(pl.lit("api").alias(PROVENANCE_COL)) if rows.height else rows.clear()
            rows = table.concat([_conform(api, schema), _conform(extra.filter(extra_bucket == b), schema)])
            order = table.chronological_order(rows) if rows.height else None
        stats.bucket(rows.height)
        for start in range(0, rows.height, TEXT_SLICE):
            part = table.public_columns(_conform(rows[order.slice(start, TEXT_SLICE)], schema))
            stats.add(part)
            yield part
        del rows, order


def _slices_of(frames: Iterator[pl.DataFrame]):
    """An IO source (polars.io.plugins) yielding `frames` as they are (a sink asks for every column and row)."""
    def source(with_columns, predicate, n_rows, batch_size):
        left = n_rows
        for frame in frames:
            if with_columns is not None:
                frame = frame.select(with_columns)
            if predicate is not None:
                frame = frame.filter(predicate)
            if left is not None:
                frame, left = frame.head(left), left - min(left, frame.height)
            yield frame
            if left == 0:
                return
    return source


@contextmanager
def local_partitions(storage: Storage, keys: list[str], dataset: str) -> Iterator[list[Path]]:
    """The partition files of `keys` that exist, in `keys` order, as local files (see `local_files`)."""
    with local_files(storage, [hs.partition_base(k, dataset) + ".parquet" for k in keys]) as paths:
        yield [path for path in paths.values() if path is not None]


@contextmanager
def local_files(storage: Storage, keys: list[str]) -> Iterator[dict[str, Path | None]]:
    """Each key's object as a local file (None when absent): in place for a local folder, else downloaded into
    a temporary folder, removed afterwards (disk, never memory)."""
    local = {key: storage.local_path(key) for key in keys}
    if None not in local.values():
        yield {key: path if path.exists() else None for key, path in local.items()}
        return
    with tempfile.TemporaryDirectory(prefix="bitget-download-") as tmp:
        targets = [Path(tmp) / f"{i:06d}.parquet" for i in range(len(keys))]
        with ThreadPoolExecutor(IO_THREADS) as pool:
            present = list(pool.map(storage.download, keys, targets))
        yield {key: target if ok else None for key, target, ok in zip(keys, targets, present, strict=True)}


def id_figures(rows: pl.DataFrame | pl.LazyFrame, key: str, slice_rows: int = 500_000) -> tuple[int, bool, bool]:
    """(rows, every `key` once, rows in (cTime, numeric key) order) of a written file's scan, read a slice of
    two columns at a time: what `orders.sort_chronologically` would leave in place is "in order"."""
    rows = rows.lazy().select("cTime", key)
    count, hashes, in_order, last = 0, [], True, None
    for part in table.slices(rows, slice_rows):
        count += part.height
        hashes.append(part[key].hash())
        # The sort key, nulls first as polars sorts them; cTime is cast strictly, as the sort casts it.
        sort_key = part.select(c=pl.col("cTime").cast(pl.Int64).fill_null(-(2**63)),
                               n=pl.col(key).str.len_chars().cast(pl.Int64).fill_null(-1),
                               k=pl.col(key).fill_null(""))
        both = sort_key if last is None else pl.concat([last, sort_key])
        c, n, k = pl.col("c"), pl.col("n"), pl.col("k")
        before = (c < c.shift()) | ((c == c.shift()) & ((n < n.shift()) | ((n == n.shift()) & (k < k.shift()))))
        in_order = in_order and not both.select(before.fill_null(False).any()).item()
        last = sort_key.tail(1)
    suspects = repeated(pl.concat(hashes) if hashes else pl.Series(dtype=pl.UInt64))
    del hashes
    unique = True
    if suspects.len():  # the same hash twice: the same id, unless two ids collide
        ids = rows.select(key).filter(pl.col(key).hash().is_in(suspects.implode())).collect()[key]
        unique = ids.n_unique() == ids.len()
    return count, unique, in_order


def repeated(values: pl.Series) -> pl.Series:
    """The values present more than once, found by sorting (8 bytes a hash, no hash table)."""
    ordered = values.sort()
    return ordered.filter(ordered == ordered.shift()).unique()


def _survey(d: Dataset, imported: pl.DataFrame | None):
    """Per partition file: its id and time columns read and validated, its rows, schema and times."""
    wanted = imported["orderId"].unique() if d.name == "orders" and imported is not None and imported.height \
        else None

    def survey(path: Path) -> _Partition:
        schema = pl.read_parquet_schema(path)
        cols = [c for c in d.required if c in schema]
        df = pl.read_parquet(path, columns=cols)
        if not df.height:
            return _Partition(path, 0, pl.Schema(schema), None, True)
        table.validate(df, d.required, d.name)
        ctime, ids = df["cTime"].cast(pl.Int64), df[d.key]
        found = set(ids.filter(ids.is_in(wanted.implode())).to_list()) if wanted is not None else set()
        return _Partition(path, df.height, pl.Schema(schema), ctime, ctime.is_sorted(), ids.hash(), found)

    return survey


def _mark_losers(d: Dataset, parts: list[_Partition]) -> None:
    """Ids held more than once (in one partition or across): the copies that lose by the merge rule (latest
    uTime wins, then the later row; see `orders.merge`) are marked, so the buckets never meet them."""
    suspects = repeated(pl.concat([p.hashes for p in parts]) if parts else pl.Series(dtype=pl.UInt64))
    for p in parts:
        p.hashes = None
    if not suspects.len():
        return
    frames = []
    for i, p in enumerate(parts):
        cols = [c for c in (d.key, "cTime", "uTime", table.SOURCE_COL) if c in p.schema]
        df = pl.read_parquet(p.path, columns=cols).with_row_index(_ROW)
        df = df.filter(pl.col(d.key).hash().is_in(suspects.implode()))
        if df.height:
            frames.append(df.with_columns(pl.lit(i, pl.UInt32).alias("_part")))
    rows = table.concat(frames)
    keep = table.merge([rows], key=d.key, history_wins=d.history_wins).select("_part", _ROW)
    lose = rows.select("_part", _ROW).join(keep, on=["_part", _ROW], how="anti")
    for (i,), group in lose.group_by("_part"):
        parts[i].losers = group[_ROW]


def _bounds(parts: list[_Partition], bucket_rows: int) -> pl.Series:
    """Ascending cTimes where a new bucket starts: every `bucket_rows`-th time of the whole history."""
    if not parts:
        return pl.Series(dtype=pl.Int64)
    times = pl.concat([p.ctime for p in parts]).sort()
    cuts = times.gather(list(range(bucket_rows, times.len(), bucket_rows))).unique(maintain_order=True)
    return cuts.filter(cuts > times[0])  # no empty first bucket


def _piece(p: _Partition, b: int, lo: int | None, hi: int | None, schema: pl.Schema) -> pl.DataFrame | None:
    scan, start = pl.scan_parquet(p.path), 0
    if p.in_order:
        start, stop = p.cuts[b], p.cuts[b + 1]
        if start == stop:
            return None
        scan = scan.slice(start, stop - start)  # row groups outside are not read
    if p.losers is not None:
        scan = scan.with_row_index(_ROW, offset=start).filter(~pl.col(_ROW).is_in(p.losers.implode()))
    if not p.in_order:  # not in cTime order (no file this release wrote): the whole file, filtered
        ctime = pl.col("cTime").cast(pl.Int64)
        if lo is not None:
            scan = scan.filter(ctime >= lo)
        if hi is not None:
            scan = scan.filter(ctime < hi)
    df = scan.collect()
    return _conform(df.drop(_ROW, strict=False), schema) if df.height else None


def _concat_schema(schemas: list[pl.Schema]) -> pl.Schema:
    """The schema `orders.concat` gives frames of these schemas (all non-empty)."""
    if all(s == schemas[0] for s in schemas):
        return schemas[0]
    return pl.concat([pl.DataFrame(schema=s) for s in schemas], how="diagonal_relaxed").schema


def _extra(imported: pl.DataFrame, found: set[str]) -> pl.DataFrame:
    """The imported rows `merge_sources` adds: the first of each orderId, where the API has none."""
    extra = imported.unique(subset=["orderId"], keep="first", maintain_order=True)
    return extra.filter(~pl.col("orderId").is_in(pl.Series(list(found), dtype=pl.String).implode()))


def _output_schema(api: pl.Schema, api_rows: bool, extra: pl.DataFrame | None) -> pl.Schema:
    """The columns of the whole merged frame (as `merge_sources` would build it from the whole API frame)."""
    if extra is None:
        return api
    frames = [s for s, n in ((pl.Schema({**api, PROVENANCE_COL: pl.String}), api_rows),
                             (extra.schema, extra.height)) if n]
    if not frames:
        return table.empty_frame().schema
    return _concat_schema(frames)


def _bucket_of(extra: pl.DataFrame, bounds: pl.Series) -> pl.Series:
    """Each imported row's bucket; a row without a time sorts first, so it goes to the first bucket."""
    ctime = extra["cTime"].cast(pl.Int64).fill_null(-(2**63))
    return bounds.search_sorted(ctime, side="right")


def _conform(df: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """`df` with exactly `schema`'s columns, in its order (a column it lacks is null)."""
    if df.schema == schema:
        return df
    return df.select([pl.col(name).cast(dtype) if name in df.columns else pl.lit(None, dtype).alias(name)
                      for name, dtype in schema.items()])


class _Stats:
    def __init__(self):
        self.count, self.largest, self.symbols = 0, 0, set()
        self.first: int | None = None
        self.last: int | None = None

    def bucket(self, rows: int) -> None:
        self.largest = max(self.largest, rows)

    def add(self, df: pl.DataFrame) -> None:
        self.count += df.height
        self.symbols.update(df["symbol"].unique().to_list())
        ctime = df["cTime"].cast(pl.Int64)
        lo, hi = ctime.min(), ctime.max()
        if lo is not None:
            self.first = lo if self.first is None else min(self.first, lo)
            self.last = hi if self.last is None else max(self.last, hi)
