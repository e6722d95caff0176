"""The default account's assets, unbound, for tests that materialize them with resources of their own
(`defs` binds its resources to the assets it serves)."""

from bitget_assets.accounts import Account
from bitget_assets.assets import build_assets

_assets = build_assets(Account())
order_scan = _assets.order_scan
symbol_orders = _assets.symbol_partitions  # symbol_orders and symbol_plan_orders: one step set
sorted_orders = _assets.sorted_outputs  # every sorted output, published together
imported_orders = _assets.imported_orders


def materializations(result, asset: str) -> list:
    """The AssetMaterializations of `asset` (a key string such as "symbol_orders") in an execution result."""
    return [e.event_specific_data.materialization for e in result.get_asset_materialization_events()
            if e.asset_key.to_user_string() == asset]
