import os
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
