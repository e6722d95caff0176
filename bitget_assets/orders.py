"""Pure order-table logic (no Dagster, no I/O): frames, merge by latest uTime, chronological sort, JSON.

Orders stay in Bitget's own field names with string values, so what we store is what the API said.
Columns starting with "_" are ours (product type, where the order was read) and are dropped on output.
"""

import io
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


def empty_frame() -> pl.DataFrame:
    cols = [*REQUIRED, "uTime", PRODUCT_TYPE_COL, SOURCE_COL]
    return pl.DataFrame(schema=dict.fromkeys(cols, pl.String))


def concat(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Stack frames; columns missing from some are filled with nulls. Same-schema frames are not copied."""
    frames = [f for f in frames if f.width]
    if not frames:
        return empty_frame()
    if all(f.schema == frames[0].schema for f in frames):
        return pl.concat(frames, how="vertical", rechunk=False)
    return pl.concat(frames, how="diagonal_relaxed")


def _id_key() -> list[pl.Expr]:
    # orderIds are decimal strings of possibly different lengths: (length, text) orders them numerically.
    return [pl.col("orderId").str.len_chars(), pl.col("orderId")]


def sort_chronologically(df: pl.DataFrame) -> pl.DataFrame:
    """By cTime, then orderId: deterministic even when several orders share a millisecond."""
    return df.sort([pl.col("cTime").cast(pl.Int64), *_id_key()])


def merge(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Union, de-duplicate by orderId (latest uTime, then the later frame, wins) and sort chronologically.

    The winners and their order are worked out on four key columns, then every column is gathered once:
    a million orders cost one extra copy of the table, not one per sort.
    """
    df = concat(frames)
    if df.is_empty():
        return df
    utime = pl.col("uTime").cast(pl.Int64, strict=False).fill_null(-1) if "uTime" in df.columns else pl.lit(-1)
    keys = df.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"), "orderId", utime.alias("_u"),
                     pl.col("cTime").cast(pl.Int64).alias("_c"))
    winners = keys.sort(["_u", "_row"]).unique(subset=["orderId"], keep="last", maintain_order=False)
    rows = winners.sort(["_c", *_id_key()])["_row"]
    return df.select(pl.all().gather(rows))


def public_columns(df: pl.DataFrame) -> pl.DataFrame:
    return df.select([c for c in df.columns if not c.startswith("_")])


def write_json_document(df: pl.DataFrame, out: BinaryIO, *, generated_at: str, elapsed_seconds: float,
                        slice_rows: int = 50_000) -> None:
    """`{"generated_at", "count", "elapsed_seconds", "orders": [...]}` from NDJSON slices, no per-row Python:
    at most `slice_rows` orders are ever held as text, however long the history."""
    head = json.dumps(
        {"generated_at": generated_at, "count": df.height, "elapsed_seconds": round(elapsed_seconds, 3)}
    )
    out.write(head[:-1].encode() + b', "orders": [\n')
    public = public_columns(df)
    for i, part in enumerate(public.iter_slices(slice_rows)):
        # A JSON text never holds a raw newline (strings escape it), so lines are exactly the orders.
        body = part.write_ndjson().rstrip("\n").replace("\n", ",\n")
        out.write(((",\n" if i else "") + body).encode())
    out.write(b"\n]}\n")


def to_json_document(df: pl.DataFrame, *, generated_at: str, elapsed_seconds: float) -> bytes:
    buf = io.BytesIO()
    write_json_document(df, buf, generated_at=generated_at, elapsed_seconds=elapsed_seconds)
    return buf.getvalue()


def validate(df: pl.DataFrame) -> None:
    """Fail loudly when an order lacks a field every order has."""
    for col in REQUIRED:
        if col not in df.columns or df[col].null_count() or (df[col] == "").any():
            raise ValueError(f"orders without {col}: the API answer is malformed")
