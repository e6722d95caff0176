"""The default account's assets as `defs` serves them, for tests that materialize them directly."""

from bitget_assets.definitions import defs

order_scan = defs.resolve_assets_def("order_scan")
symbol_orders = defs.resolve_assets_def("symbol_orders")
sorted_orders = defs.resolve_assets_def("sorted_orders")
