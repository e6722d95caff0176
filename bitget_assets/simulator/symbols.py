"""Symbol names, reference prices and contract records of the simulated exchange.

Everything here is a pure function of the symbol name, so several accounts in one server agree on the
contract list (the public contracts endpoint has no account).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

STANDARD_TYPES = ("USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES")
DEMO_TYPES = ("SUSDT-FUTURES", "SCOIN-FUTURES", "SUSDC-FUTURES")
ALL_TYPES = STANDARD_TYPES + DEMO_TYPES

# Share of an account's symbols per product type (USDT-margined dominates real trading).
TYPE_WEIGHT = {"USDT": 0.70, "COIN": 0.15, "USDC": 0.15}

# Popularity order per product type; beyond these we make up ALT<n> coins.
_BASES = {
    "USDT": ["BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "ADA", "LINK", "AVAX", "SUI", "LTC", "TRX", "DOT",
             "PEPE", "WIF", "ARB", "OP", "APT", "NEAR", "FIL", "ATOM", "UNI", "ETC", "BCH", "WLD", "INJ",
             "TIA", "SEI", "ORDI", "SHIB", "TON", "AAVE", "ENA", "ONDO", "JUP"],
    "COIN": ["BTC", "ETH", "XRP", "SOL", "LTC", "ADA", "DOGE", "DOT", "LINK", "BGB", "EOS", "TRX"],
    "USDC": ["BTC", "ETH", "SOL", "XRP", "DOGE", "LTC", "ADA", "LINK", "AVAX", "SUI"],
}
_SUFFIX = {"USDT": "USDT", "COIN": "USD", "USDC": "PERP"}
_QUOTE = {"USDT": "USDT", "COIN": "USD", "USDC": "USDC"}
_PRICES = {
    "BTC": 65000, "ETH": 3200, "SOL": 150, "XRP": 0.6, "DOGE": 0.15, "BNB": 580, "ADA": 0.45, "LINK": 15,
    "AVAX": 30, "SUI": 1.5, "LTC": 80, "TRX": 0.12, "DOT": 6.5, "PEPE": 0.00001, "WIF": 2.5, "ARB": 0.8,
    "OP": 1.8, "APT": 8, "NEAR": 5, "FIL": 4.5, "ATOM": 7, "UNI": 8, "ETC": 22, "BCH": 380, "WLD": 2.2,
    "INJ": 22, "TIA": 6, "SEI": 0.4, "ORDI": 35, "SHIB": 0.00002, "TON": 5.5, "AAVE": 150, "ENA": 0.5,
    "ONDO": 1.1, "JUP": 0.9, "BGB": 1.2, "EOS": 0.6,
}


def family(product_type: str) -> str:
    """USDT / COIN / USDC for both the live and the demo (S-prefixed) product type."""
    head = product_type.split("-")[0]
    return head[1:] if product_type in DEMO_TYPES else head


def symbol_name(product_type: str, i: int) -> str:
    """The i-th most popular symbol of a product type (demo types use Bitget's S-prefixed coins)."""
    fam = family(product_type)
    bases = _BASES[fam]
    base = bases[i] if i < len(bases) else f"ALT{i - len(bases) + 1}"
    if product_type in DEMO_TYPES:
        return f"S{base}S{_SUFFIX[fam]}"
    return base + _SUFFIX[fam]


def _unit(name: str, salt: str) -> float:
    """A stable number in [0, 1) derived from a name (no RNG state shared between symbols)."""
    h = hashlib.sha256(f"{salt}:{name}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


@dataclass(frozen=True)
class SymbolInfo:
    name: str
    product_type: str
    base_coin: str
    quote_coin: str
    margin_coin: str
    price: float          # reference price; orders wander around it
    price_place: int
    volume_place: int
    phase1: float
    phase2: float


def symbol_info(product_type: str, name: str) -> SymbolInfo:
    fam = family(product_type)
    demo = product_type in DEMO_TYPES
    suffix = ("S" if demo else "") + _SUFFIX[fam]
    base = name[: -len(suffix)] if name.endswith(suffix) else name
    plain = base[1:] if demo and base.startswith("S") else base
    price = _PRICES.get(plain) or 10 ** (-3 + 5 * _unit(name, "price"))
    mag = math.floor(math.log10(price))
    quote = ("S" if demo else "") + _QUOTE[fam]
    margin = base if fam == "COIN" else quote
    return SymbolInfo(
        name=name, product_type=product_type, base_coin=base, quote_coin=quote, margin_coin=margin,
        price=price, price_place=max(1, 4 - mag), volume_place=min(4, max(0, mag)),
        phase1=6.283 * _unit(name, "p1"), phase2=6.283 * _unit(name, "p2"),
    )


def contract(info: SymbolInfo) -> dict:
    """A contract record like `/api/v2/mix/market/contracts` returns (all values strings)."""
    u = _unit(info.name, "status")
    # A few contracts are delisted; some of them may still carry an account's old orders.
    off = u < 0.06 and info.base_coin not in ("BTC", "ETH", "SBTC", "SETH")
    min_trade = f"{10 ** -info.volume_place:.{info.volume_place}f}" if info.volume_place else "1"
    launch = 1_600_000_000_000 + int(_unit(info.name, "launch") * 150_000_000_000)
    return {
        "symbol": info.name, "baseCoin": info.base_coin, "quoteCoin": info.quote_coin,
        "buyLimitPriceRatio": "0.05", "sellLimitPriceRatio": "0.05", "feeRateUpRatio": "0.005",
        "makerFeeRate": "0.0002", "takerFeeRate": "0.0006", "openCostUpRatio": "0.01",
        "supportMarginCoins": [info.margin_coin], "minTradeNum": min_trade, "priceEndStep": "1",
        "volumePlace": str(info.volume_place), "pricePlace": str(info.price_place),
        "sizeMultiplier": min_trade, "symbolType": "perpetual", "minTradeUSDT": "5",
        "maxSymbolOrderNum": "200", "maxProductOrderNum": "400", "maxPositionNum": "150",
        "symbolStatus": "off" if off else "normal", "offTime": str(launch + 90 * 86_400_000) if off else "-1",
        "limitOpenTime": "-1", "deliveryTime": "", "deliveryStartTime": "", "deliveryPeriod": "",
        "launchTime": str(launch), "fundInterval": "8", "minLever": "1",
        "maxLever": "125" if info.base_coin in ("BTC", "ETH") else "75", "posLimit": "0.05",
        "maintainTime": "",
    }
