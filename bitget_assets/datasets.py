"""The datasets we publish (orders, plan orders, fills): key, merge rule, frames, and the output files.

Each dataset is keyed on its own id (a plan's orderId never meets an order's: they live in separate tables).
Outputs: `<name>.json` (a document), `<name>.parquet`, `<name>.csv` (Bitget's field names, values as sent, and
an ISO-8601 UTC column beside each millisecond time).
"""

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from bitget_assets import orders as table
from bitget_assets.streams import StreamSpec
from bitget_assets.v3map import MAPPERS

TIME_COLUMNS = ("cTime", "uTime")
ISO_SUFFIX = "_iso"


@dataclass(frozen=True)
class Dataset:
    name: str
    key: str  # the row id rows are de-duplicated on
    required: tuple[str, ...]
    history_wins: bool = False  # a row read from history beats its pending copy whatever their uTime

    @property
    def files(self) -> dict[str, str]:
        return {ext: f"{self.name}.{ext}" for ext in ("parquet", "json", "csv")}

    def empty(self) -> pl.DataFrame:
        return table.empty_frame(self.required)

    def frame(self, rows: list[dict], product_type: str, source: str) -> pl.DataFrame:
        return table.orders_frame(rows, product_type, source) if rows else self.empty()

    def concat(self, frames) -> pl.DataFrame:
        return table.concat(frames, self.empty())

    def merge(self, frames) -> pl.DataFrame:
        """Union, one row per key (latest uTime wins; see `history_wins`), sorted by (cTime, key)."""
        return table.merge(frames, key=self.key, history_wins=self.history_wins, empty=self.empty())

    def validate(self, df: pl.DataFrame) -> None:
        table.validate(df, self.required, self.name)


DATASETS = {
    "orders": Dataset("orders", "orderId", ("orderId", "cTime", "symbol")),
    # A plan that left the pending list is final in history; its pending copy may even lack a uTime.
    "plan_orders": Dataset("plan_orders", "orderId", ("orderId", "cTime", "symbol"), history_wins=True),
    "fills": Dataset("fills", "tradeId", ("tradeId", "cTime", "symbol")),
}


def dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}: expected one of {', '.join(DATASETS)}") from None


def stream_frame(spec: StreamSpec, rows: list[dict], product_type: str) -> pl.DataFrame:
    """One page of `spec` as its dataset's frame; v3 rows are mapped into the v2 schema first."""
    if spec.version == 3:
        rows = [MAPPERS[spec.dataset](r) for r in rows]
    return dataset(spec.dataset).frame(rows, product_type, spec.source)


def with_iso_times(df: pl.DataFrame) -> pl.DataFrame:
    """Public columns, each millisecond time followed by its ISO-8601 UTC text (empty where the time is empty)."""
    public = table.public_columns(df)
    columns: list[pl.Expr] = []
    for name in public.columns:
        columns.append(pl.col(name))
        if name in TIME_COLUMNS:
            ms = pl.col(name).cast(pl.Int64, strict=False)
            columns.append(pl.from_epoch(ms, time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
                           .alias(name + ISO_SUFFIX))
    return public.select(columns)


def write_outputs(ds: Dataset, df: pl.DataFrame, folder: Path, *, generated_at: str,
                  elapsed_seconds: float) -> dict[str, Path]:
    """The dataset's three files in `folder` (staging), keyed by their storage key."""
    files = {name: folder / name for name in ds.files.values()}
    public = table.public_columns(df)
    public.write_parquet(files[ds.files["parquet"]], compression="zstd")
    del public
    write_text_outputs(ds, df, files, generated_at=generated_at, elapsed_seconds=elapsed_seconds)
    return files


def write_text_outputs(ds: Dataset, source: pl.DataFrame | pl.LazyFrame | Path, files: dict[str, Path], *,
                       generated_at: str, elapsed_seconds: float) -> None:
    """The dataset's JSON and CSV files (paths in `files`, keyed by storage key) from its rows: a frame, or the
    written Parquet file, which is then read a slice at a time."""
    rows = pl.scan_parquet(source) if isinstance(source, Path) else source
    with open(files[ds.files["json"]], "wb") as out:
        table.write_json_document(rows, out, generated_at=generated_at, elapsed_seconds=elapsed_seconds,
                                  list_name=ds.name)
    with open(files[ds.files["csv"]], "wb") as out:
        empty = True
        for part in table.slices(rows, 50_000):  # slices: the text of a million rows is never held at once
            with_iso_times(part).write_csv(out, include_header=empty)
            empty = False
        if empty:
            with_iso_times(rows.clear().lazy().collect()).write_csv(out)
