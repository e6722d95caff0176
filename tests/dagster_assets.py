"""The default account's assets, unbound, for tests that materialize them with resources of their own
(`defs` binds its resources to the assets it serves)."""

from bitget_assets.accounts import Account
from bitget_assets.assets import build_assets

order_scan, symbol_orders, sorted_orders = build_assets(Account()).all
