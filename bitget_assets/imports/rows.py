"""Order-history cells -> order-schema columns, every cell checked, column by column (no per-row Python).

A bad cell anywhere refuses the file: the error names the earliest bad line, like a row-by-row reader would.
"""

from __future__ import annotations

import re

import polars as pl

from ..orders import PRODUCT_TYPE_COL
from .errors import ExportFileError

_NUMBER = r"^[+-]?[0-9]+(\.[0-9]+)?$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"
_SYMBOL = r"^\S{2,60}$"  # Bitget lists names like 龙虾USDT and $DEGENUSDT too

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
NUMBERS = {"order amount": "size", "price": "price", "average price": "priceAvg", "executed": "baseVolume",
           "trading volume": "quoteVolume", "realized p/l": "totalProfits"}


def product_type(coin: str, symbol: str) -> str | None:
    """USDT margin + ...USDT -> USDT-FUTURES; USDC margin + ...PERP/...USDC -> USDC-FUTURES; any other margin
    coin + ...USD -> COIN-FUTURES; anything else None (refused)."""
    if not re.fullmatch(_SYMBOL, symbol) or not re.fullmatch(r"\S{1,20}", coin):
        return None
    if coin == "USDT":
        return "USDT-FUTURES" if symbol.endswith("USDT") else None
    if coin == "USDC":
        return "USDC-FUTURES" if symbol.endswith(("PERP", "USDC")) else None
    return "COIN-FUTURES" if symbol.endswith("USD") and len(symbol) > 3 else None


def _words(s: pl.Series) -> pl.Series:
    return s.str.to_lowercase().str.replace_all(r"[\s_]+", " ")


def order_rows(cells: dict[str, pl.Series], lines: pl.Series, decimal_comma: bool, name: str) -> pl.DataFrame:
    """Checked order columns (plus `_date` and `_line`) from the cells of each canonical field (TAB-stripped).
    `cells` holds every required field; optional ones may be missing."""
    checks: list[tuple[pl.Series, str, pl.Series]] = []  # (bad rows, what was expected, the cells)

    def need(bad: pl.Series, expected: str, shown: pl.Series) -> None:
        checks.append((bad.fill_null(True), expected, shown))

    oid, date = cells["order id"], cells["date"]
    need(~oid.str.contains(r"^[0-9]{1,30}$"), "a numeric order ID (a TAB before it is fine)", oid)
    need(~date.str.contains(_DATE), "a date like 2026-01-05 05:53:28", date)
    words = _words(cells["direction"])
    parts = [words.replace_strict({k: v[i] for k, v in DIRECTIONS.items()}, default=None, return_dtype=pl.String)
             for i in range(3)]
    need(parts[0].is_null(), "a direction (Open long, Close long, Open short, Close short, Buy, Sell)",
         cells["direction"])
    pairs = pl.DataFrame({"c": cells["coin"], "s": cells["futures"]})
    rule = {(c, s): product_type(c, s) for c, s in pairs.unique().iter_rows()}
    pt = pl.Series([rule[p] for p in pairs.iter_rows()], dtype=pl.String)
    need(pt.is_null(), "a futures symbol and margin coin of USDT-M (USDT, ...USDT), USDC-M (USDC, ...PERP/...USDC) "
                       "or COIN-M (a coin, ...USD)", cells["futures"] + " margined in " + cells["coin"])
    status = _words(cells["status"]).replace_strict(STATUSES, default=None, return_dtype=pl.String)
    need(status.is_null(), f"a status ({', '.join(sorted(STATUSES))})", cells["status"])
    out = {"orderId": oid, "symbol": cells["futures"], "marginCoin": cells["coin"], "side": parts[0],
           "tradeSide": parts[1], "posSide": parts[2]}
    n = len(oid)
    for field, target in NUMBERS.items():
        v = cells.get(field)
        if v is None:
            out[target] = pl.Series([None] * n, dtype=pl.String)
            continue
        if decimal_comma:
            v = v.str.replace(r"^([+-]?[0-9]+),([0-9]+)$", "${1}.${2}")
        empty_ok = field != "order amount"
        need(~v.str.contains(_NUMBER) & ~((v == "") & empty_ok), f"a plain decimal number in {field!r}", v)
        out[target] = v
    otype = _words(cells.get("transaction type", pl.Series([""] * n, dtype=pl.String)))
    out["orderType"] = otype.replace_strict({"limit": "limit", "market": "market"}, default=None,
                                            return_dtype=pl.String)
    source = cells.get("order source", pl.Series([""] * n, dtype=pl.String)).str.to_lowercase()
    out["orderSource"] = source.zip_with(source != "", pl.Series([None] * n, dtype=pl.String))
    _refuse_first(checks, lines, name)
    out.update(status=status, _date=date, _line=lines)
    out[PRODUCT_TYPE_COL] = pt
    return _one_row_per_order(pl.DataFrame(out), name)


def _refuse_first(checks, lines: pl.Series, name: str) -> None:
    best = None
    for bad, expected, shown in checks:
        at = bad.arg_true()
        if len(at) and (best is None or at[0] < best[0]):
            best = (at[0], expected, shown)
    if best is not None:
        i, expected, shown = best
        raise ExportFileError(name, lines[i], expected, repr(shown[i]))


def _one_row_per_order(df: pl.DataFrame, name: str) -> pl.DataFrame:
    """The same order twice with equal values is kept once; with different values the file is refused."""
    if not df["orderId"].is_duplicated().any():
        return df
    values = [c for c in df.columns if c != "_line"]
    df = df.unique(subset=values, keep="first", maintain_order=True)
    clash = df.filter(pl.col("orderId").is_duplicated())
    if clash.height:
        firsts = clash.group_by("orderId", maintain_order=True).agg(pl.col("_line").sort().head(2))
        oid, (first, second) = min(firsts.iter_rows(), key=lambda r: r[1][1])
        raise ExportFileError(name, second, f"order {oid} once, or twice with equal values",
                              f"a different row for it on line {first}")
    return df
