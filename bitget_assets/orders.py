"""Pure row-table logic (no Dagster, no I/O): frames, merge by latest uTime, chronological sort, JSON.

Written for orders and used by every dataset (bitget_assets.datasets passes its key and merge rule).
Rows stay in Bitget's own field names with string values, so what we store is what the API said.
Columns starting with "_" are ours (product type, where the order was read) and are dropped on output.
"""

import json
from collections.abc import Iterable
from typing import BinaryIO

import polars as pl

PRODUCT_TYPE_COL = "_productType"
SOURCE_COL = "_source"
REQUIRED = ("orderId", "cTime", "symbol")


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
    utime = pl.col("uTime").cast(pl.Int64, strict=False).fill_null(-1) if "uTime" in df.columns else pl.lit(-1)
    rank = (pl.col(SOURCE_COL) == "history").fill_null(False) if history_wins and SOURCE_COL in df.columns \
        else pl.lit(False)
    keys = df.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"), key, utime.alias("_u"),
                     rank.alias("_h"), pl.col("cTime").cast(pl.Int64).alias("_c"))
    winners = keys.sort(["_h", "_u", "_row"]).unique(subset=[key], keep="last", maintain_order=False)
    rows = winners.sort(["_c", *_id_key(key)])["_row"]
    return df.select(pl.all().gather(rows))


def public_columns(df: pl.DataFrame) -> pl.DataFrame:
    return df.select([c for c in df.columns if not c.startswith("_")])


def write_json_document(df: pl.DataFrame, out: BinaryIO, *, generated_at: str, elapsed_seconds: float,
                        slice_rows: int = 50_000, list_name: str = "orders") -> None:
    """`{"generated_at", "count", "elapsed_seconds", "<list_name>": [...]}` from NDJSON slices, no per-row Python:
    at most `slice_rows` rows are ever held as text, however long the history."""
    head = json.dumps(
        {"generated_at": generated_at, "count": df.height, "elapsed_seconds": round(elapsed_seconds, 3)}
    )
    out.write(head[:-1].encode() + f', "{list_name}": [\n'.encode())
    public = public_columns(df)
    for i, part in enumerate(public.iter_slices(slice_rows)):
        # A JSON text never holds a raw newline (strings escape it), so lines are exactly the orders.
        body = part.write_ndjson().rstrip("\n").replace("\n", ",\n")
        out.write(((",\n" if i else "") + body).encode())
    out.write(b"\n]}\n")


def validate(df: pl.DataFrame, required: tuple[str, ...] = REQUIRED, what: str = "orders") -> None:
    """Fail loudly when a row lacks a field every row has."""
    for col in required:
        if col not in df.columns or df[col].null_count() or (df[col] == "").any():
            raise ValueError(f"{what} without {col}: the API answer is malformed")
