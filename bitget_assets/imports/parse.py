"""Read one Bitget futures order-history export (CSV, as the website writes it) into the order schema.

What Bitget writes (docs/api-notes.md, "Website exports"): UTF-8 with a BOM, CRLF, one header row, comma (or
semicolon) separated, a TAB before every id (an Excel guard), dates `YYYY-MM-DD HH:MM:SS` in the account's
display zone with no zone marker. A file is read whole and checked before anything is returned: one bad line
refuses the file (ExportFileError naming the file, the line and what was expected).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from ..orders import PRODUCT_TYPE_COL, SOURCE_COL
from .errors import ExportFileError, MissingTimeZoneError
from .kinds import kind_of, order_columns

PROVENANCE_COL = "source"  # `api` or `export:<file name>`
EXPORT_SOURCE = "export"   # the `_source` (where read) of an imported row

_ID = re.compile(r"^[0-9]{1,30}$")
_NUMBER = re.compile(r"^[+-]?[0-9]+(\.[0-9]+)?$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$")
_SYMBOL = re.compile(r"^\S{2,60}$")  # Bitget lists names like 龙虾USDT and $DEGENUSDT too

# Direction -> (side, tradeSide, posSide). Hedge mode names the position (v2: `buy` + `close` closes a long);
# one-way orders may be written Buy/Sell (a guess: no sample seen), or as the four position words.
_CLOSES = ("", "reduce ", "burst ", "offset ", "delivery ")
DIRECTIONS = {
    "open long": ("buy", "open", "long"), "open short": ("sell", "open", "short"),
    **{f"{p}close long": ("buy", f"{p.strip()}_close_long" if p else "close", "long") for p in _CLOSES},
    **{f"{p}close short": ("sell", f"{p.strip()}_close_short" if p else "close", "short") for p in _CLOSES},
    "buy": ("buy", "buy_single", "net"), "sell": ("sell", "sell_single", "net"),
}
STATUSES = {"filled": "filled", "canceled": "canceled", "cancelled": "canceled",
            "partially filled": "partially_filled", "partial filled": "partially_filled"}


def product_type(coin: str, symbol: str) -> str | None:
    """USDT margin + ...USDT -> USDT-FUTURES; USDC margin + ...PERP/...USDC -> USDC-FUTURES; any other margin
    coin + ...USD -> COIN-FUTURES; anything else None (refused)."""
    if coin == "USDT":
        return "USDT-FUTURES" if symbol.endswith("USDT") else None
    if coin == "USDC":
        return "USDC-FUTURES" if symbol.endswith(("PERP", "USDC")) else None
    if re.fullmatch(r"\S{1,20}", coin) and symbol.endswith("USD") and len(symbol) > 3:
        return "COIN-FUTURES"
    return None


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
    records: dict[str, list[str | None]] = {k: [] for k in _OUT}
    lines: list[int] = []
    seen: dict[str, tuple[int, tuple]] = {}
    for line, cells in rows:
        if len(cells) < width or any(c.strip() for c in cells[width:]):
            raise ExportFileError(name, line, f"{width} fields like the header", f"{len(cells)}")
        rec = _row(cells, col, delimiter, name, line)
        prior = seen.get(rec["orderId"])
        if prior is not None:
            if prior[1] != tuple(rec.values()):
                raise ExportFileError(name, line, f"order {rec['orderId']} once, or twice with equal values",
                                      f"a different row for it on line {prior[0]}")
            continue
        seen[rec["orderId"]] = (line, tuple(rec.values()))
        lines.append(line)
        for k in _OUT:
            records[k].append(rec[k])
    df = pl.DataFrame(records, schema=dict.fromkeys(_OUT, pl.String))
    df = df.with_columns(_ctime_ms(df["_date"], zone, lines, name, tz)).drop("_date")
    return df.with_columns(pl.lit("").alias("uTime"), pl.lit(f"export:{name}").alias(PROVENANCE_COL),
                           pl.lit(EXPORT_SOURCE).alias(SOURCE_COL))


_OUT = ("orderId", "symbol", "marginCoin", "side", "tradeSide", "posSide", "orderType", "orderSource", "size",
        "price", "priceAvg", "baseVolume", "quoteVolume", "totalProfits", "status", "_date", PRODUCT_TYPE_COL)


def _zone(tz: str | None, name: str) -> ZoneInfo:
    if not tz or not str(tz).strip():
        raise MissingTimeZoneError(name)
    try:
        return ZoneInfo(str(tz).strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise MissingTimeZoneError(name, f"{tz!r}, which is no IANA zone name") from None


def _row(cells: list[str], col: dict[str, int], delimiter: str, name: str, line: int) -> dict[str, str | None]:
    def cell(field: str) -> str | None:
        i = col.get(field)
        return None if i is None else cells[i].lstrip("\t").strip()

    def number(field: str, *, required: bool = False) -> str | None:
        v = cell(field)
        if v is None or (v == "" and not required):
            return v
        if delimiter == ";" and re.fullmatch(r"[+-]?[0-9]+,[0-9]+", v):
            v = v.replace(",", ".")  # a semicolon file may carry decimal commas
        if not _NUMBER.match(v):
            raise ExportFileError(name, line, f"a plain decimal number in {field!r}", repr(v))
        return v

    oid = cell("order id")
    if not _ID.match(oid):
        raise ExportFileError(name, line, "a numeric order ID (a TAB before it is fine)", repr(oid))
    date = cell("date")
    if not _DATE.match(date):
        raise ExportFileError(name, line, "a date like 2026-01-05 05:53:28", repr(date))
    direction = DIRECTIONS.get(re.sub(r"[\s_]+", " ", cell("direction").lower()))
    if direction is None:
        raise ExportFileError(name, line, "a direction (Open long, Close long, Open short, Close short, Buy, Sell)",
                              repr(cell("direction")))
    coin, symbol = cell("coin"), cell("futures")
    pt = product_type(coin, symbol) if _SYMBOL.match(symbol) else None
    if pt is None:
        raise ExportFileError(name, line, "a futures symbol and margin coin of USDT-M (USDT, ...USDT), USDC-M "
                                          "(USDC, ...PERP/...USDC) or COIN-M (a coin, ...USD)",
                              f"{cell('futures')!r} margined in {cell('coin')!r}")
    status = STATUSES.get(re.sub(r"[\s_]+", " ", cell("status").lower()))
    if status is None:
        raise ExportFileError(name, line, f"a status ({', '.join(sorted(STATUSES))})", repr(cell("status")))
    otype = (cell("transaction type") or "").lower()
    source = cell("order source")
    return {
        "orderId": oid, "symbol": symbol, "marginCoin": coin, "side": direction[0], "tradeSide": direction[1],
        "posSide": direction[2], "orderType": otype if otype in ("limit", "market") else None,
        "orderSource": source.lower() if source else None, "size": number("order amount", required=True),
        "price": number("price"), "priceAvg": number("average price"), "baseVolume": number("executed"),
        "quoteVolume": number("trading volume"), "totalProfits": number("realized p/l"), "status": status,
        "_date": date, PRODUCT_TYPE_COL: pt,
    }


def _ctime_ms(dates: pl.Series, zone: ZoneInfo, lines: list[int], name: str, tz: str) -> pl.Series:
    """Local wall-clock dates -> UTC epoch ms strings. An hour that occurs twice (clocks turned back) is read
    as its first occurrence; a time that never occurred (clocks jumped forward) refuses the file."""
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
