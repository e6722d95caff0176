"""Asset checks beyond those sorted_orders reports itself."""

import dagster as dg

from bitget_assets import history_store as hs
from bitget_assets.assets import AccountAssets
from bitget_assets.partitions import parse_partition_key


def partition_problems(store, keys: list[str]) -> tuple[dict[str, str], int]:
    """Partitions holding another symbol's orders or one orderId twice, and the rows seen."""
    bad: dict[str, str] = {}
    rows = 0
    for key in keys:
        symbol, _ = parse_partition_key(key)
        df = hs.read_partition(store, key)
        rows += df.height
        if df.height and set(df["symbol"].unique()) != {symbol}:
            bad[key] = "holds other symbols"
        elif df["orderId"].n_unique() != df.height:
            bad[key] = "duplicate orderIds"
    return bad, rows


def build_partition_check(assets: AccountAssets) -> dg.AssetChecksDefinition:
    account = assets.account

    @dg.asset_check(asset=assets.symbol_key("orders"), name="partitions_hold_only_their_symbol",
                    required_resource_keys={account.storage_key},
                    description="Each partition holds only its symbol, once per orderId.")
    def partitions_hold_only_their_symbol(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        store = getattr(context.resources, account.storage_key).get_storage()
        bad, rows = partition_problems(store, context.instance.get_dynamic_partitions(assets.partitions_def.name))
        return dg.AssetCheckResult(passed=not bad, metadata={"problems": dg.MetadataValue.json(bad), "rows": rows})

    return partitions_hold_only_their_symbol
