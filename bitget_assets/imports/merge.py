"""Pure merge rule and checks for API orders + imported export orders (no I/O, no Dagster).

Rule: union by orderId; where the API has an order, the API row wins (an export row has no uTime, so this
comes before "latest uTime wins"); among exports, the first row seen wins, so importing a file again or an
overlapping second file changes nothing.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import NamedTuple

import polars as pl

from ..orders import PRODUCT_TYPE_COL, concat, sort_chronologically
from ..partitions import partition_key
from .parse import PROVENANCE_COL


def merge_sources(api: pl.DataFrame, imported: pl.DataFrame) -> pl.DataFrame:
    """API rows (marked `source` = `api`) plus the imported orders the API does not have, chronologically."""
    if api.width:  # a frame with no columns would grow a row from the literal
        api = api.with_columns(pl.lit("api").alias(PROVENANCE_COL))
    if imported.is_empty():
        return sort_chronologically(api) if api.height else api
    extra = imported.unique(subset=["orderId"], keep="first", maintain_order=True)
    if api.height:
        extra = extra.join(api.select("orderId"), on="orderId", how="anti", maintain_order="left")
    return sort_chronologically(concat([api, extra]))


def duplicate_order_ids(df: pl.DataFrame) -> list[str]:
    """orderIds present more than once (across sources or within one): should be none after merge_sources."""
    counts = df.group_by("orderId").len()
    return sorted(counts.filter(pl.col("len") > 1)["orderId"].to_list(), key=lambda s: (len(s), s))


def outside_partitions(imported: pl.DataFrame, partition_keys) -> list[str]:
    """orderIds of rows whose `SYMBOL:PRODUCT-TYPE` is not one of `partition_keys`."""
    keys = set(partition_keys)
    bad = [oid for oid, sym, pt in imported.select("orderId", "symbol", PRODUCT_TYPE_COL).iter_rows()
           if partition_key(sym, pt) not in keys]
    return sorted(bad, key=lambda s: (len(s), s))


class Disagreement(NamedTuple):
    orderId: str
    field: str        # symbol, side, size or time
    api: str
    export: str
    source: str       # export:<file name>


def overlap_disagreements(api: pl.DataFrame, imported: pl.DataFrame) -> list[Disagreement]:
    """Orders in both where the export disagrees with the API on symbol, side (direction), size, or time (the
    export's date, to the second, must be the API's cTime or uTime: which one Bitget writes is unknown). A wrong
    time zone shows as every overlapping order off by the same whole number of hours."""
    cols = ["orderId", "symbol", "side", "tradeSide", "posSide", "size", "cTime"]
    a = api.select(*cols, pl.col("uTime") if "uTime" in api.columns else pl.lit(None, pl.String).alias("uTime"))
    both = a.join(imported.select(*cols, PROVENANCE_COL), on="orderId", suffix="_x")
    out = []
    for r in both.iter_rows(named=True):
        src = r[PROVENANCE_COL]
        if r["symbol"] != r["symbol_x"]:
            out.append(Disagreement(r["orderId"], "symbol", r["symbol"], r["symbol_x"], src))
        if not _direction_agrees(r):
            out.append(Disagreement(r["orderId"], "side", _fmt_dir(r, ""), _fmt_dir(r, "_x"), src))
        if _dec(r["size"]) != _dec(r["size_x"]) or _dec(r["size"]) is None:
            out.append(Disagreement(r["orderId"], "size", r["size"], r["size_x"], src))
        seconds = int(r["cTime_x"]) // 1000
        api_times = {int(t) // 1000 for t in (r["cTime"], r["uTime"]) if t and t.lstrip("-").isdigit()}
        if seconds not in api_times:
            out.append(Disagreement(r["orderId"], "time", r["cTime"], r["cTime_x"], src))
    return sorted(out, key=lambda d: (len(d.orderId), d.orderId, d.field))


def describe(disagreements: list[Disagreement], tz: str | None = None) -> str:
    """One readable sentence for a failing check, naming orders and, when every time is off by the same whole
    hours, the likely time-zone mistake."""
    if not disagreements:
        return "exports agree with the API on every overlapping order"
    ids = sorted({d.orderId for d in disagreements}, key=lambda s: (len(s), s))
    text = (f"{len(ids)} orders differ between export and API (e.g. {', '.join(ids[:5])}; fields "
            f"{', '.join(sorted({d.field for d in disagreements}))})")
    offsets = {int(d.export) // 1000 - int(d.api) // 1000 for d in disagreements if d.field == "time"}
    if len(offsets) == 1 and (off := offsets.pop()) % 900 == 0 and off:
        text += (f"; every export time is {off / 3600:+g} h off the API's: the export was probably written in "
                 f"another zone than {tz or 'the one given'}")
    return text


def _dec(v: str | None) -> Decimal | None:
    try:
        return Decimal(v) if v not in (None, "") else None
    except InvalidOperation:
        return None


def _trade(side: str | None, trade_side: str | None, pos_side: str | None) -> str | None:
    """buy/sell of the trade itself: one-way `side` is the trade; hedge `side` names the position, so a close
    trades against it."""
    if pos_side == "net" or (trade_side or "").endswith("_single"):
        return side
    if side not in ("buy", "sell"):
        return None
    closing = trade_side not in (None, "", "open")
    return {"buy": "sell", "sell": "buy"}[side] if closing else side


def _direction_agrees(r: dict) -> bool:
    api_hedge = r["posSide"] in ("long", "short")
    exp_hedge = r["posSide_x"] in ("long", "short")
    if api_hedge and exp_hedge:
        # Compare position and open/close, never `side`, whose hedge-mode convention is the one unsure part.
        return r["posSide"] == r["posSide_x"] and (r["tradeSide"] == "open") == (r["tradeSide_x"] == "open")
    return _trade(r["side"], r["tradeSide"], r["posSide"]) == _trade(r["side_x"], r["tradeSide_x"], r["posSide_x"])


def _fmt_dir(r: dict, sfx: str) -> str:
    return f"{r['side' + sfx]}/{r['tradeSide' + sfx]}/{r['posSide' + sfx]}"

