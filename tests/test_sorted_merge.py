"""The bucketed merge (bitget_assets.sorted_merge) writes exactly what the in-memory merge writes, byte for byte,
while holding no more than a bucket of rows at once."""

import random

import polars as pl
import pytest

from bitget_assets import history_store as hs
from bitget_assets import orders as table
from bitget_assets import sorted_merge
from bitget_assets.datasets import dataset, write_outputs
from bitget_assets.imports import PROVENANCE_COL, merge_sources
from bitget_assets.imports.parse import EXPORT_SOURCE
from bitget_assets.partitions import partition_key
from bitget_assets.sorted_checks import output_checks
from bitget_assets.storage import LocalStorage

GENERATED = "2026-12-02T00:00:00+00:00"


def _partitions(store, seed: int = 7) -> list[str]:
    """Many partitions whose times interleave: shared milliseconds across symbols (and bucket edges), a column
    only some symbols have, one partition without uTime, an empty one, an id held twice (in one partition and
    across two, with different times), and one file of an old release that is not in cTime order."""
    rng = random.Random(seed)
    keys, next_id = [], 10_000
    for i in range(14):
        symbol, pt = f"S{i}USDT", "USDT-FUTURES" if i % 3 else "COIN-FUTURES"
        rows = []
        for _ in range(rng.randint(0, 40) if i != 5 else 0):
            next_id += rng.randint(1, 3)
            ctime = 1_700_000_000_000 + rng.randint(0, 60) * 1000  # few distinct times: many ties
            row = {"orderId": str(next_id if rng.random() > 0.1 else next_id * 1000), "cTime": str(ctime),
                   "symbol": symbol, "status": rng.choice(["filled", "canceled", "live"]),
                   "size": str(rng.randint(1, 9)), "side": "buy", "tradeSide": "open", "posSide": "long"}
            if i != 3:
                row["uTime"] = str(ctime + rng.randint(0, 5000))
            if i % 4 == 0:
                row["presetStopLossPrice"] = "1.5"
            rows.append(row)
        key = partition_key(symbol, pt)
        keys.append(key)
        df = dataset("orders").merge([table.orders_frame(rows, pt, rng.choice(["history", "pending"]))]) \
            if rows else None
        if df is not None:
            hs.write_partition(store, key, df, {})
    # An id twice: a stale copy in another partition with another time (it loses: older uTime), and twice within
    # one partition written by hand (a file this release would never write; also not in cTime order).
    first = hs.read_partition(store, keys[1])
    stale = first.head(1).with_columns(pl.lit("1600000000000").alias("cTime"), pl.lit("1600000000001").alias("uTime"),
                                       pl.lit("S2USDT").alias("symbol"))
    hs.write_partition(store, keys[2], dataset("orders").merge([hs.read_partition(store, keys[2]), stale]), {})
    messy = hs.read_partition(store, keys[4])
    messy = pl.concat([messy.reverse(), messy.head(2)])
    store.write(hs.partition_base(keys[4]) + ".parquet", hs.parquet_bytes(messy))
    keys.append(partition_key("NEVERUSDT", "USDT-FUTURES"))  # registered, no file yet
    return keys


def _imported(store, keys) -> pl.DataFrame:
    """Exports: some orders the API has too (the API's row wins), some it has not (one of them twice), at
    times before, between and after the API's."""
    api = pl.concat([hs.read_partition(store, k) for k in keys[:3]], how="diagonal_relaxed")
    rows = [{"orderId": oid, "cTime": ct, "symbol": "S1USDT", "size": "1", "side": "buy", "tradeSide": "open",
             "posSide": "long", "status": "filled", table.PRODUCT_TYPE_COL: "USDT-FUTURES",
             table.SOURCE_COL: EXPORT_SOURCE, PROVENANCE_COL: "export:a.csv"}
            for oid, ct in [*zip(api["orderId"].head(3), api["cTime"].head(3), strict=True),
                            ("1", "1500000000000"), ("2", "1700000030000"), ("2", "1700000031000"),
                            ("3", "1900000000000")]]
    return pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String)).with_columns(pl.lit("x").alias("priceAvg"))


def _in_memory(store, keys, folder, imported=None):
    """The merge as it was: every partition in memory, merged, imports merged, written (the reference)."""
    d = dataset("orders")
    df = d.merge([hs.read_partition(store, k) for k in keys])
    partition_rows = sum(hs.read_partition(store, k).height for k in keys)
    d.validate(df)
    api_rows = df.height
    if imported is not None:
        df = merge_sources(df, imported)
    folder.mkdir()
    files = write_outputs(d, df, folder, generated_at=GENERATED, elapsed_seconds=1.25)
    ctimes = df["cTime"].cast(pl.Int64)
    return files, dict(count=df.height, symbols=df["symbol"].n_unique(), first_ctime=ctimes.min(),
                       last_ctime=ctimes.max(), partition_rows=partition_rows,
                       imported_rows=df.height - api_rows if imported is not None else 0)


@pytest.mark.parametrize("bucket_rows", [2, 17, 100_000])
@pytest.mark.parametrize("with_imports", [False, True])
def test_bucketed_outputs_equal_the_in_memory_merge_byte_for_byte(tmp_path, bucket_rows, with_imports):
    store = LocalStorage(tmp_path / "store")
    keys = _partitions(store)
    imported = _imported(store, keys) if with_imports else None
    expected, figures = _in_memory(store, keys, tmp_path / "reference", imported)
    (tmp_path / "bucketed").mkdir()
    files, s = sorted_merge.write_sorted(store, dataset("orders"), keys, tmp_path / "bucketed",
                                         generated_at=GENERATED, elapsed_seconds=1.25, imported=imported,
                                         bucket_rows=bucket_rows)
    assert set(files) == set(expected) == {"orders.json", "orders.parquet", "orders.csv"}
    for name in ("orders.json", "orders.csv"):
        assert files[name].read_bytes() == expected[name].read_bytes(), name
    got, want = pl.read_parquet(files["orders.parquet"]), pl.read_parquet(expected["orders.parquet"])
    assert got.schema == want.schema
    assert got.equals(want)
    assert pl.read_parquet_metadata(files["orders.parquet"]) == pl.read_parquet_metadata(expected["orders.parquet"])
    assert {k: getattr(s, k) for k in figures} == figures
    assert figures["partition_rows"] > figures["count"] - figures["imported_rows"]  # the duplicates were dropped
    if with_imports:
        assert figures["imported_rows"] == 3 and "priceAvg" in got.columns
    if bucket_rows == 2:
        assert s.buckets > 30 and s.largest_bucket < 20  # about one bucket per distinct millisecond


def test_no_more_than_a_bucket_of_rows_is_held_at_once(tmp_path, monkeypatch):
    """Every row the merge sorts passes through `orders.merge_order`, bucket by bucket: none holds more than
    `bucket_rows` rows (distinct times) however many partitions and rows there are."""
    store, keys, next_id = LocalStorage(tmp_path), [], 1
    for i in range(20):
        rows = [{"orderId": str(next_id + j), "cTime": str(1_000_000 + (j * 20 + i) * 7), "symbol": f"S{i}USDT",
                 "uTime": "1"} for j in range(30)]
        next_id += 30
        keys.append(partition_key(f"S{i}USDT", "USDT-FUTURES"))
        hs.write_partition(store, keys[-1], dataset("orders").merge([table.orders_frame(rows, "USDT-FUTURES", "h")]),
                           {})
    held, real = [], table.merge_order
    monkeypatch.setattr(table, "merge_order", lambda df, **kw: held.append(df.height) or real(df, **kw))
    (tmp_path / "out").mkdir()
    files, s = sorted_merge.write_sorted(store, dataset("orders"), keys, tmp_path / "out", generated_at=GENERATED,
                                         elapsed_seconds=0, bucket_rows=50)
    assert sum(held) == s.count == 600
    assert max(held) == s.largest_bucket == 50 and s.buckets == 12
    ids = pl.read_parquet(files["orders.parquet"])["orderId"].cast(pl.Int64)
    assert ids.is_sorted() is False and ids.len() == 600  # interleaved symbols, in time order
    assert pl.read_parquet(files["orders.parquet"])["cTime"].cast(pl.Int64).is_sorted()


def test_rows_of_one_millisecond_stay_in_one_bucket(tmp_path):
    store = LocalStorage(tmp_path)
    keys = []
    for i in range(4):
        rows = [{"orderId": str(10 * i + j), "cTime": "5000" if j < 3 else str(6000 + j), "symbol": f"S{i}USDT",
                 "uTime": "1"} for j in range(5)]
        keys.append(partition_key(f"S{i}USDT", "USDT-FUTURES"))
        hs.write_partition(store, keys[-1], dataset("orders").merge([table.orders_frame(rows, "USDT-FUTURES", "h")]),
                           {})
    (tmp_path / "out").mkdir()
    files, s = sorted_merge.write_sorted(store, dataset("orders"), keys, tmp_path / "out", generated_at=GENERATED,
                                         elapsed_seconds=0, bucket_rows=2)
    assert s.largest_bucket == 12  # the 12 rows of millisecond 5000, whatever the bucket size
    out = pl.read_parquet(files["orders.parquet"])
    assert out.head(12)["orderId"].to_list() == ["0", "1", "2", "10", "11", "12", "20", "21", "22", "30", "31", "32"]


def test_no_partitions_write_empty_outputs_like_before(tmp_path):
    store = LocalStorage(tmp_path / "s")
    keys = [partition_key("BTCUSDT", "USDT-FUTURES")]
    expected, _ = _in_memory(store, keys, tmp_path / "reference")
    (tmp_path / "out").mkdir()
    files, s = sorted_merge.write_sorted(store, dataset("orders"), keys, tmp_path / "out", generated_at=GENERATED,
                                         elapsed_seconds=1.25)
    assert (s.count, s.symbols, s.first_ctime, s.partition_rows) == (0, 0, None, 0)
    for name in ("orders.json", "orders.csv"):
        assert files[name].read_bytes() == expected[name].read_bytes()
    assert pl.read_parquet(files["orders.parquet"]).schema == pl.read_parquet(expected["orders.parquet"]).schema


@pytest.mark.parametrize("swap_at", [0, 4, 5, 9])
def test_the_order_check_reads_slices_and_sees_a_swap_at_any_edge(swap_at):
    ids = [str(i) for i in range(8, 20)]
    df = pl.DataFrame({"orderId": ids, "cTime": ["100"] * 4 + [str(200 + i) for i in range(8)], "symbol": "X"})
    assert sorted_merge.id_figures(df.lazy(), "orderId", slice_rows=5) == (12, True, True)
    swapped = pl.concat([df.slice(0, swap_at), df.slice(swap_at + 1, 1), df.slice(swap_at, 1), df.slice(swap_at + 2)])
    assert sorted_merge.id_figures(swapped, "orderId", slice_rows=5) == (12, True, False)
    twice = pl.concat([df.slice(0, swap_at + 1), df.slice(swap_at, 1), df.slice(swap_at + 1)])
    rows, unique, _ = sorted_merge.id_figures(twice, "orderId", slice_rows=5)
    assert (rows, unique) == (13, False)
    results = {r.check_name: r.passed for r in output_checks(twice.lazy(), 13)}
    assert results == {"unique_order_ids": False, "sorted_by_ctime_then_order_id": True,
                       "count_equals_sum_of_partitions": True}
