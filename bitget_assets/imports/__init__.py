"""Import Bitget's website exports (futures order history) and merge them with the orders read from the API.

    df = parse_export(path, tz="Europe/Berlin")          # order schema + `source` = export:<file name>
    merged = merge_sources(api_orders, df)                # API rows win; union by orderId
    overlap_disagreements(api_orders, df)                 # [] when the export agrees with the API
"""

from .errors import ExportFileError, MissingTimeZoneError, NotAnOrderExportError
from .kinds import FILLS, ORDER_HISTORY, POSITIONS, TRANSACTIONS, kind_of
from .merge import (
    Disagreement,
    describe,
    duplicate_order_ids,
    merge_sources,
    outside_partitions,
    overlap_disagreements,
)
from .parse import PROVENANCE_COL, parse_export, parse_exports
from .rows import product_type

__all__ = ["ExportFileError", "MissingTimeZoneError", "NotAnOrderExportError", "FILLS", "ORDER_HISTORY",
           "POSITIONS", "TRANSACTIONS", "kind_of", "Disagreement", "describe", "duplicate_order_ids",
           "merge_sources", "outside_partitions", "overlap_disagreements", "PROVENANCE_COL", "parse_export",
           "parse_exports", "product_type"]
