"""Recognise what kind of Bitget export a header line belongs to, and where the order-history columns are.

Columns are matched by name, case-insensitively and ignoring spaces around them; extra columns are ignored.
The current order-history header is the one Bitget wrote in 2026 (docs/api-notes.md, "Website exports"); the
aliases below are the older or alternative spellings we accept (lower case, as in older transaction files,
and a few plausible synonyms, which are guesses).
"""

from __future__ import annotations

import re

from .errors import ExportFileError, NotAnOrderExportError

ORDER_HISTORY = "futures order history"
TRANSACTIONS = "futures transactions"
POSITIONS = "position history"
FILLS = "trade (fill) history"

ORDER_HISTORY_HEADER = ("Date,Order ID,Direction,Coin,Futures,order source,Transaction type,Price,Average Price,"
                        "Order amount,Executed,Trading volume,Realized P/L,NetProfits,Status")

# canonical field -> accepted header names (normalised: lower case, single spaces)
REQUIRED = {
    "date": ("date", "time", "order time"),
    "order id": ("order id", "orderid", "order no.", "order no"),
    "direction": ("direction",),
    "coin": ("coin", "margin coin"),
    "futures": ("futures", "symbol", "contract"),
    "order amount": ("order amount", "amount", "size"),
    "status": ("status",),
}
OPTIONAL = {
    "price": ("price", "order price"),
    "average price": ("average price", "avg. price", "average filled price"),
    "executed": ("executed", "filled amount"),
    "trading volume": ("trading volume", "turnover"),
    "realized p/l": ("realized p/l", "realized pnl", "realized p&l"),
    "netprofits": ("netprofits", "net profits"),
    "order source": ("order source",),
    "transaction type": ("transaction type", "order type"),
}

_REFUSED = {
    TRANSACTIONS: "its `Order` column is a ledger-record id, not the order ID, so its rows cannot be merged "
                  "with orders",
    POSITIONS: "one row per closed position, with no order ID",
    FILLS: "one row per fill, with no order ID",
}


def normalise(name: str) -> str:
    return re.sub(r"\s+", " ", name.replace("\ufeff", "").replace("\t", " ")).strip().lower()


def kind_of(header: list[str]) -> str | None:
    """The export kind a header belongs to, or None when it is none we know."""
    names = {normalise(h) for h in header}
    if _columns(names, REQUIRED) is not None:
        return ORDER_HISTORY
    if {"order", "date", "coin", "futures", "type", "fee"} <= names and names & {"amount", "sum"}:
        return TRANSACTIONS
    if len(names & {"opening time", "closed time", "avg. entry price", "avg. closing price", "position pnl"}) >= 2:
        return POSITIONS
    if {"date", "direction", "futures"} <= names and names & {"transaction amount", "fee"}:
        return FILLS
    return None


def _columns(names: set[str], table: dict[str, tuple[str, ...]]) -> dict[str, str] | None:
    out = {}
    for field, aliases in table.items():
        hits = [a for a in aliases if a in names]
        if not hits:
            return None
        out[field] = hits[0]
    return out


def order_columns(header: list[str], file: str) -> dict[str, int]:
    """Canonical field -> column index for an order-history header; other kinds are refused by name."""
    kind = kind_of(header)
    if kind in _REFUSED:
        raise NotAnOrderExportError(
            file, 1, f"a futures order-history export ({ORDER_HISTORY_HEADER})",
            f"a Bitget {kind} export: {_REFUSED[kind]}; only order history is imported")
    if kind is None:
        raise ExportFileError(file, 1, f"the header of a Bitget futures order-history export "
                                       f"({ORDER_HISTORY_HEADER}), comma- or semicolon-separated",
                              repr(",".join(header)[:200]))
    index: dict[str, int] = {}
    names = [normalise(h) for h in header]
    for field, aliases in {**REQUIRED, **OPTIONAL}.items():
        at = [i for i, n in enumerate(names) if n in aliases]
        if len(at) > 1:
            raise ExportFileError(file, 1, f"one column for {field!r}",
                                  f"{len(at)}: {', '.join(header[i] for i in at)}")
        if at:
            index[field] = at[0]
    return index
