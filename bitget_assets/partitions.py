"""One dynamic partition per traded symbol; keys name the product type too, so they stay unique."""

import re
from typing import TYPE_CHECKING

from bitget_assets.accounts import Account

if TYPE_CHECKING:
    import dagster as dg


def symbols_partitions(account: Account) -> "dg.DynamicPartitionsDefinition":
    """One account's partition set: `symbols` for the default account, `<name>__symbols` for a named one."""
    import dagster as dg  # here: the keys' rules below are used before Dagster is imported (the early scan)

    return dg.DynamicPartitionsDefinition(name=account.partitions_name)


# Bitget lists symbols such as `龙虾USDT` and `$DEGENUSDT`: anything printable but the separator ':' and the
# characters that would change a storage path ('/', '\\', a leading '.').
_KEY = re.compile(r"^(?P<symbol>[^\s:/\\.][^\s:/\\]{0,39}):(?P<product_type>[A-Z]{1,10}-FUTURES)$")


def partition_key(symbol: str, product_type: str) -> str:
    return f"{symbol}:{product_type}"


def parse_partition_key(key: str) -> tuple[str, str]:
    """(symbol, product type) of a key like `BTCUSDT:USDT-FUTURES`; a malformed key is refused."""
    match = _KEY.match(key)
    if not match or not match["symbol"].isprintable():
        raise ValueError(f"malformed partition key {key!r}: expected SYMBOL:PRODUCT-TYPE, e.g. BTCUSDT:USDT-FUTURES")
    return match["symbol"], match["product_type"]
