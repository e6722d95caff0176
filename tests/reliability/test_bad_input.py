"""Bad input: wrong credentials, a stale clock, bad partition keys and product types, changed API objects.

Wrong credentials and a stale clock must fail fast, naming the cause and Bitget's code, with at most two
requests to the order endpoints (tests/test_cli.py checks the wrong secret on orders-history only; these
count both order endpoints, for every credential and the clock). Bad partition keys, product types and
output locations must be refused before any request. An order object with fields the client does not know
keeps them; one without orderId, cTime or symbol stops the run before anything is registered or published.

The Dagster-path tests run the real assets in-process with `dg.materialize` against a simulator.
"""

import json
import os
import time
from collections import Counter

import dagster as dg
import pytest

from bitget_assets.jobs import partition_range_tags
from bitget_assets.resources import BitgetResource, ProgressResource, RateLimiterResource, StorageResource
from tests.dagster_assets import order_scan, sorted_orders, symbol_orders
from tests.reliability.helpers import (
    NOW_MS,
    SPEC,
    assert_equals_truth,
    base_env,
    edit_served_order,
    read_output,
    start_cli,
    start_extract,
    start_simulator,
)

ORDER_PATHS = ("/api/v2/mix/order/orders-history", "/api/v2/mix/order/orders-pending")

CAUSES = {
    "wrong_key": ("40037", "API key does not exist"),
    "wrong_secret": ("40009", "signature"),
    "wrong_passphrase": ("40012", "passphrase"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CAUSES))
def test_bad_credentials_fail_fast_naming_the_cause(bad_credential_runs, case):
    run = bad_credential_runs[case]
    order_requests = [e for e in run.log if e["endpoint"] in ORDER_PATHS]
    print(f"\n[bad input] {case}: {run.result.failure_line} | order requests "
          f"{[(e['endpoint'].rsplit('/', 1)[1], e['code']) for e in order_requests]}")
    code, words = CAUSES[case]
    assert run.result.rc == 1, run.result.stderr[-3000:]
    assert code in run.result.failure_line and words in run.result.failure_line, run.result.failure_line
    repeated = [k for k, n in Counter((e["endpoint"], json.dumps(e["params"], sort_keys=True))
                                      for e in order_requests).items() if n > 1]
    assert not repeated, f"a request refused for {code} was retried: {repeated}"
    assert len(order_requests) <= 2, (
        f"{len(order_requests)} requests to the order endpoints before giving up on {code} (at most 2)")


@pytest.mark.slow
def test_a_machine_clock_far_from_the_exchanges_still_extracts_everything(tmp_path):
    """Bitget refuses a timestamp more than 30 s from its own clock (40008). The simulator here checks against its
    data clock only, 72 days from this machine's: the client measures the offset from /public/time and signs with
    the exchange's time, so the run succeeds with no request refused."""
    sim = start_simulator(latency=None, accept_wall_clock=False)
    try:
        result = start_extract(sim, tmp_path, tmp_path / "out", TMPDIR=str(tmp_path)).wait()
        log, truth = sim.request_log(), sim.truth(SPEC.name)
    finally:
        sim.stop()
    assert abs(NOW_MS - time.time() * 1000) > 86_400_000, "the test needs a clock far from this machine's"
    assert result.rc == 0, result.stderr[-3000:]
    assert_equals_truth(read_output(tmp_path / "out").orders, truth)
    assert not [e for e in log if e["code"] == "40008"]


@pytest.mark.slow
def test_an_order_without_ctime_stops_the_cli_before_anything_is_published(bad_credential_runs):
    run = bad_credential_runs["order_without_ctime"]
    assert run.result.rc == 1, run.result.stderr[-3000:]
    assert "cTime" in run.result.failure_line, run.result.failure_line
    out = run.work / "out"
    assert not (out / "orders.json").exists() and not (out / "scan" / "manifest.json").exists()


@pytest.mark.parametrize(
    "env, message",
    [
        ({"BITGET_PRODUCT_TYPES": "USDT-FUTURES,BOGUS-FUTURES"}, "unknown product type"),
        ({"BITGET_PRODUCT_TYPES": "usdt-futures"}, "unknown product type"),
        ({"BITGET_OUTPUT": "ftp://host/dir"}, "not a valid output location"),
        ({"BITGET_OUTPUT": "s3://"}, "not a valid S3 location"),
    ],
)
def test_bad_settings_from_the_environment_are_refused_before_anything_starts(tmp_path, env, message):
    run = start_cli(base_env(DAGSTER_HOME=str(tmp_path / "home"), BITGET_API_KEY="k", BITGET_API_SECRET="s",
                             BITGET_API_PASSPHRASE="p", BITGET_BASE_URL="http://127.0.0.1:9", **env),
                    tmp_path, "extract", "--quiet")
    result = run.wait(60)
    assert result.rc == 2 and message in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "home").exists()


# -- the Dagster path, in-process ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim():
    sim = start_simulator(latency=None)
    try:
        yield sim
    finally:
        sim.stop()


def resources(sim, out, **bitget) -> dict:
    c = sim.credentials(SPEC.name)
    return {
        "bitget": BitgetResource(api_key=c["api_key"], api_secret=c["api_secret"], api_passphrase=c["passphrase"],
                                 base_url=sim.base_url, **bitget),
        "rate_limiter": RateLimiterResource(backend="memory"),
        "progress": ProgressResource(),
        "storage": StorageResource(location=str(out)),
    }


def failure_messages(result) -> list[str]:
    out = []
    for event in result.all_events:
        if event.is_step_failure:
            err = event.step_failure_data.error
            while err.cause is not None:
                err = err.cause
            out.append(err.message.strip())
    return out


def extract_in_process(sim, out, instance, **bitget):
    """order_scan, register what it found, then symbol_orders + sorted_orders over every partition."""
    res = resources(sim, out, **bitget)
    scan = dg.materialize([order_scan], resources=res, instance=instance, raise_on_error=False)
    if not scan.success:
        return scan
    keys = list(json.loads((out / "scan" / "manifest.json").read_text())["symbols"])
    instance.add_dynamic_partitions("symbols", keys)
    return dg.materialize([order_scan, symbol_orders, sorted_orders], selection=[symbol_orders, sorted_orders],
                          resources=res, instance=instance, tags=partition_range_tags(keys), raise_on_error=False)


def requests_since(sim, start: int) -> list[dict]:
    return sim.request_log()[start:]


def test_unknown_partition_key_is_refused_before_any_request(sim, tmp_path):
    start = len(sim.request_log())
    with dg.instance_for_test() as instance, pytest.raises(dg.DagsterUnknownPartitionError):
        dg.materialize([order_scan, symbol_orders, sorted_orders], selection=[symbol_orders, sorted_orders],
                       partition_key="NOSUCHUSDT:USDT-FUTURES", resources=resources(sim, tmp_path), instance=instance)
    assert requests_since(sim, start) == []


@pytest.mark.parametrize(
    "key, message",
    [
        ("btcusdt-usdt", "malformed partition key 'btcusdt-usdt'"),
        ("BTCUSDT:SPOT-FUTURES", "product type SPOT-FUTURES is not configured"),
        ("../../etc:USDT-FUTURES", "malformed partition key"),
    ],
)
def test_a_registered_but_bad_partition_key_fails_clearly_before_any_request(sim, tmp_path, key, message):
    start = len(sim.request_log())
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", [key])
        result = dg.materialize([order_scan, symbol_orders, sorted_orders], selection=[symbol_orders, sorted_orders],
                                partition_key=key, resources=resources(sim, tmp_path), instance=instance,
                                raise_on_error=False)
    assert not result.success
    assert any(message in m for m in failure_messages(result)), failure_messages(result)
    assert requests_since(sim, start) == []
    assert not (tmp_path / "partitions").exists() and not (tmp_path / "orders.json").exists()


def test_an_unknown_product_type_is_refused_before_any_request(sim, tmp_path):
    """The CLI checks --product-types / BITGET_PRODUCT_TYPES, but the resource the Dagster UI, the schedule
    and `dagster job execute` use takes any list and the scan then asks Bitget about it."""
    start = len(sim.request_log())
    with dg.instance_for_test() as instance:
        try:
            res = resources(sim, tmp_path, product_types=["USDT-FUTURES", "BOGUS-FUTURES"])
            result = dg.materialize([order_scan], resources=res, instance=instance, raise_on_error=False)
            messages = failure_messages(result) if not result.success else ["(the scan succeeded)"]
        except (dg.DagsterInvalidConfigError, ValueError) as exc:  # refused while building the resource: fine
            messages = [str(exc)]
    sent = [e["endpoint"] for e in requests_since(sim, start)]
    assert not sent, f"requests sent before refusing the unknown product type: {sent}; error: {messages}"
    assert any("BOGUS-FUTURES" in m for m in messages), messages


def test_an_order_with_new_or_changed_fields_is_kept(tmp_path):
    sim = start_simulator(latency=None)
    try:
        truth = sim.truth(SPEC.name)
        changed = truth[len(truth) // 2]["orderId"]
        new = {"newField": "added-by-bitget", "nested": {"tp": "1.5", "sl": None}, "leverage": 20,
               "presetStopLossPrice": None}
        edit_served_order(sim, SPEC.name, changed, lambda o: o.update(new))
        with dg.instance_for_test() as instance:
            result = extract_in_process(sim, tmp_path, instance)
    finally:
        sim.stop()
    assert result.success, failure_messages(result)
    orders = json.loads((tmp_path / "orders.json").read_bytes())["orders"]
    got = {o["orderId"]: o for o in orders}
    assert set(got) == {o["orderId"] for o in truth} and len(orders) == len(truth)
    kept = got[changed]
    assert kept["newField"] == "added-by-bitget"
    assert json.loads(kept["nested"]) == new["nested"]  # kept as text (docs/api-notes.md)
    assert kept["leverage"] == "20" and kept["presetStopLossPrice"] is None
    # Every other order is exactly what the API said (the new columns are null where absent).
    for o in truth:
        if o["orderId"] != changed:
            assert {k: v for k, v in got[o["orderId"]].items() if k in o} == o


@pytest.mark.parametrize("field", ["orderId", "cTime", "symbol"])
def test_an_order_without_a_required_field_stops_the_scan_before_anything_is_registered(tmp_path, field):
    sim = start_simulator(latency=None)
    try:
        truth = sim.truth(SPEC.name)
        target = truth[-1]["orderId"]  # the newest order: on the first page of its product type
        edit_served_order(sim, SPEC.name, target, lambda o: o.pop(field))
        with dg.instance_for_test() as instance:
            scan = dg.materialize([order_scan], resources=resources(sim, tmp_path), instance=instance,
                                  raise_on_error=False)
            messages = failure_messages(scan) if not scan.success else []
            staged = json.loads((tmp_path / "scan" / "manifest.json").read_text())["symbols"] if scan.success else {}
    finally:
        sim.stop()
    assert not scan.success, f"an order without {field} was accepted; partitions staged: {list(staged)}"
    assert any(field in m for m in messages), messages


def test_a_folder_output_that_is_a_file_fails_before_any_request(sim, tmp_path):
    target = tmp_path / "not-a-folder"
    target.write_text("x")
    start = len(sim.request_log())
    with dg.instance_for_test() as instance:
        result = dg.materialize([order_scan], resources=resources(sim, target), instance=instance,
                                raise_on_error=False)
    assert not result.success
    assert any("Not a directory" in m for m in failure_messages(result)), failure_messages(result)
    assert not [e for e in requests_since(sim, start) if e["endpoint"] in ORDER_PATHS]
    assert os.path.isfile(target)
