"""Pure row-table logic (no Dagster, no I/O): frames, merge by latest uTime, chronological sort, JSON.

Written for orders and used by every dataset (bitget_assets.datasets passes its key and merge rule).
Rows stay in Bitget's own field names with string values, so what we store is what the API said.
Columns starting with "_" are ours (product type, where the order was read) and are dropped on output.
"""

import io
import json
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import polars as pl

PRODUCT_TYPE_COL = "_productType"
SOURCE_COL = "_source"
REQUIRED = ("orderId", "cTime", "symbol")
TEXT_ROWS = 10_000  # rows turned into JSON text at once


def _as_text(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def orders_frame(orders: Iterable[dict], product_type: str, source: str) -> pl.DataFrame:
    """A string-typed frame of API order objects; fields the API adds later are kept as columns."""
    orders = list(orders)
    if not orders:
        return empty_frame()
    try:
        df = pl.from_dicts(orders, infer_schema_length=None)
        plain = all(dtype in (pl.String, pl.Null) for dtype in df.dtypes)
    except (pl.exceptions.PolarsError, TypeError, ValueError):
        plain = False
    if not plain:
        # Not every value is a string (a changed API): keep each as its JSON text, never a polars rendering.
        df = pl.from_dicts([{k: _as_text(v) for k, v in o.items()} for o in orders], infer_schema_length=None)
    df = df.with_columns(pl.all().cast(pl.String))
    return df.with_columns(pl.lit(product_type).alias(PRODUCT_TYPE_COL), pl.lit(source).alias(SOURCE_COL))


def empty_frame(required: tuple[str, ...] = REQUIRED) -> pl.DataFrame:
    cols = [*required, "uTime", PRODUCT_TYPE_COL, SOURCE_COL]
    return pl.DataFrame(schema=dict.fromkeys(cols, pl.String))


def concat(frames: Iterable[pl.DataFrame], empty: pl.DataFrame | None = None) -> pl.DataFrame:
    """Stack frames; columns missing from some are filled with nulls. Same-schema frames are not copied."""
    frames = [f for f in frames if f.height]  # an empty frame would impose its column order on the rest
    if not frames:
        return empty_frame() if empty is None else empty
    if all(f.schema == frames[0].schema for f in frames):
        return pl.concat(frames, how="vertical", rechunk=False)
    return pl.concat(frames, how="diagonal_relaxed")


def _id_key(key: str = "orderId") -> list[pl.Expr]:
    # ids are decimal strings of possibly different lengths: (length, text) orders them numerically.
    return [pl.col(key).str.len_chars(), pl.col(key)]


def sort_chronologically(df: pl.DataFrame, key: str = "orderId") -> pl.DataFrame:
    """By cTime, then id: deterministic even when several rows share a millisecond."""
    return df.sort([pl.col("cTime").cast(pl.Int64), *_id_key(key)])


def merge(frames: Iterable[pl.DataFrame], *, key: str = "orderId", history_wins: bool = False,
          empty: pl.DataFrame | None = None) -> pl.DataFrame:
    """Union, de-duplicate by `key` (latest uTime, then the later frame, wins) and sort chronologically.

    With `history_wins`, a row read from a history endpoint beats any copy read while it was pending (a plan's
    pending copy may carry a later-looking or empty uTime). The winners and their order are worked out on a few
    key columns, then every column is gathered once: a million rows cost one extra copy, not one per sort.
    """
    df = concat(frames, empty)
    if df.is_empty():
        return df
    return df.select(pl.all().gather(merge_order(df, key=key, history_wins=history_wins)))


def merge_order(df: pl.DataFrame, *, key: str = "orderId", history_wins: bool = False) -> pl.Series:
    """The row numbers `merge` keeps of `df` (one per key), in the order it puts them."""
    utime = pl.col("uTime").cast(pl.Int64, strict=False).fill_null(-1) if "uTime" in df.columns else pl.lit(-1)
    rank = (pl.col(SOURCE_COL) == "history").fill_null(False) if history_wins and SOURCE_COL in df.columns \
        else pl.lit(False)
    keys = _row_keys(df, key, utime.alias("_u"), rank.alias("_h"))
    winners = keys.sort(["_h", "_u", "_row"]).unique(subset=[key], keep="last", maintain_order=False)
    return _rows_chronologically(winners, key)


def chronological_order(df: pl.DataFrame, key: str = "orderId") -> pl.Series:
    """The row numbers of `df` in `sort_chronologically`'s order (for rows unique by `key`)."""
    return _rows_chronologically(_row_keys(df, key), key)


def _row_keys(df: pl.DataFrame, key: str, *extra: pl.Expr) -> pl.DataFrame:
    """Row number, `key` and cTime (as `_c`) of every row, and `extra`: what an order of rows is worked out on."""
    return df.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"), key,
                     pl.col("cTime").cast(pl.Int64).alias("_c"), *extra)


def _rows_chronologically(keys: pl.DataFrame, key: str) -> pl.Series:
    return keys.sort(["_c", *_id_key(key)])["_row"]


def public_columns(df: pl.DataFrame | pl.LazyFrame):
    names = df.collect_schema().names() if isinstance(df, pl.LazyFrame) else df.columns
    return df.select([c for c in names if not c.startswith("_")])


def slices(df: pl.DataFrame | pl.LazyFrame, rows: int) -> Iterator[pl.DataFrame]:
    """The non-empty slices of `df` in order, of at most `rows` rows. A LazyFrame (meant: a Parquet file's scan) is
    read one slice at a time, each its own query, so it is never whole in memory (the file's row groups outside a
    slice are skipped)."""
    if isinstance(df, pl.DataFrame):
        yield from (part for part in df.iter_slices(rows) if part.height)
        return
    for start in range(0, height(df), rows):
        part = df.slice(start, rows).collect()
        if part.height:
            yield part


def height(df: pl.DataFrame | pl.LazyFrame) -> int:
    return df.select(pl.len()).collect().item() if isinstance(df, pl.LazyFrame) else df.height


def write_json_document(df: pl.DataFrame | pl.LazyFrame, out: BinaryIO, *, generated_at: str,
                        elapsed_seconds: float, slice_rows: int = 50_000, list_name: str = "orders") -> None:
    """`{"generated_at", "count", "elapsed_seconds", "<list_name>": [...]}` from NDJSON slices, no per-row Python:
    at most `slice_rows` rows are ever held as text, however long the history. `df` may be a LazyFrame (a scan
    of the written Parquet): then only a slice of it is ever in memory."""
    head = json.dumps(
        {"generated_at": generated_at, "count": height(df), "elapsed_seconds": round(elapsed_seconds, 3)}
    )
    out.write(head[:-1].encode() + f', "{list_name}": [\n'.encode())
    public = public_columns(df)
    first = True
    for part in slices(public, slice_rows):
        for rows in part.iter_slices(TEXT_ROWS):
            # A JSON text never holds a raw newline (strings escape it), so lines are exactly the orders. Bytes,
            # not str: a str of text with one non-ASCII character takes 2-4 bytes a character.
            buf = io.BytesIO()
            rows.write_ndjson(buf)
            body = buf.getvalue()
            del buf
            if not first:
                out.write(b",\n")
            out.write(body[:-1].replace(b"\n", b",\n"))  # write_ndjson ends every line, the last too
            first = False
    out.write(b"\n]}\n")


def validate(df: pl.DataFrame, required: tuple[str, ...] = REQUIRED, what: str = "orders") -> None:
    """Fail loudly when a row lacks a field every row has."""
    for col in required:
        if col not in df.columns or df[col].null_count() or (df[col] == "").any():
            raise ValueError(f"{what} without {col}: the API answer is malformed")
