"""The layout of everything we keep in storage, and reading/writing it as Parquet or JSON.

    scan/<scan id>/<PT>/<SYMBOL>.parquet   one account scan's orders, staged per symbol (kept 30 min)
    scan/manifest.json         the latest committed scan: when, which symbols, how many requests
    scan/applied.json          marks of the last scan every partition has taken in: where the next starts
    partitions/<PT>/<SYMBOL>.parquet   one symbol's full history, kept beyond Bitget's 90 days
    partitions/<PT>/<SYMBOL>.json      its state: newest cTime, last read, where it came from
    orders.json / orders.parquet       the merged, de-duplicated, chronological output
"""

import io
import json

import polars as pl

from bitget_assets.orders import empty_frame
from bitget_assets.partitions import parse_partition_key
from bitget_assets.storage import Storage

SCAN_MANIFEST = "scan/manifest.json"
SCAN_APPLIED = "scan/applied.json"
OUTPUT_JSON = "orders.json"
OUTPUT_PARQUET = "orders.parquet"


def _partition_base(key: str) -> str:
    symbol, product_type = parse_partition_key(key)
    return f"partitions/{product_type}/{symbol}"


def parquet_bytes(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf, compression="zstd")
    return buf.getvalue()


def read_parquet(storage: Storage, key: str, columns: list[str] | None = None) -> pl.DataFrame | None:
    data = storage.read(key)
    return None if data is None else pl.read_parquet(io.BytesIO(data), columns=columns)


def read_json(storage: Storage, key: str) -> dict | None:
    data = storage.read(key)
    return None if data is None else json.loads(data)


def write_json(storage: Storage, key: str, doc: dict) -> str:
    return storage.write(key, json.dumps(doc, indent=1, sort_keys=True).encode())


def read_partition(storage: Storage, key: str) -> pl.DataFrame:
    df = read_parquet(storage, _partition_base(key) + ".parquet")
    return empty_frame() if df is None else df


def read_partition_state(storage: Storage, key: str) -> dict:
    return read_json(storage, _partition_base(key) + ".json") or {}


def write_partition(storage: Storage, key: str, df: pl.DataFrame, state: dict) -> str:
    """Data first, then state: a crash between the two leaves state behind the data, never ahead."""
    uri = storage.write(_partition_base(key) + ".parquet", parquet_bytes(df))
    write_json(storage, _partition_base(key) + ".json", state)
    return uri
