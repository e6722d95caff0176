"""History from before the first run: Bitget's website exports, kept under `imports/` at the output location.

Files land there by `bitget-orders import FILE...` (which checks them first and records the time zone each was
exported in beside it, `imports/<file>.tz`) or by hand (the account's BITGET_IMPORT_TZ then applies). The
`imported_orders` asset parses every file, in name order, into `imported/orders.parquet`, registers the symbols
they hold as partitions, and sorted_orders merges them with the API's orders: the API row wins wherever both
have an order (docs/api-notes.md, "Website exports").
"""

import polars as pl

from bitget_assets import history_store as hs
from bitget_assets.imports import ExportFileError, MissingTimeZoneError, parse_export
from bitget_assets.orders import PRODUCT_TYPE_COL
from bitget_assets.partitions import partition_key
from bitget_assets.storage import Storage

IMPORTS_DIR = "imports"
IMPORTED_ORDERS = "imported/orders.parquet"
TZ_SUFFIX = ".tz"


def import_files(storage: Storage) -> list[str]:
    """The export files at the location, in name order (the order in which overlapping copies are kept)."""
    return sorted(k for k in storage.list(IMPORTS_DIR) if not k.endswith(TZ_SUFFIX))


def file_zone(storage: Storage, key: str, default_tz: str | None) -> str | None:
    recorded = storage.read(key + TZ_SUFFIX)
    return recorded.decode().strip() if recorded else default_tz


def read_imports(storage: Storage, default_tz: str | None) -> tuple[pl.DataFrame, list[str]]:
    """Every imported order (first copy of an orderId wins among files) and the files they came from."""
    files = import_files(storage)
    frames = []
    for key in files:
        name = key.rsplit("/", 1)[-1]
        frames.append(parse_export(storage.read(key), tz=file_zone(storage, key, default_tz), file_name=name))
    if not frames:
        return pl.DataFrame(), files
    df = pl.concat(frames, how="diagonal_relaxed").unique(subset=["orderId"], keep="first", maintain_order=True)
    return df, files


def stage_import(storage: Storage, name: str, data: bytes, tz: str) -> str:
    """Check one export file and keep it with its zone; a file that does not parse is refused whole."""
    parse_export(data, tz=tz, file_name=name)  # raises ExportFileError / MissingTimeZoneError, naming the file
    storage.write(f"{IMPORTS_DIR}/{name}{TZ_SUFFIX}", tz.encode())
    return storage.write(f"{IMPORTS_DIR}/{name}", data)


def partition_keys(imported: pl.DataFrame) -> list[str]:
    if imported.is_empty():
        return []
    pairs = imported.select("symbol", PRODUCT_TYPE_COL).unique().sort(["symbol", PRODUCT_TYPE_COL]).iter_rows()
    return [partition_key(symbol, pt) for symbol, pt in pairs]


def write_imported(storage: Storage, imported: pl.DataFrame) -> str:
    return storage.write(IMPORTED_ORDERS, hs.parquet_bytes(imported))


def read_imported(storage: Storage) -> pl.DataFrame | None:
    return hs.read_parquet(storage, IMPORTED_ORDERS)


__all__ = ["ExportFileError", "MissingTimeZoneError", "import_files", "partition_keys", "read_imported",
           "read_imports", "stage_import", "write_imported"]
