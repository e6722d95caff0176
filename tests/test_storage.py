import os
import shutil
import subprocess
import sys
import time

import pytest

from bitget_assets.storage import LocalStorage, S3Storage, parse_location


def test_local_write_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    store = LocalStorage(tmp_path)
    store.write("a/orders.json", b"old")

    def broken_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        store.write("a/orders.json", b"new")
    monkeypatch.undo()
    assert store.read("a/orders.json") == b"old"
    assert store.list("") == ["a/orders.json"]
    assert not [p for p in (tmp_path / "a").iterdir() if p.name != "orders.json"]


def test_local_keys_cannot_escape_the_root(tmp_path):
    with pytest.raises(ValueError, match="escapes"):
        LocalStorage(tmp_path).write("../x", b"")


def test_s3_round_trip_bytes(s3_env):
    store = S3Storage(s3_env["client"], s3_env["bucket"], "hist/acct")
    uri = store.write("orders.json", b"[1]")
    assert uri == f"s3://{s3_env['bucket']}/hist/acct/orders.json"
    raw = s3_env["client"].get_object(Bucket=s3_env["bucket"], Key="hist/acct/orders.json")["Body"].read()
    assert raw == b"[1]" and store.read("orders.json") == b"[1]"
    assert store.read("missing") is None
    assert store.list("") == ["orders.json"]
    written = store.modified_times("")
    assert list(written) == ["orders.json"] and abs(written["orders.json"] - time.time()) < 600


def test_local_modified_times_are_the_files_mtimes(tmp_path):
    store = LocalStorage(tmp_path)
    store.write("scan/a/x.parquet", b"1")
    store.write("scan/b/y.parquet", b"2")
    os.utime(tmp_path / "scan/a/x.parquet", (1_000_000, 1_000_000))
    assert store.modified_times("scan") == {"scan/a/x.parquet": 1_000_000.0,
                                            "scan/b/y.parquet": (tmp_path / "scan/b/y.parquet").stat().st_mtime}
    assert store.modified_times("nothing-here") == {}


@pytest.mark.parametrize("bad", ["s3://", "s3://a", "http://x/y", "", "s3://bad_bucket!/x"])
def test_malformed_locations_are_refused(bad):
    with pytest.raises(ValueError):
        parse_location(bad)


def test_locations_parse():
    assert parse_location("s3://my-bucket/some/prefix/") == ("s3", "my-bucket", "some/prefix")
    assert parse_location("out/dir") == ("local", "out/dir", "")


def test_local_publish_replaces_every_file_and_leaves_no_staging_behind(tmp_path):
    store = LocalStorage(tmp_path)
    store.write("orders.json", b"old json")
    store.write("orders.parquet", b"old parquet")
    with store.staging_dir() as staging:
        assert staging.parent == tmp_path and staging.name.startswith(".")
        (staging / "a").write_bytes(b"new json")
        (staging / "b").write_bytes(b"new parquet")
        assert store.list("") == ["orders.json", "orders.parquet"]  # staging is invisible to readers
        uris = store.publish({"orders.json": staging / "a", "orders.parquet": staging / "b"})
    assert uris == {"orders.json": str(tmp_path / "orders.json"), "orders.parquet": str(tmp_path / "orders.parquet")}
    assert (store.read("orders.json"), store.read("orders.parquet")) == (b"new json", b"new parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".publish.lock", "orders.json", "orders.parquet"]


def test_local_staging_of_a_killed_writer_is_swept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = tmp_path / f".staging-{dead.pid}-abc"
    orphan.mkdir()
    (orphan / "orders.json").write_bytes(b"half")
    with LocalStorage(tmp_path).staging_dir():
        assert not orphan.exists()


def test_s3_publish_uploads_everything_before_replacing_anything(s3_env, tmp_path):
    store = S3Storage(s3_env["client"], s3_env["bucket"], "pub")
    store.write("orders.json", b"old json")
    store.write("orders.parquet", b"old parquet")
    (tmp_path / "j").write_bytes(b"new json")
    (tmp_path / "p").write_bytes(b"new parquet")
    calls = []
    real_upload = store.client.upload_file

    def upload_then_fail_on_the_second(filename, bucket, key, *args, **kwargs):
        calls.append(key)
        if len(calls) == 2:
            raise ConnectionError("connection reset mid-upload")
        return real_upload(filename, bucket, key, *args, **kwargs)

    store.client.upload_file = upload_then_fail_on_the_second
    try:
        with pytest.raises(ConnectionError):
            store.publish({"orders.parquet": tmp_path / "p", "orders.json": tmp_path / "j"})
    finally:
        store.client.upload_file = real_upload
    assert (store.read("orders.json"), store.read("orders.parquet")) == (b"old json", b"old parquet")
    assert store.list("") == ["orders.json", "orders.parquet"]  # the pending upload was removed
    uris = store.publish({"orders.parquet": tmp_path / "p", "orders.json": tmp_path / "j"})
    assert uris["orders.json"] == f"s3://{s3_env['bucket']}/pub/orders.json"
    assert (store.read("orders.json"), store.read("orders.parquet")) == (b"new json", b"new parquet")
    assert store.list("") == ["orders.json", "orders.parquet"]


def test_a_writer_dying_between_the_two_renames_leaves_the_pair_for_the_next_run_to_finish(tmp_path, monkeypatch):
    """sorted_orders publishes two files with two renames. A writer that dies between them (kill -9, OOM, power)
    has already committed the new pair: the next run finishes the renames before anything else, so the two files
    agree again, both new. A writer that dies before committing leaves the previous pair as it was."""
    import json

    import polars as pl

    from bitget_assets import extraction
    from bitget_assets import history_store as hs
    from bitget_assets.orders import orders_frame

    store, key = LocalStorage(tmp_path), "BTCUSDT:USDT-FUTURES"

    def orders(n):
        return orders_frame([{"orderId": str(i), "cTime": str(1000 + i), "uTime": str(1000 + i), "symbol": "BTCUSDT"}
                             for i in range(1, n + 1)], "USDT-FUTURES", "history")

    def pair():
        json_ids = [o["orderId"] for o in json.loads(store.read("orders.json"))["orders"]]
        return json_ids, pl.read_parquet(tmp_path / "orders.parquet")["orderId"].to_list()

    hs.write_partition(store, key, orders(3), {})
    extraction.build_sorted_orders(store, [key], elapsed_seconds=1.0)
    hs.write_partition(store, key, orders(4), {})  # one new order since
    real_replace, renames = os.replace, []

    def die_after_the_first_rename(src, dst):
        if renames and ".staging-" in str(src):
            raise KeyboardInterrupt("the writer died here")
        renames.append(dst)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", die_after_the_first_rename)
    monkeypatch.setattr(shutil, "rmtree", lambda *a, **k: None)  # a killed writer cleans nothing up either
    with pytest.raises(KeyboardInterrupt):
        extraction.build_sorted_orders(store, [key], elapsed_seconds=1.0)
    monkeypatch.undo()
    json_ids, parquet_ids = pair()
    assert (json_ids, parquet_ids) == (["1", "2", "3"], ["1", "2", "3", "4"])  # the instant between the renames
    LocalStorage(tmp_path).recover()  # what the next run does first
    assert pair() == (["1", "2", "3", "4"], ["1", "2", "3", "4"])
    assert not list(tmp_path.glob(".staging-*"))

    # Dying before the commit point (while writing orders.json) leaves the previous pair untouched.
    hs.write_partition(store, key, orders(5), {})
    from bitget_assets import orders as table

    monkeypatch.setattr(table, "write_json_document", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    monkeypatch.setattr(shutil, "rmtree", lambda *a, **k: None)
    with pytest.raises(KeyboardInterrupt):
        extraction.build_sorted_orders(store, [key], elapsed_seconds=1.0)
    monkeypatch.undo()
    assert list(tmp_path.glob(".staging-*")), "the dead writer's staging folder is left behind"
    LocalStorage(tmp_path).recover()
    assert pair() == (["1", "2", "3", "4"], ["1", "2", "3", "4"])


def test_every_dataset_is_published_together_on_s3_or_not_at_all(s3_env, tmp_path):
    """Nine files (three datasets x JSON/Parquet/CSV) go up beside their keys first; a failure on the last
    upload leaves every previous output as it was, and a retry replaces all of them."""
    import json

    from bitget_assets import extraction
    from bitget_assets.datasets import dataset

    store, key, pt = S3Storage(s3_env["client"], s3_env["bucket"], "acct"), "BTCUSDT:USDT-FUTURES", "USDT-FUTURES"
    rows = {"orders": [{"orderId": "1", "cTime": "10", "uTime": "10", "symbol": "BTCUSDT"}],
            "plan_orders": [{"orderId": "2", "cTime": "11", "uTime": "", "symbol": "BTCUSDT", "planStatus": "live"}],
            "fills": [{"tradeId": "3", "orderId": "1", "cTime": "12", "symbol": "BTCUSDT"}]}
    datasets = tuple(rows)
    for ds in datasets:
        extraction.update_partition(store, key, dataset(ds).frame(rows[ds], pt, "pending"), read_at_ms=1,
                                    scan_id=None, dataset=ds)
    first = extraction.build_sorted_outputs(store, [key], datasets, elapsed_seconds=1.0)
    names = {f"{ds}.{ext}" for ds in datasets for ext in ("json", "parquet", "csv")}
    assert {k for k in store.list("") if "/" not in k} == names
    assert {ds: s.count for ds, s in first.items()} == {"orders": 1, "plan_orders": 1, "fills": 1}
    assert first["fills"].csv_uri == f"s3://{s3_env['bucket']}/acct/fills.csv"
    before = {name: store.read(name) for name in names}

    rows["fills"].append({"tradeId": "4", "orderId": "1", "cTime": "13", "symbol": "BTCUSDT"})
    extraction.update_partition(store, key, dataset("fills").frame(rows["fills"], pt, "history"), read_at_ms=2,
                                scan_id=None, dataset="fills")
    real_upload, uploads = store.client.upload_file, []

    def failing_last_upload(source, bucket, key_):
        uploads.append(key_)
        if len(uploads) == len(names):
            raise ConnectionError("upload cut off")
        return real_upload(source, bucket, key_)

    store.client.upload_file = failing_last_upload
    try:
        with pytest.raises(ConnectionError):
            extraction.build_sorted_outputs(store, [key], datasets, elapsed_seconds=1.0)
    finally:
        store.client.upload_file = real_upload
    assert {name: store.read(name) for name in names} == before
    assert {k for k in store.list("") if "/" not in k} == names  # no pending upload left behind
    extraction.build_sorted_outputs(store, [key], datasets, elapsed_seconds=1.0)
    assert [f["tradeId"] for f in json.loads(store.read("fills.json"))["fills"]] == ["3", "4"]
    assert store.read("fills.csv").decode().splitlines()[0].startswith("tradeId,orderId,cTime,cTime_iso")
