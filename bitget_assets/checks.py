"""Asset checks beyond those sorted_orders reports itself."""

import dagster as dg

from bitget_assets import history_store as hs
from bitget_assets.assets import symbol_orders
from bitget_assets.partitions import parse_partition_key, symbols_partitions_def
from bitget_assets.resources import StorageResource


@dg.asset_check(asset=symbol_orders, description="Each partition holds only its symbol, once per orderId.")
def partitions_hold_only_their_symbol(
    context: dg.AssetCheckExecutionContext, storage: StorageResource
) -> dg.AssetCheckResult:
    store = storage.get_storage()
    bad: dict[str, str] = {}
    rows = 0
    for key in context.instance.get_dynamic_partitions(symbols_partitions_def.name):
        symbol, _ = parse_partition_key(key)
        df = hs.read_partition(store, key)
        rows += df.height
        if df.height and set(df["symbol"].unique()) != {symbol}:
            bad[key] = "holds other symbols"
        elif df["orderId"].n_unique() != df.height:
            bad[key] = "duplicate orderIds"
    return dg.AssetCheckResult(passed=not bad, metadata={"problems": dg.MetadataValue.json(bad), "rows": rows})

