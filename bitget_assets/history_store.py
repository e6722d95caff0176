"""The layout of everything we keep in storage, and reading/writing it as Parquet or JSON.

    scan/<scan id>/<PT>/<SYMBOL>.parquet              one account scan's orders, staged per symbol (kept 30 min)
    scan/<scan id>/<dataset>/<PT>/<SYMBOL>.parquet    the same for plan orders and fills
    scan/manifest.json         the latest committed scan: when, which symbols, how many requests
    scan/applied.json          marks of the last scan every partition has taken in: where the next starts
    partitions/<PT>/<SYMBOL>.parquet|json             one symbol's orders, kept beyond Bitget's 90 days, and state
    datasets/<dataset>/<PT>/<SYMBOL>.parquet|json     the same for plan orders and fills
    <dataset>.json / .parquet / .csv                  the merged, de-duplicated, chronological outputs

Symbols are used as path segments as they are (`龙虾USDT`, `$DEGENUSDT`), except characters a path or an
S3 key cannot carry safely, which are percent-encoded.
"""

import io
import json

import polars as pl

from bitget_assets.datasets import dataset as dataset_of
from bitget_assets.storage import Storage

SCAN_MANIFEST = "scan/manifest.json"
SCAN_APPLIED = "scan/applied.json"
OUTPUT_JSON = "orders.json"
OUTPUT_PARQUET = "orders.parquet"
OUTPUT_CSV = "orders.csv"


def split_key(key: str) -> tuple[str, str]:
    """(symbol, product type) of `SYMBOL:PRODUCT-TYPE` (the rule of partitions.parse_partition_key, without
    importing Dagster): any printable symbol but blanks, ':', '/', '\\' and a leading '.'."""
    symbol, sep, product_type = key.rpartition(":")
    if not sep or not symbol or not product_type.endswith("-FUTURES") or not product_type.replace("-", "").isalnum():
        raise ValueError(f"malformed partition key {key!r}: expected SYMBOL:PRODUCT-TYPE, e.g. BTCUSDT:USDT-FUTURES")
    if not symbol.isprintable() or any(c.isspace() or c in "/\\:" for c in symbol) or symbol.startswith("."):
        raise ValueError(f"malformed partition key {key!r}: the symbol has blanks, separators or control characters")
    return symbol, product_type


def path_segment(name: str) -> str:
    """`name` as one path segment: separators, `%` and a leading dot are encoded, everything else kept."""
    encoded = "".join(f"%{ord(c):02X}" if c in _UNSAFE or ord(c) < 32 or ord(c) == 127 else c for c in name)
    return "%2E" + encoded[1:] if encoded.startswith(".") else encoded


_UNSAFE = frozenset("/\\%?#")


def partition_base(key: str, dataset: str = "orders") -> str:
    symbol, product_type = split_key(key)
    dataset_of(dataset)
    folder = "partitions" if dataset == "orders" else f"datasets/{dataset}"
    return f"{folder}/{product_type}/{path_segment(symbol)}"


def staged_key(scan_id: str, product_type: str, symbol: str, dataset: str = "orders") -> str:
    middle = "" if dataset == "orders" else f"{dataset}/"
    return f"scan/{scan_id}/{middle}{product_type}/{path_segment(symbol)}.parquet"


def parquet_bytes(df: pl.DataFrame, row_group_size: int | None = None) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf, compression="zstd", row_group_size=row_group_size)
    return buf.getvalue()


# Partition files are in (cTime, id) order: modest row groups let the sorted merge read one time range of
# each without decoding the rest (bitget_assets.sorted_merge).
PARTITION_ROW_GROUP = 2048


def read_parquet(storage: Storage, key: str, columns: list[str] | None = None) -> pl.DataFrame | None:
    data = storage.read(key)
    return None if data is None else pl.read_parquet(io.BytesIO(data), columns=columns)


def read_json(storage: Storage, key: str) -> dict | None:
    data = storage.read(key)
    return None if data is None else json.loads(data)


def write_json(storage: Storage, key: str, doc: dict) -> str:
    return storage.write(key, json.dumps(doc, indent=1, sort_keys=True).encode())


def read_partition(storage: Storage, key: str, dataset: str = "orders",
                   columns: list[str] | None = None) -> pl.DataFrame:
    df = read_parquet(storage, partition_base(key, dataset) + ".parquet", columns)
    if df is not None:
        return df
    empty = dataset_of(dataset).empty()
    return empty if columns is None else empty.select(columns)


def read_partition_state(storage: Storage, key: str, dataset: str = "orders") -> dict:
    return migrate_state(read_json(storage, partition_base(key, dataset) + ".json") or {})


def write_partition(storage: Storage, key: str, df: pl.DataFrame | None, state: dict, dataset: str = "orders") -> str:
    """Data first, then state: a crash between the two leaves state behind the data, never ahead.
    `df` None keeps the stored data as it is (nothing changed) and writes the state only."""
    base = partition_base(key, dataset)
    if df is not None:
        storage.write(base + ".parquet", parquet_bytes(df, PARTITION_ROW_GROUP))
    write_json(storage, base + ".json", state)
    return storage.uri(base + ".parquet")


def migrate_state(state: dict) -> dict:
    """State written by earlier releases, in today's form (read-time migration, once per read).

    Before open orders were kept by id, a state held only `oldest_open_ctime`: it becomes one open-order
    entry under a placeholder id that no real order has, so the next read reaches back to it exactly as
    before and the refresh logic knows only the one form.
    """
    if "oldest_open_ctime" not in state:
        return state
    state = dict(state)
    oldest = state.pop("oldest_open_ctime")
    if "open_orders" not in state:
        state["open_orders"] = {LEGACY_OPEN_ID: int(oldest)} if oldest else {}
    return state


def migrate_marks(applied: dict) -> dict:
    """scan/applied.json of earlier releases: each product type's marks migrated like a partition state."""
    if not applied.get("marks"):
        return applied
    return {**applied, "marks": {pt: migrate_state(m) for pt, m in applied["marks"].items()}}


LEGACY_OPEN_ID = "legacy-oldest-open"  # never an orderId (those are digits), so it is never "still open"
