"""Read one Bitget futures order-history export (CSV, as the website writes it) into the order schema.

What Bitget writes (docs/api-notes.md, "Website exports"): UTF-8 with a BOM, CRLF, one header row, comma (or
semicolon) separated, a TAB before every id (an Excel guard), dates `YYYY-MM-DD HH:MM:SS` in the account's
display zone with no zone marker. A file is read whole and checked before anything is returned: one bad line
refuses the file (ExportFileError naming the file, the line and what was expected).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from ..orders import SOURCE_COL, concat
from .errors import ExportFileError, MissingTimeZoneError
from .kinds import kind_of, order_columns
from .rows import order_rows

PROVENANCE_COL = "source"  # `api` or `export:<file name>`
EXPORT_SOURCE = "export"   # the `_source` (where read) of an imported row


def _read(source: str | Path | bytes, file_name: str | None) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray):
        if not file_name:
            raise ValueError("file_name is required when the export is given as bytes")
        return bytes(source), file_name
    path = Path(source)
    return path.read_bytes(), file_name or path.name


def _decode(raw: bytes, name: str) -> str:
    if raw.startswith(b"PK\x03\x04"):
        raise ExportFileError(name, None, "a CSV file (choose CSV, not Excel, when exporting)", "an Excel workbook")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ExportFileError(name, line, "UTF-8 text", f"byte {raw[e.start]:#04x}") from None


def _split(text: str, name: str) -> tuple[list[str], list[tuple[int, list[str]]], str]:
    """Header cells and (line, cells) rows, with the delimiter detected from the header line."""
    first = text.split("\n", 1)[0].rstrip("\r")
    if not first.strip():
        raise ExportFileError(name, 1, "a header line", "an empty file" if not text.strip() else "an empty line")
    delimiter = next((d for d in (",", ";") if kind_of(first.split(d)) is not None),
                     ";" if first.count(";") > first.count(",") else ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
        rows = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
    except csv.Error as e:
        raise ExportFileError(name, reader.line_num, f"well-formed {delimiter!r}-separated CSV", str(e)) from None
    return header, rows, delimiter


def parse_export(source: str | Path | bytes, *, tz: str | None, file_name: str | None = None) -> pl.DataFrame:
    """One order-history export as a frame in the order schema (string columns, Bitget's field names), plus
    `source` = `export:<file name>`, `_productType` and `_source` = `export`. `tz` is the IANA zone the dates
    were written in (required). Raises ExportFileError (or a subclass) and imports nothing on any bad line."""
    raw, name = _read(source, file_name)
    zone = _zone(tz, name)
    header, rows, delimiter = _split(_decode(raw, name), name)
    col = order_columns(header, name)
    width = len(header)
    for line, cells in rows:
        if len(cells) < width or any(c.strip() for c in cells[width:]):
            raise ExportFileError(name, line, f"{width} fields like the header", f"{len(cells)}")
    # A TAB before a cell is Bitget's Excel guard (on every id): stripped with the spaces around values.
    columns = {f: pl.Series([r[i] for _, r in rows], dtype=pl.String).str.strip_chars() for f, i in col.items()}
    df = order_rows(columns, pl.Series([line for line, _ in rows], dtype=pl.Int64), delimiter == ";", name)
    df = df.with_columns(_ctime_ms(df, zone, name, tz)).drop("_date", "_line")
    return df.with_columns(pl.lit("").alias("uTime"), pl.lit(f"export:{name}").alias(PROVENANCE_COL),
                           pl.lit(EXPORT_SOURCE).alias(SOURCE_COL))


def parse_exports(sources, *, tz: str | None) -> pl.DataFrame:
    """Several exports stacked in the order given (merge_sources keeps the first copy of an order, so pass the
    files in the order they were imported). Any bad file raises before anything is returned."""
    return concat(parse_export(s, tz=tz) for s in sources)


def _zone(tz: str | None, name: str) -> ZoneInfo:
    if not tz or not str(tz).strip():
        raise MissingTimeZoneError(name)
    try:
        return ZoneInfo(str(tz).strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise MissingTimeZoneError(name, f"{tz!r}, which is no IANA zone name") from None


def _ctime_ms(df: pl.DataFrame, zone: ZoneInfo, name: str, tz: str) -> pl.Series:
    """Local wall-clock dates -> UTC epoch ms strings. An hour that occurs twice (clocks turned back) is read
    as its first occurrence; a time that never occurred (clocks jumped forward) refuses the file."""
    dates, lines = df["_date"], df["_line"]
    naive = dates.str.strptime(pl.Datetime("ms"), "%Y-%m-%d %H:%M:%S", strict=False)
    if naive.null_count():
        i = naive.is_null().arg_true()[0]
        raise ExportFileError(name, lines[i], "a real calendar date", repr(dates[i]))
    local = naive.dt.replace_time_zone(zone.key, ambiguous="earliest", non_existent="null")
    if local.null_count():
        i = local.is_null().arg_true()[0]
        raise ExportFileError(name, lines[i], f"a time that exists in {tz} (it skips it when clocks go forward: "
                                              "is this the zone the file was written in?)", repr(dates[i]))
    return local.dt.epoch("ms").cast(pl.String).alias("cTime")
