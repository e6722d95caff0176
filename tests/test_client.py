"""The client against the simulator: every order id extracted equals the simulator's ground truth."""

import time

import pytest

from bitget_assets import paging
from bitget_assets.bitget import BitgetAuthError, BitgetParameterError, Credentials
from bitget_assets.extraction import read_scan_rows, scan_account
from bitget_assets.paging import SpanMemory, fetch_page, walk
from bitget_assets.partitions import partition_key
from bitget_assets.simulator import AccountSpec, FaultConfig, Simulator, SimulatorConfig
from bitget_assets.storage import LocalStorage
from bitget_assets.streams import ORDERS_HISTORY, ORDERS_PENDING
from tests.simhelpers import DAY_MS, HISTORY, NOW_MS, PENDING, client_for, extract_ids, requests_to, truth_ids

ALL = ("USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES")


def one_symbol(n, name="demo", open_orders=0, **kw):
    return AccountSpec(name=name, seed=n, orders=n, symbols=1, now_ms=NOW_MS, expired_fraction=0.2,
                       open_orders=open_orders, product_types=("USDT-FUTURES",), **kw)


@pytest.fixture(scope="module")
def paging_sim():
    specs = [one_symbol(n, name=f"n{n}") for n in (1, 99, 100, 101, 250)]
    with Simulator(specs, SimulatorConfig(rate_limit=None, latency=None, frozen=True)) as sim:
        yield sim


@pytest.mark.parametrize("n", [1, 99, 100, 101, 250])
def test_paging_returns_exactly_the_truth(paging_sim, n):
    client = client_for(paging_sim, f"n{n}")
    ids = extract_ids(client, ALL, NOW_MS)
    assert len(ids) == len(set(ids)) == n
    assert set(ids) == truth_ids(paging_sim, f"n{n}")


def test_empty_product_type_costs_one_request(paging_sim):
    client = client_for(paging_sim, "n1")
    def order_requests():
        return [r for r in requests_to(paging_sim) if r["endpoint"] in (HISTORY, PENDING)]

    before = len(order_requests())
    assert extract_ids(client, ["COIN-FUTURES"], NOW_MS) == []
    assert len(order_requests()) - before == 2  # one history page, one pending page


def test_orders_older_than_retention_are_never_returned(paging_sim):
    client = client_for(paging_sim, "n250")
    got = [o for rows in walk(client, ORDERS_HISTORY, "USDT-FUTURES", start_ms=NOW_MS - 90 * DAY_MS, end_ms=NOW_MS)
           for o in rows]
    assert {o["orderId"] for o in got} == truth_ids(paging_sim, "n250") and len(got) == 250
    assert all(int(o["cTime"]) >= NOW_MS - 90 * DAY_MS for o in got)
    with pytest.raises(BitgetParameterError, match="40704"):
        next(walk(client, ORDERS_HISTORY, "USDT-FUTURES", start_ms=NOW_MS - 100 * DAY_MS, end_ms=NOW_MS - 95 * DAY_MS))


def seven_day_windows():
    """The 7-day windows over the retention, newest first, that the client walks on a 7-day-span server."""
    span, out, upper = 7 * DAY_MS, [], NOW_MS
    while upper >= NOW_MS - 90 * DAY_MS:
        lower = max(NOW_MS - 90 * DAY_MS, upper - span)
        out.append((lower, upper))
        upper = lower - 1
    return out


def test_ctime_ties_across_a_page_boundary_and_window_edges(monkeypatch):
    spec = one_symbol(150, name="ties")
    with Simulator([spec], SimulatorConfig(rate_limit=None, latency=None, frozen=True, max_span_days=7)) as sim:
        (symbol,) = {o["symbol"] for o in sim.truth("ties")}
        windows = seven_day_windows()
        # Orders exactly on every edge of the 7-day windows the client walks, both sides of each edge, and on
        # the retention edge (NOW - 90 days is returned, one millisecond older is not).
        edge_times = [c for lower, _ in windows for c in (lower - 1, lower, lower + 1)]
        edge = sim.add_orders("ties", orders=[{"symbol": symbol, "cTime": str(c)} for c in edge_times])
        # Then a batch of 20 orders sharing one cTime, followed by 90 newer orders. Ids grow with every added
        # order, so the newest window lists (newest first) the 90 newer orders, then the tie group at places
        # 91..110: the first page (100 orders) ends inside the group and the second page starts inside it.
        tie_t = max(int(o["cTime"]) for o in sim.truth("ties")) + 1
        sim.add_orders("ties", orders=[{"symbol": symbol, "cTime": str(tie_t)} for _ in range(20)]
                       + [{"symbol": symbol, "cTime": str(tie_t + 1 + j)} for j in range(90)])
        assert tie_t + 90 <= NOW_MS
        truth = truth_ids(sim, "ties")
        retention_start = NOW_MS - 90 * DAY_MS
        assert {o["orderId"] for o in edge if int(o["cTime"]) >= retention_start} <= truth
        assert not {o["orderId"] for o in edge if int(o["cTime"]) < retention_start} & truth

        client = client_for(sim, "ties")
        pages = []  # every page the engine's own paging fetched: (path, window and cursor, Page)
        fetch = paging.fetch_page

        def recording_fetch_page(client_, spec, product_type, **kw):
            page = fetch(client_, spec, product_type, **kw)
            pages.append((spec.path, kw, page))
            return page

        monkeypatch.setattr(paging, "fetch_page", recording_fetch_page)
        ids = extract_ids(client, ["USDT-FUTURES"], NOW_MS)
        log = requests_to(sim, HISTORY)

    assert SpanMemory.of(client).span(ORDERS_HISTORY) == 7 * DAY_MS  # learned from 40705
    # The tie group straddles the boundary between page 1 and page 2 of the newest window.
    newest = [(kw, page) for path, kw, page in pages if path == HISTORY and kw["end_ms"] == NOW_MS]
    assert len(newest) >= 2, "the newest window had a single page: no page boundary to straddle"
    (kw1, page1), (kw2, page2) = newest[:2]
    assert len(page1.orders) == 100 and kw1["cursor"] is None
    assert kw2["cursor"] == page1.end_id == page1.orders[-1]["orderId"]
    assert page1.orders[-1]["cTime"] == page2.orders[0]["cTime"] == str(tie_t)
    on_page = [sum(o["cTime"] == str(tie_t) for o in p.orders) for p in (page1, page2)]
    assert on_page == [10, 10]
    # The server saw exactly that: page 2 was asked for below the last id of page 1, in the same window.
    asked = [r["params"] for r in log if r["status"] == 200 and r["params"].get("endTime") == str(NOW_MS)]
    assert [p.get("idLessThan") for p in asked[:2]] == [None, page1.orders[-1]["orderId"]]
    assert asked[0]["startTime"] == asked[1]["startTime"] == str(NOW_MS - 7 * DAY_MS)
    # The edge orders really sit on the edges of the windows the client walked.
    walked = {(int(r["params"]["startTime"]), int(r["params"]["endTime"])) for r in log if r["status"] == 200}
    assert walked == set(windows)
    # Every order exactly once: no duplicates, nothing missing, nothing extra (nothing older than 90 days).
    assert len(ids) == len(set(ids))
    assert set(ids) == truth


def test_seven_day_span_server_with_the_parallel_scan(tmp_path):
    spec = AccountSpec(name="demo", seed=3, orders=3000, symbols=12, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=None, latency=None, frozen=True, max_span_days=7)) as sim:
        client = client_for(sim)
        store = LocalStorage(tmp_path)
        summary = scan_account(client, store, list(ALL), scan_id="s1", concurrency=4)
        truth = sim.truth("demo")
        product_type = {s.name: s.product_type for s in sim.accounts["demo"].symbols}
        log = requests_to(sim, HISTORY)
    assert any(r["code"] == "40705" for r in log), "the server never refused a long span: not a 7-day test"
    expected: dict[str, set[str]] = {}
    for o in truth:
        expected.setdefault(partition_key(o["symbol"], product_type[o["symbol"]]), set()).add(o["orderId"])
    assert len(expected) == 12 and sum(map(len, expected.values())) == len(truth) == 3000
    # Per symbol, the staged orders are exactly the truth's: none missing, none extra, none twice.
    assert set(summary.manifest["symbols"]) == set(expected)
    for key, want in expected.items():
        rows = read_scan_rows(store, summary.manifest, key)
        got = rows["orderId"].to_list()
        assert len(got) == len(set(got)) == summary.manifest["symbols"][key], key
        assert set(got) == want, key
    assert summary.orders == len(truth)


@pytest.mark.parametrize(
    "faults",
    [
        FaultConfig(error_5xx=0.1),
        FaultConfig(burst_429=0.1),
        FaultConfig(reset=0.1),
        FaultConfig(slow=0.15, slow_seconds=4),
        FaultConfig(truncated=0.1),
        FaultConfig(error_200=0.1),
        FaultConfig(error_5xx=0.05, burst_429=0.03, reset=0.03, slow=0.02, slow_seconds=4, truncated=0.05,
                    error_200=0.05),
    ],
    ids=["5xx", "429-burst", "reset", "slow", "truncated", "200-error", "all"],
)
def test_every_fault_kind_still_yields_exactly_the_truth(faults):
    spec = AccountSpec(name="demo", seed=11, orders=1200, symbols=6, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=None, latency=None, frozen=True, faults=faults, seed=5)) as sim:
        client = client_for(sim, max_attempts=12)
        ids = extract_ids(client, ALL, NOW_MS)
        assert len(ids) == len(set(ids))
        assert set(ids) == truth_ids(sim)
        injected = [r for r in sim.request_log() if r["fault"]]
        assert injected, "the simulator injected no fault: the test proves nothing"
        assert client.stats.retries >= 1


def test_a_burst_of_429s_longer_than_the_attempt_budget_is_waited_out():
    """A 429 only says "later": twelve of them in a row must not use up the 8 attempts meant for broken answers."""
    spec = AccountSpec(name="demo", seed=3, orders=150, symbols=2, now_ms=NOW_MS)
    faults = FaultConfig(burst_429=0.3, burst_len=12)
    with Simulator([spec], SimulatorConfig(rate_limit=None, latency=None, frozen=True, faults=faults, seed=1)) as sim:
        client = client_for(sim, max_backoff_s=0.05)
        ids = extract_ids(client, ALL, NOW_MS)
        log = requests_to(sim)
        assert set(ids) == truth_ids(sim)
    statuses = "".join("x" if r["status"] == 429 else "." for r in log)
    assert "x" * 12 in statuses, "no burst of 12 consecutive 429s happened: the test proves nothing"


def test_retries_are_bounded_for_broken_answers_and_in_time_for_429s():
    spec = AccountSpec(name="demo", seed=3, orders=150, symbols=2, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=None, latency=None, frozen=True,
                                           faults=FaultConfig(error_5xx=1.0))) as sim:
        client = client_for(sim, max_attempts=5, max_backoff_s=0.01)
        with pytest.raises(Exception, match="HTTP 50[23]"):
            list(walk(client, ORDERS_PENDING, "USDT-FUTURES"))
        assert len(requests_to(sim, PENDING)) == 5
    with Simulator([spec], SimulatorConfig(rate_limit=None, latency=None, frozen=True,
                                           faults=FaultConfig(burst_429=1.0))) as sim:
        client = client_for(sim, max_attempts=5, max_backoff_s=0.05, rate_limited_patience_s=1.0)
        began = time.monotonic()
        with pytest.raises(Exception, match="Too Many Requests"):
            list(walk(client, ORDERS_PENDING, "USDT-FUTURES"))
        assert 1.0 <= time.monotonic() - began < 10
        assert len(requests_to(sim, PENDING)) > 5  # 429s did not count against the 5 attempts


@pytest.fixture(scope="module")
def auth_sim():
    with Simulator([one_symbol(5)], SimulatorConfig(rate_limit=None, latency=None, frozen=True)) as sim:
        yield sim


@pytest.mark.parametrize(
    "change, code",
    [
        ({"api_key": "sim-nobody-000000000000"}, "40037"),
        ({"api_secret": "not-the-secret"}, "40009"),
        ({"passphrase": "not-the-passphrase"}, "40012"),
    ],
)
def test_wrong_credentials_fail_fast_with_their_code_and_no_secret(auth_sim, change, code):
    c = auth_sim.credentials("demo") | change
    from bitget_assets.bitget import BitgetClient
    from bitget_assets.ratelimit import ThreadLimiter

    client = BitgetClient(Credentials(c["api_key"], c["api_secret"], c["passphrase"], base_url=auth_sim.base_url),
                          ThreadLimiter(50))
    before = len(requests_to(auth_sim, HISTORY))
    with pytest.raises(BitgetAuthError) as err:
        fetch_page(client, ORDERS_HISTORY, "USDT-FUTURES")
    assert err.value.code == code and f"({code})" in str(err.value)
    assert len(requests_to(auth_sim, HISTORY)) - before == 1  # not retried
    for secret in (c["api_secret"], c["passphrase"]):
        assert secret not in str(err.value) and secret not in repr(client)


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({"symbol": "NOSUCHUSDT"}, "40034"),
        ({"start_ms": NOW_MS - DAY_MS, "end_ms": NOW_MS - 2 * DAY_MS}, "40707"),
        ({"start_ms": NOW_MS - 100 * DAY_MS, "end_ms": NOW_MS}, "40704"),
    ],
)
def test_parameter_errors_are_typed_and_not_retried(auth_sim, kwargs, code):
    client = client_for(auth_sim)
    before = len(requests_to(auth_sim, HISTORY))
    with pytest.raises(BitgetParameterError) as err:
        fetch_page(client, ORDERS_HISTORY, "USDT-FUTURES", **kwargs)
    assert err.value.code == code
    assert len(requests_to(auth_sim, HISTORY)) - before == 1  # not retried


def test_unknown_product_type_is_40034(auth_sim):
    with pytest.raises(BitgetParameterError, match="40034"):
        fetch_page(client_for(auth_sim), ORDERS_HISTORY, "BOGUS-FUTURES")


def test_server_time(auth_sim):
    assert client_for(auth_sim).server_time_ms() == NOW_MS
