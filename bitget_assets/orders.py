"""Pure order-table logic (no Dagster, no I/O): frames, merge by latest uTime, chronological sort, JSON.

Orders stay in Bitget's own field names with string values, so what we store is what the API said.
Columns starting with "_" are ours (product type, where the order was read) and are dropped on output.
"""

import json
from collections.abc import Iterable

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
    frames = [f for f in frames if f.width]
    if not frames:
        return empty_frame()
    return pl.concat(frames, how="diagonal_relaxed")


def _id_key() -> list[pl.Expr]:
    # orderIds are decimal strings of possibly different lengths: (length, text) orders them numerically.
    return [pl.col("orderId").str.len_chars(), pl.col("orderId")]


def latest_by_order_id(df: pl.DataFrame) -> pl.DataFrame:
    """One row per orderId: the copy with the newest uTime (the later-read copy on ties)."""
    if df.is_empty():
        return df
    utime = pl.col("uTime").cast(pl.Int64, strict=False).fill_null(-1) if "uTime" in df.columns else pl.lit(-1)
    return (
        df.with_row_index("_row")
        .sort([utime, pl.col("_row")])
        .unique(subset=["orderId"], keep="last", maintain_order=False)
        .drop("_row")
    )


def sort_chronologically(df: pl.DataFrame) -> pl.DataFrame:
    """By cTime, then orderId: deterministic even when several orders share a millisecond."""
    return df.sort([pl.col("cTime").cast(pl.Int64), *_id_key()])


def merge(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Union, de-duplicate by orderId (latest uTime wins) and sort chronologically."""
    return sort_chronologically(latest_by_order_id(concat(frames)))


def public_columns(df: pl.DataFrame) -> pl.DataFrame:
    return df.select([c for c in df.columns if not c.startswith("_")])


def to_json_document(df: pl.DataFrame, *, generated_at: str, elapsed_seconds: float) -> bytes:
    """`{"generated_at", "count", "elapsed_seconds", "orders": [...]}` built from NDJSON, no per-row Python."""
    body = public_columns(df).write_ndjson().strip()
    orders = b",\n".join(body.encode().split(b"\n")) if body else b""
    head = json.dumps(
        {"generated_at": generated_at, "count": df.height, "elapsed_seconds": round(elapsed_seconds, 3)}
    )
    return head[:-1].encode() + b', "orders": [\n' + orders + b"\n]}\n"


def validate(df: pl.DataFrame) -> None:
    """Fail loudly when an order lacks a field every order has."""
    for col in REQUIRED:
        if col not in df.columns or df[col].null_count() or (df[col] == "").any():
            raise ValueError(f"orders without {col}: the API answer is malformed")
