"""Bitget's website "futures order history" export of a generated account, quirks included.

Writes what the facts on Bitget's exports describe (docs/api-notes.md, "Website exports"): one file per product
type, UTF-8 with BOM, CRLF, the 2026 header, a TAB before every order ID, dates `YYYY-MM-DD HH:MM:SS` in the
account's display zone with no marker, `Price` empty for market orders. The full history is exported,
including orders older than the API's retention. Our choices where the facts are silent (guesses): rows newest
first; `Date` is cTime; open orders are not history and are left out; statuses `Filled`, `Cancelled`,
`Partially filled`; one-way orders written with the four position words (reduce-only = close); whether Bitget
exports cancelled orders is unknown, so `include_cancelled` decides.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from .accounts import Account

HEADER = ("Date", "Order ID", "Direction", "Coin", "Futures", "order source", "Transaction type", "Price",
          "Average Price", "Order amount", "Executed", "Trading volume", "Realized P/L", "NetProfits", "Status")
STATUS_TEXT = {"filled": "Filled", "canceled": "Cancelled", "cancelled": "Cancelled",
               "partially_filled": "Partially filled"}
CANCELLED = ("canceled", "cancelled")


def all_orders(account: Account) -> list[dict]:
    """Every order the account ever created (expired, finished and open), in orderId order."""
    return [json.loads(b) for b in account.blobs]


def exported_orders(account: Account, product_type: str, *, start_ms: int | None = None,
                    end_ms: int | None = None, include_cancelled: bool = True) -> list[dict]:
    """The finished orders of one product type with start_ms <= cTime < end_ms, newest first."""
    lo, hi = start_ms if start_ms is not None else -(2**62), end_ms if end_ms is not None else 2**62
    out = []
    for p in range(len(account.oids) - 1, -1, -1):
        if account.is_open[p] or not lo <= account.ctimes[p] < hi:
            continue
        if account.symbols[account.sym_idx[p]].product_type != product_type:
            continue
        order = json.loads(account.blobs[p])
        if include_cancelled or order["status"] not in CANCELLED:
            out.append(order)
    return out


def direction(order: dict) -> str:
    """`Open long` ... `Close short`: hedge orders by posSide/tradeSide, one-way orders by side + reduce-only."""
    if order["posSide"] in ("long", "short"):
        return ("Open " if order["tradeSide"] == "open" else "Close ") + order["posSide"]
    closing = order["reduceOnly"] == "YES"
    longs = (order["side"] == "buy") != closing
    return ("Close " if closing else "Open ") + ("long" if longs else "short")


def _row(order: dict, zone: ZoneInfo) -> list[str]:
    local = datetime.fromtimestamp(int(order["cTime"]) // 1000, UTC).astimezone(zone)
    market = order["orderType"] == "market"
    net = Decimal(order["totalProfits"] or "0") + Decimal(order["fee"] or "0")
    return [
        local.strftime("%Y-%m-%d %H:%M:%S"), "\t" + order["orderId"], direction(order), order["marginCoin"],
        order["symbol"], order["orderSource"], order["orderType"].capitalize(), "" if market else order["price"],
        order["priceAvg"], order["size"], order["baseVolume"], order["quoteVolume"], order["totalProfits"],
        format(net, "f"), STATUS_TEXT[order["status"]],
    ]


def render_export(orders: list[dict], *, tz: str, delimiter: str = ",") -> bytes:
    """The bytes of one export file holding `orders` in the given order."""
    if delimiter not in (",", ";"):
        raise ValueError("delimiter must be ',' or ';'")
    zone = ZoneInfo(tz)
    buf = io.StringIO(newline="")
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    w.writerow(HEADER)
    w.writerows(_row(o, zone) for o in orders)
    return b"\xef\xbb\xbf" + buf.getvalue().encode()


def month_range_ms(from_month: str, to_month: str, tz: str) -> tuple[int, int]:
    """[start of `from_month`, start of the month after `to_month`) in `tz`, as UTC ms; months are YYYY-MM."""
    zone = ZoneInfo(tz)

    def start(year: int, month: int) -> int:
        return int(datetime(year, month, 1, tzinfo=zone).timestamp() * 1000)

    try:
        y0, m0 = (int(x) for x in from_month.split("-"))
        y1, m1 = (int(x) for x in to_month.split("-"))
        lo, hi = start(y0, m0), start(y1 + m1 // 12, m1 % 12 + 1)
    except ValueError:
        raise ValueError(f"months must be YYYY-MM, got {from_month!r} and {to_month!r}") from None
    if hi <= lo:
        raise ValueError(f"{to_month} is before {from_month}")
    return lo, hi


def file_name(created_ms: int, tz: str) -> str:
    local = datetime.fromtimestamp(created_ms // 1000, UTC).astimezone(ZoneInfo(tz))
    return f"Export futures order history-{local:%Y-%m-%d %H_%M_%S}.csv"


def write_exports(account: Account, out_dir: str | Path, *, tz: str, start_ms: int | None = None,
                  end_ms: int | None = None, include_cancelled: bool = True, delimiter: str = ",",
                  created_ms: int | None = None) -> dict[str, Path]:
    """One export file per product type of the account (product types with no orders get a header-only
    file), named like Bitget's, created one second apart from `created_ms` (default: the account's now)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    created = account.now_ms if created_ms is None else created_ms
    written = {}
    for i, pt in enumerate(account.spec.product_types):
        orders = exported_orders(account, pt, start_ms=start_ms, end_ms=end_ms, include_cancelled=include_cancelled)
        path = out / file_name(created + 1000 * i, tz)
        path.write_bytes(render_export(orders, tz=tz, delimiter=delimiter))
        written[pt] = path
    return written
