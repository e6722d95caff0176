"""Storage faults: S3 down, bucket missing, access denied, an upload cut off mid-way.

Each run must end with a bounded number of attempts, exit non-zero with a message naming the cause, and
leave the previous good output intact and readable. moto's S3 server (tests/conftest.py) sits behind a
small fault proxy (s3proxy.py), both on 127.0.0.1. All runs share one TMPDIR (one machine, one rate budget);
the failing ones each get their own simulator of the same account, so the request log tells them apart.
The previous good output is the reference extraction (conftest) of the same account, copied under each prefix.
This module starts its own moto server (ThreadedMotoServer, as tests/conftest.py does) because its runs are
prepared in a background batch, before any test asks for the session fixture.
"""

import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import boto3
import polars as pl
import pytest

from tests.conftest import free_port
from tests.reliability.batches import batch, on_session_end
from tests.reliability.helpers import (
    SPEC,
    CliResult,
    assert_equals_truth,
    audit,
    order_log,
    run_extract,
    s3_env,
    start_simulator,
)
from tests.reliability.s3proxy import S3FaultProxy

BUCKET = "reliability-history"


@dataclass
class S3World:
    client: object
    proxy: S3FaultProxy
    good: dict[str, bytes]  # every object of the previous good extraction, under good/
    results: dict[str, CliResult]
    audits: dict[str, dict]
    snapshots: dict[str, dict[str, bytes]]  # prefix -> objects before the failing run
    truths: dict[str, list[dict]]


def objects(client, prefix: str) -> dict[str, bytes]:
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/")
            for o in page.get("Contents", [])]
    return {k[len(prefix) + 1:]: client.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}


def copy_prefix(client, source: dict[str, bytes], prefix: str) -> None:
    for key, data in source.items():
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/{key}", Body=data)


@batch(needs=("reference",), after=("bad_credential_runs", "fresh_home"))
def s3world(tmp_path_factory, reference) -> S3World:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    on_session_end(server.stop)
    s3 = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=s3, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    client.create_bucket(Bucket=BUCKET)
    proxy = S3FaultProxy(s3).start()
    on_session_end(proxy.stop)
    work = tmp_path_factory.mktemp("s3")
    tmp = work / "tmp"
    tmp.mkdir()
    sims = {name: start_simulator() for name in ("main", "down", "no_bucket", "denied")}
    try:
        via_proxy = s3_env(proxy.url) | {"TMPDIR": str(tmp)}
        # The previous good output: the reference extraction of the same account, as it would be in S3
        # (the storage layout is the same in a folder and under an S3 prefix).
        for prefix in ("good", "denied", "midup"):
            copy_prefix(client, reference.files, prefix)
        good_objects = objects(client, "good")
        snapshots = {p: objects(client, p) for p in ("good", "denied", "midup")}
        # Read-only credentials on denied/; on midup/ every upload of orders.json is cut off half-way.
        proxy.rule = lambda method, path: (
            "deny" if path.startswith(f"/{BUCKET}/denied/") and method in ("PUT", "POST", "DELETE")
            else "drop" if path.startswith(f"/{BUCKET}/midup/orders.json") and method == "PUT" else None)
        # New orders since the good run, so that a half-published output would show.
        sims["main"].add_orders(SPEC.name, generate=60, open=2)
        dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        jobs = {
            "down": (sims["down"], f"s3://{BUCKET}/good", s3_env(dead)),
            "no_bucket": (sims["no_bucket"], "s3://reliability-no-such-bucket/acct", s3_env(proxy.url)),
            "denied": (sims["denied"], f"s3://{BUCKET}/denied", s3_env(proxy.url)),
            "midup": (sims["main"], f"s3://{BUCKET}/midup", s3_env(proxy.url)),
        }
        marks = {name: len(sim.request_log()) for name, (sim, _, _) in jobs.items()}
        with ThreadPoolExecutor(len(jobs)) as pool:
            futures = {name: pool.submit(run_extract, sim, work / name, out, **env, TMPDIR=str(tmp))
                       for name, (sim, out, env) in jobs.items()}
            results = {name: f.result() for name, f in futures.items()}
        audits = {name: audit(order_log(sim, SPEC.name, marks[name])) for name, (sim, _, _) in jobs.items()}
        after_failure = {p: objects(client, p) for p in ("good", "denied", "midup")}

        proxy.rule = lambda method, path: None  # S3 is healthy again: the next run must recover
        results["recovery"] = run_extract(sims["main"], work / "recovery", f"s3://{BUCKET}/midup", **via_proxy)
        return S3World(client, proxy, good_objects, results, audits, {"before": snapshots, "after": after_failure},
                       {"recovery": sims["main"].truth(SPEC.name)})
    finally:
        for sim in sims.values():
            sim.stop()


def assert_clear_failure(result: CliResult, *causes: str) -> None:
    assert result.rc not in (0, None), "the run should have failed"
    line = result.failure_line
    assert any(c in line for c in causes), f"the failure does not name the cause ({causes}): {line}"
    assert "Traceback" not in result.stderr.split("extraction failed")[-1]


def assert_intact(world: S3World, prefix: str) -> None:
    before, after = world.snapshots["before"][prefix], world.snapshots["after"][prefix]
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert after == before, f"{prefix}/: changed by a failed run: {changed}"
    doc = json.loads(after["orders.json"])
    parquet = pl.read_parquet(io.BytesIO(after["orders.parquet"]))
    assert doc["count"] == len(doc["orders"]) == parquet.height


@pytest.mark.slow
def test_s3_down_fails_before_any_request_and_leaves_the_output_alone(s3world):
    result = s3world.results["down"]
    print(f"\n[storage] down: {result.failure_line} | order requests {s3world.audits['down']['requests']}")
    assert_clear_failure(result, "Could not connect to the endpoint URL")
    assert s3world.audits["down"]["requests"] == 0, "API budget spent before finding out S3 is unreachable"
    assert_intact(s3world, "good")


@pytest.mark.slow
def test_missing_bucket_fails_before_any_request(s3world):
    result = s3world.results["no_bucket"]
    print(f"\n[storage] no bucket: {result.failure_line}")
    assert_clear_failure(result, "NoSuchBucket")
    assert s3world.audits["no_bucket"]["requests"] == 0
    assert_intact(s3world, "good")


@pytest.mark.slow
def test_access_denied_is_not_retried_and_leaves_the_output_alone(s3world):
    result = s3world.results["denied"]
    puts = s3world.proxy.count("PUT", action="deny")
    print(f"\n[storage] access denied: {result.failure_line} | denied PUT attempts {puts} | "
          f"order requests spent first {s3world.audits['denied']['requests']}")
    assert_clear_failure(result, "AccessDenied")
    assert 1 <= puts <= 2, f"{puts} attempts at a write S3 refused (403 is not transient)"
    assert_intact(s3world, "denied")


@pytest.mark.slow
def test_upload_cut_off_midway_is_retried_a_bounded_number_of_times(s3world):
    result = s3world.results["midup"]
    attempts = s3world.proxy.count("PUT", action="drop")  # only uploads of midup/orders.json are dropped
    print(f"\n[storage] mid-upload: {result.failure_line} | orders.json PUT attempts {attempts}")
    assert_clear_failure(result, "Connection was closed", "Connection reset", "ConnectionClosedError")
    assert 2 <= attempts <= 10, f"{attempts} attempts to upload orders.json"


@pytest.mark.slow
def test_upload_cut_off_midway_leaves_the_previous_output_intact(s3world):
    """orders.parquet and orders.json are one output: a run that could not publish both must not leave the
    new orders.parquet next to the old orders.json (readers of the two files would disagree)."""
    before, after = s3world.snapshots["before"]["midup"], s3world.snapshots["after"]["midup"]
    assert after["orders.json"] == before["orders.json"], "orders.json changed although its upload failed"
    old = json.loads(before["orders.json"])["count"]
    new = pl.read_parquet(io.BytesIO(after["orders.parquet"])).height
    assert after["orders.parquet"] == before["orders.parquet"], (
        f"the failed run replaced orders.parquet ({new} orders) while orders.json still has the previous "
        f"{old}: the published pair disagrees")


@pytest.mark.slow
def test_the_next_run_after_a_storage_failure_recovers_exactly(s3world):
    result = s3world.results["recovery"]
    assert result.rc == 0, result.stderr[-4000:]
    after = objects(s3world.client, "midup")
    doc = json.loads(after["orders.json"])
    assert_equals_truth(doc["orders"], s3world.truths["recovery"], "after recovery")
    assert pl.read_parquet(io.BytesIO(after["orders.parquet"])).to_dicts() == doc["orders"]
