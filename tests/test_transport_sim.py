"""The transport against the simulator's live-exchange behaviour: account modes and UIDs, a skewed server clock,
non-ASCII symbols, the release window and the per-IP lock-out (ground truth and the simulator's request log)."""

import time

import pytest

from bitget_assets.bitget.account import detect_account_mode
from bitget_assets.bitget.errors import BitgetUnifiedAccountError
from bitget_assets.paging import walk
from bitget_assets.simulator import AccountSpec, FaultConfig, Simulator, SimulatorConfig
from bitget_assets.streams import ORDERS_HISTORY, ORDERS_PENDING
from tests.simhelpers import DAY_MS, HISTORY, NOW_MS, client_for, requests_to

SETTINGS, INFO, TIME = "/api/v3/account/settings", "/api/v2/spot/account/info", "/api/v2/public/time"
QUIET = dict(rate_limit=None, latency=None, frozen=True)


def ids_of(client, product_type="USDT-FUTURES", symbol=None) -> set[str]:
    ids = set()
    for rows in walk(client, ORDERS_HISTORY, product_type, symbol=symbol, start_ms=NOW_MS - 90 * DAY_MS, end_ms=NOW_MS):
        ids |= {o["orderId"] for o in rows}
    for rows in walk(client, ORDERS_PENDING, product_type, symbol=symbol):
        ids |= {o["orderId"] for o in rows}
    return ids


def spec(**kw) -> AccountSpec:
    return AccountSpec(**({"name": "demo", "seed": 4, "orders": 300, "symbols": 3, "now_ms": NOW_MS} | kw))


@pytest.mark.parametrize("mode", ["classic", "unified"])
def test_mode_and_uid_are_detected(mode):
    with Simulator([spec()], SimulatorConfig(account_modes={"demo": mode}, **QUIET)) as sim:
        client = client_for(sim)
        found = detect_account_mode(client)
        uid = sim.credentials("demo")["uid"]
        assert (found.mode, found.uid, client.uid) == (mode, uid, uid)
        assert client.budget_key(HISTORY) == f"bitget:uid-{uid}:{HISTORY}"
        probes = [r["endpoint"] for r in requests_to(sim) if r["endpoint"] != TIME]
        assert probes == ([SETTINGS, INFO] if mode == "classic" else [SETTINGS])
        if mode == "unified":
            with pytest.raises(BitgetUnifiedAccountError, match="40085"):
                client.request(HISTORY, {"productType": "USDT-FUTURES"})
            assert len(requests_to(sim, HISTORY)) == 1


def test_an_upgrade_in_progress_is_waited_out():
    with Simulator([spec()], SimulatorConfig(**QUIET)) as sim:
        sim.set_account_mode("demo", "unified", transition_s=1.0)
        began = time.monotonic()
        found = detect_account_mode(client_for(sim), poll_s=0.25, transition_wait_s=10)
        assert found.mode == "unified" and 0.7 < time.monotonic() - began < 5
        assert len(requests_to(sim, SETTINGS)) >= 3


def test_a_skewed_server_clock_is_corrected():
    with Simulator([spec(now_ms=None)], SimulatorConfig(clock_skew_s=-3600, **QUIET)) as sim:
        client = client_for(sim)
        client.request(HISTORY, {"productType": "USDT-FUTURES"})
        assert abs(client.clock_offset_ms + 3_600_000) < 1000
        assert [r["status"] for r in requests_to(sim, HISTORY)] == [200]
        uncorrected = client_for(sim)
        uncorrected.server_clock.record(int(time.time() * 1000), time.time(), time.time())  # offset 0
        uncorrected.request(HISTORY, {"productType": "USDT-FUTURES"})  # 40008 -> measured again -> retried
        assert [r["code"] for r in requests_to(sim, HISTORY)][1:] == ["40008", "00000"]


def test_non_ascii_and_dollar_symbols_are_signed_right():
    with Simulator([spec(symbols=20, orders=600)], SimulatorConfig(**QUIET)) as sim:
        client = client_for(sim)
        for symbol in ("龙虾USDT", "$DEGENUSDT"):
            expected = {o["orderId"] for o in sim.truth("demo") if o["symbol"] == symbol}
            assert expected, f"the account has no {symbol} orders: the test proves nothing"
            assert ids_of(client, symbol=symbol) == expected
        assert not [r for r in requests_to(sim) if r["status"] != 200]


def test_the_release_window_costs_retries_not_orders():
    faults = FaultConfig(release_window=0.25)
    with Simulator([spec(orders=3000)], SimulatorConfig(faults=faults, seed=3, **QUIET)) as sim:
        client = client_for(sim, max_backoff_s=0.02)
        got = ids_of(client) | ids_of(client, "COIN-FUTURES") | ids_of(client, "USDC-FUTURES")
        assert got == {o["orderId"] for o in sim.truth("demo")}
        codes = {r["code"] for r in requests_to(sim)} - {"00000"}
        assert codes >= {"45001", "40725", "40015", "40200"}, codes


def test_the_ip_budget_keeps_clear_of_the_ip_ceiling_and_a_lockout_is_waited_out():
    """Ceiling 15 requests per 1 s, lock-out 1.5 s: a client whose IP budget is 10/s never trips it; one without
    the IP budget (50/s) trips it, waits the lock-out out and still returns every order."""
    cfg = SimulatorConfig(ip_limit=15, ip_window_s=1.0, ip_lockout_s=1.5, **QUIET)
    with Simulator([spec(orders=2500, symbols=2)], cfg) as sim:
        every = {o["orderId"] for o in sim.truth("demo") if _usdt(o)}
        assert ids_of(client_for(sim, ip_requests_per_second=10)) == every
        assert len(requests_to(sim)) > 15 and not [r for r in requests_to(sim) if r["status"] == 429]
    with Simulator([spec(orders=2500, symbols=2)], cfg) as sim:
        began = time.monotonic()
        assert ids_of(client_for(sim, ip_requests_per_second=None, rate_limited_pause_s=0.2)) == every
        lockouts = [r for r in requests_to(sim) if r.get("fault") == "ip_lockout"]
        assert lockouts, "the client never tripped the ceiling: the test proves nothing"
        assert time.monotonic() - began >= 1.5


def _usdt(order) -> bool:
    return order["marginCoin"] == "USDT"
