"""Asset checks beyond those sorted_orders reports itself."""

from concurrent.futures import ThreadPoolExecutor

import dagster as dg

from bitget_assets import history_store as hs
from bitget_assets.assets import AccountAssets
from bitget_assets.partitions import parse_partition_key
from bitget_assets.storage import IO_THREADS


def partition_problems(store, keys: list[str]) -> tuple[dict[str, str], int]:
    """Partitions holding another symbol's orders or one orderId twice, and the rows seen."""

    def problem(key: str) -> tuple[str | None, int]:
        symbol, _ = parse_partition_key(key)
        df = hs.read_partition(store, key, columns=["symbol", "orderId"])  # only what is checked is decoded
        if df.height and set(df["symbol"].unique()) != {symbol}:
            return "holds other symbols", df.height
        if df["orderId"].n_unique() != df.height:
            return "duplicate orderIds", df.height
        return None, df.height

    with ThreadPoolExecutor(IO_THREADS) as pool:  # reads (a file or an S3 round trip each) overlap
        found = list(pool.map(problem, keys))
    bad = {key: p for key, (p, _) in zip(keys, found, strict=True) if p}
    return bad, sum(rows for _, rows in found)


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
