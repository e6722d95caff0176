"""An account scan's rows on local disk as their pages arrive, staged per symbol at the end: bounded memory.

A scan of a million orders must not hold a million rows. Pages are validated as they arrive and buffered per
dataset; once a buffer holds `chunk_rows` rows it is split by (product type, symbol) and each part is appended
to one spool file as a compressed Arrow IPC segment. At the end each symbol's segments are streamed into its
staged Parquet file, one symbol at a time. Besides the buffers (at most `2 * chunk_rows` rows, plus a page
per worker: a page that would pass that waits until a flush has written rows out), only small things stay in
memory: per (slot, product type) its row count, newest cTime, column order, and the pending rows (the rows
open now, needed for the marks and by a refresh's history read).
"""

import io
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import polars as pl
from polars.io.plugins import register_io_source

from bitget_assets import history_store as hs
from bitget_assets.datasets import dataset as dataset_named
from bitget_assets.orders import PRODUCT_TYPE_COL
from bitget_assets.orders import concat as concat_frames
from bitget_assets.streams import StreamSpec

CHUNK_ROWS = 25_000  # rows of one dataset buffered before they are written out
STREAM_ROWS = 25_000  # a symbol with more staged rows is written to Parquet as a stream, never whole in memory


class ScanSpool:
    """`with ScanSpool() as spool:` pass `spool.add` pages (any thread), then `stage(...)` each dataset.

    The temporary folder is removed on exit, also after an error."""

    def __init__(self, chunk_rows: int = CHUNK_ROWS, stream_rows: int = STREAM_ROWS):
        self.chunk_rows = max(1, chunk_rows)
        self.max_rows = 2 * self.chunk_rows
        self.stream_rows = stream_rows
        self._cond = threading.Condition()
        self._buffers: dict[str, list[pl.DataFrame]] = {}  # dataset -> pages not yet written
        self._buffered: dict[str, int] = {}  # dataset -> rows in its buffer
        self._in_memory = 0  # rows buffered or being written
        self.peak_rows = 0  # high-water mark of _in_memory
        self._rows: dict[tuple[str, str], int] = {}  # (slot, product type) -> rows read
        self._newest: dict[tuple[str, str], int] = {}  # (slot, product type) -> newest cTime read
        self._columns: dict[tuple[str, str], dict[str, None]] = {}  # (slot, product type) -> columns, in order
        self._kept: dict[tuple[str, str], list[pl.DataFrame]] = {}  # pending rows, kept whole (they are few)
        self._segments: dict[tuple[str, str, str], list[tuple[int, int]]] = {}  # (ds, pt, symbol) -> offsets
        self._segment_rows: dict[tuple[str, str, str], int] = {}
        self._file_lock = threading.Lock()
        self._folder: Path | None = None
        self._file = None

    def __enter__(self) -> "ScanSpool":
        self._folder = Path(tempfile.mkdtemp(prefix="bitget-scan-"))
        self._file = open(self._folder / "rows.arrows", "w+b")  # noqa: SIM115 - closed in __exit__
        return self

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
        self._folder = self._file = None

    # -- reading side: called by the Scanner's workers ---------------------------------------------------------

    def add(self, slot: str, product_type: str, spec: StreamSpec, frame: pl.DataFrame) -> None:
        """One page of `slot` (the stream it fills) for `product_type`, as its dataset's frame."""
        d = dataset_named(spec.dataset)
        key = (slot, product_type)
        newest = None
        if frame.height:
            d.validate(frame)  # a page lacking a required field fails the scan: the same test as on the whole
            newest = frame["cTime"].cast(pl.Int64).max()
        with self._cond:
            self._rows[key] = self._rows.get(key, 0) + frame.height
            if not frame.height:
                return
            columns = self._columns.setdefault(key, {})
            columns.update(dict.fromkeys(frame.columns))
            if newest is not None:
                self._newest[key] = max(newest, self._newest.get(key, newest))
            if spec.source == "pending":
                self._kept.setdefault(key, []).append(frame)
            self._buffers.setdefault(spec.dataset, []).append(frame)
            self._buffered[spec.dataset] = self._buffered.get(spec.dataset, 0) + frame.height
            self._in_memory += frame.height
            self.peak_rows = max(self.peak_rows, self._in_memory)
            batch = self._take(spec.dataset)
        while batch is not None:
            try:
                self._write(*batch)
            finally:  # also after a failed write: a thread waiting for room must not wait forever
                with self._cond:
                    self._in_memory -= sum(f.height for f in batch[1])
                    self._cond.notify_all()
            with self._cond:
                batch = self._take(None)

    def _take(self, dataset: str | None) -> tuple[str, list[pl.DataFrame]] | None:
        """A buffer to write out now (caller holds the lock): `dataset`'s once full, else the largest while too
        many rows are in memory. Waits while the rows in memory are all being written by other threads."""
        while True:
            if dataset is not None and self._buffered.get(dataset, 0) >= self.chunk_rows:
                return self._pop(dataset)
            if self._in_memory < self.max_rows:
                return None
            fullest = max(self._buffered, key=self._buffered.get, default=None)
            if fullest is not None and self._buffered[fullest]:
                return self._pop(fullest)
            self._cond.wait()

    def _pop(self, dataset: str) -> tuple[str, list[pl.DataFrame]]:
        self._buffered[dataset] = 0
        return dataset, self._buffers.pop(dataset)

    def _write(self, dataset: str, frames: list[pl.DataFrame]) -> None:
        """Append the rows of `frames` to the spool file, one IPC segment per (product type, symbol)."""
        df = concat_frames(frames)
        blob, index = io.BytesIO(), []
        for (pt, symbol), part in df.partition_by([PRODUCT_TYPE_COL, "symbol"], as_dict=True).items():
            start = blob.tell()
            part.write_ipc_stream(blob, compression="zstd")
            index.append(((dataset, pt, symbol), start, blob.tell() - start, part.height))
        del df
        with self._file_lock:
            self._file.seek(0, os.SEEK_END)
            base = self._file.tell()
            self._file.write(blob.getbuffer())
            self._file.flush()  # segments are read back with os.pread, past Python's buffer
            for key, start, length, rows in index:
                self._segments.setdefault(key, []).append((base + start, length))
                self._segment_rows[key] = self._segment_rows.get(key, 0) + rows

    # -- what was read ------------------------------------------------------------------------------------------

    def rows(self, slot: str, product_type: str) -> int:
        return self._rows.get((slot, product_type), 0)

    def newest_ctime(self, slot: str, product_type: str) -> int | None:
        return self._newest.get((slot, product_type))

    def columns(self, slot: str, product_type: str) -> list[str]:
        return list(self._columns.get((slot, product_type), {}))

    def kept(self, slot: str, product_type: str) -> list[pl.DataFrame]:
        """The pages of a pending stream (read whole each scan, so few)."""
        return self._kept.get((slot, product_type), [])

    # -- staging ------------------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write out every buffer (once reading has ended)."""
        with self._cond:
            batches = [self._pop(ds) for ds in list(self._buffers)]
        for batch in batches:
            self._write(*batch)
        with self._cond:
            self._in_memory = 0

    def groups(self, dataset: str) -> dict[tuple[str, str], int]:
        """(product type, symbol) -> rows spooled of `dataset`."""
        return {(pt, symbol): n for (ds, pt, symbol), n in self._segment_rows.items() if ds == dataset}

    def write_group(self, dataset: str, product_type: str, symbol: str, columns: list[str],
                    write: Callable[[bytes], object]) -> int:
        """One symbol's rows of `dataset` as Parquet bytes with exactly `columns` (missing ones null), handed to
        `write`; returns its row count."""
        key = (dataset, product_type, symbol)
        schema = pl.Schema(dict.fromkeys(columns, pl.String))
        rows = self._segment_rows[key]
        if rows <= self.stream_rows:
            df = pl.concat([self._segment(offset, length, schema) for offset, length in self._segments[key]])
            write(hs.parquet_bytes(df))
            return rows

        def source(with_columns, predicate, n_rows, batch_size):
            for offset, length in self._segments[key]:
                part = self._segment(offset, length, schema)
                yield part if with_columns is None else part.select(with_columns)

        fd, path = tempfile.mkstemp(suffix=".parquet", dir=self._folder)
        os.close(fd)
        try:
            register_io_source(io_source=source, schema=schema).sink_parquet(path, compression="zstd")
            write(Path(path).read_bytes())
        finally:
            os.unlink(path)
        return rows

    def _segment(self, offset: int, length: int, schema: pl.Schema) -> pl.DataFrame:
        part = pl.read_ipc_stream(io.BytesIO(os.pread(self._file.fileno(), length, offset)))
        return part.select([pl.col(c) if c in part.columns else pl.lit(None, pl.String).alias(c) for c in schema])
