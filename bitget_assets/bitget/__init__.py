"""A signed client for Bitget's v2 futures ("mix") order endpoints."""

from bitget_assets.bitget.client import BitgetClient, PageStats, RequestStats
from bitget_assets.bitget.credentials import Credentials
from bitget_assets.bitget.errors import (
    BitgetAPIError,
    BitgetAuthError,
    BitgetError,
    BitgetParameterError,
    BitgetResponseError,
    BitgetTransientError,
)

PRODUCT_TYPES = ("USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES")
DEMO_PRODUCT_TYPES = ("SUSDT-FUTURES", "SCOIN-FUTURES", "SUSDC-FUTURES")

__all__ = [
    "BitgetAPIError",
    "BitgetAuthError",
    "BitgetClient",
    "BitgetError",
    "BitgetParameterError",
    "BitgetResponseError",
    "BitgetTransientError",
    "Credentials",
    "DEMO_PRODUCT_TYPES",
    "PRODUCT_TYPES",
    "PageStats",
    "RequestStats",
]
