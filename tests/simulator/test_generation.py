import dataclasses
import json
import math
import time
import urllib.parse
from collections import Counter, defaultdict

import pytest
import requests

from bitget_assets.simulator import AccountSpec, generate_account, truth_for
from bitget_assets.simulator.accounts import DAY_MS
from bitget_assets.simulator.orders import ORDER_KEYS, render_order
from bitget_assets.simulator.store import OrderStore
from bitget_assets.simulator.symbols import contract

from .conftest import DEMO, NOW
from .helpers import HISTORY, signature

RET = 90 * DAY_MS


@pytest.fixture(scope="module")
def demo():
    account = generate_account(DEMO)
    store = OrderStore(account)
    return account, store, [json.loads(b) for b in account.blobs]


def test_same_spec_same_bytes_and_seed_matters(demo):
    account, _, _ = demo
    again = generate_account(DEMO)
    assert again.blobs == account.blobs
    assert again.credentials() == account.credentials()
    other = generate_account(dataclasses.replace(DEMO, seed=8))
    assert other.blobs != account.blobs
    assert other.api_key != account.api_key


def test_credentials_look_simulated(demo):
    account, _, _ = demo
    assert account.api_key.startswith("sim-demo-") and not account.api_key.startswith("bg_")
    assert len(account.api_key) == len("sim-demo-") + 12
    assert account.uid.isdigit()


def test_counts_expired_and_open(demo):
    account, store, orders = demo
    now = account.now_ms
    n_exp = round(DEMO.expired_fraction * DEMO.orders)
    n_open = min(50, math.ceil(0.01 * DEMO.orders))
    assert len(orders) == DEMO.orders + n_exp
    expired = [o for o in orders if int(o["cTime"]) < now - RET]
    assert len(expired) == n_exp
    assert all(now - DEMO.history_days * DAY_MS <= int(o["cTime"]) for o in expired)
    opened = [o for p, o in enumerate(orders) if account.is_open[p]]
    assert len(opened) == n_open
    assert all(o["status"] in ("live", "partially_filled") for o in opened)
    assert all(int(o["cTime"]) >= now - 7 * DAY_MS for o in opened)
    truth = store.truth(now, RET)
    assert len(truth) == DEMO.orders
    assert not {o["orderId"] for o in truth} & {o["orderId"] for o in expired}


def test_open_orders_option():
    spec = AccountSpec(name="x", seed=1, orders=300, symbols=5, now_ms=NOW, open_orders=0)
    assert sum(generate_account(spec).is_open) == 0
    spec = AccountSpec(name="x", seed=1, orders=300, symbols=5, now_ms=NOW, open_orders=7)
    assert sum(generate_account(spec).is_open) == 7


def test_symbol_skew(demo):
    account, store, _ = demo
    truth = store.truth(account.now_ms, RET)
    per_symbol = Counter(o["symbol"] for o in truth)
    assert len(per_symbol) == DEMO.symbols  # every symbol has an order
    counts = sorted(per_symbol.values(), reverse=True)
    assert sum(1 for c in counts if c <= DEMO.tail_max) >= 0.75 * DEMO.symbols
    assert per_symbol.most_common(1)[0][0] == "BTCUSDT"
    assert counts[0] > 0.25 * DEMO.orders


def test_small_accounts_are_all_tail_and_validation():
    acct = generate_account(AccountSpec(name="t", seed=2, orders=30, symbols=10, now_ms=NOW, tail_max=5,
                                        expired_fraction=0))
    counts = Counter(acct.sym_idx)
    assert len(counts) == 10 and max(counts.values()) <= 5 and sum(counts.values()) == 30
    one = generate_account(AccountSpec(name="t", seed=2, orders=50, symbols=1, now_ms=NOW))
    assert {s.name for s in one.symbols} == {"BTCUSDT"}
    with pytest.raises(ValueError):
        AccountSpec(name="t", orders=5, symbols=6)


def test_symbols_types_and_names(demo):
    account, _, _ = demo
    by_type = Counter(s.product_type for s in account.symbols)
    assert set(by_type) == set(DEMO.product_types)
    assert 0.6 <= by_type["USDT-FUTURES"] / DEMO.symbols <= 0.8
    names = [s.name for s in account.symbols]
    assert len(set(names)) == len(names)
    assert account.symbols[0].name == "BTCUSDT"
    assert {"BTCUSDT", "ETHUSDT", "BTCUSD", "BTCPERP"} <= set(names)
    for s in account.symbols:
        suffix = {"USDT-FUTURES": "USDT", "COIN-FUTURES": "USD", "USDC-FUTURES": "PERP"}[s.product_type]
        assert s.name.endswith(suffix) and s.name.isupper()
    two = generate_account(AccountSpec(name="t", orders=10, symbols=3, now_ms=NOW))
    assert {s.product_type for s in two.symbols} == set(DEMO.product_types)


def test_contracts_cover_traded_and_untraded(demo):
    account, _, _ = demo
    for pt, infos in account.contracts.items():
        traded = {s.name for s in account.symbols if s.product_type == pt}
        names = {i.name for i in infos}
        assert traded <= names and len(names - traded) >= 10
        for info in infos:
            c = contract(info)
            assert c["symbol"] == info.name
            assert all(isinstance(v, str) for k, v in c.items() if k != "supportMarginCoins")


def test_order_ids_and_times(demo):
    account, _, orders = demo
    ids = [int(o["orderId"]) for o in orders]
    assert all(len(o["orderId"]) == 19 for o in orders)
    assert ids == sorted(set(ids))  # unique, stored ascending
    assert sorted(orders, key=lambda o: (int(o["cTime"]), int(o["orderId"]))) == orders
    assert all(int(o["uTime"]) >= int(o["cTime"]) for o in orders)
    assert all(int(o["cTime"]) <= account.now_ms for o in orders)


def test_every_field_is_a_string_in_fixed_order(demo):
    account, _, orders = demo
    for blob, o in zip(account.blobs, orders, strict=True):
        assert tuple(o) == ORDER_KEYS
        assert all(isinstance(v, str) for v in o.values())
        assert render_order(o) == blob


def test_variants_are_covered(demo):
    _, _, orders = demo
    seen = defaultdict(set)
    for o in orders:
        for k in ("status", "side", "posSide", "tradeSide", "posMode", "orderType", "force", "marginMode",
                  "enterPointSource", "orderSource", "reduceOnly"):
            seen[k].add(o[k])
    assert {"filled", "canceled", "cancelled", "partially_filled", "live"} <= seen["status"]
    assert seen["side"] == {"buy", "sell"} and seen["posSide"] == {"long", "short", "net"}
    assert {"open", "close", "buy_single", "sell_single", "reduce_close_long", "burst_close_long",
            "offset_close_long", "offset_close_short", "delivery_close_long",
            "delivery_close_short"} <= seen["tradeSide"]
    assert seen["posMode"] == {"hedge_mode", "one_way_mode"}
    assert seen["orderType"] == {"limit", "market"}
    assert seen["force"] == {"gtc", "ioc", "fok", "post_only"}
    assert seen["marginMode"] == {"crossed", "isolated"}
    assert len(seen["enterPointSource"]) >= 4 and len(seen["orderSource"]) >= 4


def test_field_consistency(demo):
    _, _, orders = demo
    for o in orders:
        one_way = o["tradeSide"].endswith("_single")
        assert (o["posMode"] == "one_way_mode") == one_way
        assert (o["posSide"] == "net") == one_way
        if o["orderType"] == "market":
            assert o["price"] in ("0", "")
        if float(o["baseVolume"]) == 0:
            assert o["priceAvg"] == "" and o["fee"] == "0"
        else:
            assert o["priceAvg"] != "" and float(o["fee"]) < 0


def test_batch_ties_and_page_boundaries(demo):
    account, store, _ = demo
    truth = store.truth(account.now_ms, RET)
    same = Counter((o["symbol"], o["cTime"]) for o in truth)
    share = sum(v for v in same.values() if v > 1) / len(truth)
    assert 0.02 <= share <= 0.06
    open_ids = {store.oids[p] for p in store.open_positions()}
    finished = [o for o in truth if int(o["orderId"]) not in open_ids]
    newest_first = sorted(finished, key=lambda o: int(o["orderId"]), reverse=True)

    def straddles(listing):
        return [b for b in range(100, len(listing), 100)
                if listing[b - 1]["cTime"] == listing[b]["cTime"] and listing[b - 1]["symbol"] == listing[b]["symbol"]]

    for pt in DEMO.product_types:
        listing = [o for o in newest_first if account.symbols[store.symbol_index[o["symbol"]]].product_type == pt]
        assert len(listing) <= 100 or straddles(listing), pt
    btc = [o for o in newest_first if o["symbol"] == "BTCUSDT"]
    assert straddles(btc)


def test_truth_for_matches_generation(demo):
    account, store, _ = demo
    assert truth_for(DEMO) == store.truth(account.now_ms, RET)


EXOTIC = ("龙虾USDT", "$DEGENUSDT")


def test_exotic_symbols_trade_and_are_listed(demo):
    account, store, orders = demo
    traded = {s.name: s for s in account.symbols}
    assert set(EXOTIC) <= set(traded)
    assert all(traded[n].product_type == "USDT-FUTURES" for n in EXOTIC)
    assert set(EXOTIC) <= {i.name for i in account.contracts["USDT-FUTURES"]}
    for name in EXOTIC:
        mine = [o for o in store.truth(account.now_ms, RET) if o["symbol"] == name]
        assert mine and all(render_order(o) == account.blobs[store.position_of(int(o["orderId"]))] for o in mine)
    assert "龙虾USDT".encode() in b"".join(account.blobs)  # raw UTF-8, as json.dumps(ensure_ascii=False)


def test_exotic_symbols_only_change_their_own_orders():
    plain = generate_account(dataclasses.replace(DEMO, exotic_symbols=False))
    exotic = generate_account(DEMO)
    assert not set(EXOTIC) & {s.name for s in plain.symbols}
    assert len(plain.blobs) == len(exotic.blobs) and plain.oids == exotic.oids
    renamed = {i for i, s in enumerate(exotic.symbols) if s.name in EXOTIC}
    differ = [p for p in range(len(plain.blobs)) if plain.blobs[p] != exotic.blobs[p]]
    assert differ and all(exotic.sym_idx[p] in renamed for p in differ)
    few = generate_account(AccountSpec(name="f", orders=500, symbols=19, now_ms=NOW))
    assert not set(EXOTIC) & {s.name for s in few.symbols}


def test_exotic_symbols_are_served_by_symbol(sim, creds):
    for name in EXOTIC:
        expected = sorted((o for o in sim.truth("demo") if o["symbol"] == name and o["status"] != "live"),
                          key=lambda o: int(o["orderId"]), reverse=True)
        raw = f"productType=USDT-FUTURES&symbol={name}"
        sent = f"productType=USDT-FUTURES&symbol={urllib.parse.quote(name, safe='')}"
        ts = str(int(time.time() * 1000))
        headers = {"ACCESS-KEY": creds["api_key"], "ACCESS-TIMESTAMP": ts, "ACCESS-PASSPHRASE": creds["passphrase"],
                   "ACCESS-SIGN": signature(creds["api_secret"], ts, "GET", HISTORY, raw)}
        # Signed over the decoded query, sent percent-encoded (as Bitget checks it: docs/api-notes.md).
        r = requests.get(f"{sim.base_url}{HISTORY}?{sent}", headers=headers, timeout=10)
        assert r.json()["code"] == "00000", r.text
        got = [o for o in r.json()["data"]["entrustedList"] or [] if o["status"] != "live"]
        assert got == expected[:100] and got


def test_relabelled_position_tpsl_orders(demo):
    account, _, orders = demo
    sources = {o["orderSource"] for p, o in enumerate(orders) if p in set(account.relabelled)}
    assert sources == {"pos_profit_market", "pos_loss_market"}
    assert all(float(orders[p]["baseVolume"]) > 0 for p in account.relabelled)
