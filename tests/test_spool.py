"""The account scan's spool (issue 14): pages go to local disk as they arrive, so a scan of any size holds a
bounded number of rows, and what it stages is exactly what the whole scan held in memory before."""

import threading

import polars as pl
import pytest

from bitget_assets import extraction, scan
from bitget_assets import history_store as hs
from bitget_assets.datasets import dataset
from bitget_assets.orders import PRODUCT_TYPE_COL
from bitget_assets.scan import Scanner, Task
from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig
from bitget_assets.spool import ScanSpool
from bitget_assets.storage import LocalStorage
from bitget_assets.streams import ORDERS_HISTORY, RETENTION_MS, streams_of
from tests.simhelpers import NOW_MS, PagesInMemory, client_for

ALL = ["USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES"]
DATASETS = ("orders", "plan_orders", "fills")
CONCURRENCY = 4
PAGE = 100


def small_spools(monkeypatch, made: list, chunk_rows=250, stream_rows=150):
    """scan_account's spools with tiny buffers (so a few thousand rows are written out in many chunks, and most
    symbols take the streamed Parquet path); each is recorded in `made` with its folder."""

    class Small(ScanSpool):
        def __init__(self):
            super().__init__(chunk_rows=chunk_rows, stream_rows=stream_rows)
            made.append(self)

        def __enter__(self):
            super().__enter__()
            self.folder = self._folder
            return self

    monkeypatch.setattr(extraction, "ScanSpool", Small)


def in_memory_read(client, now_ms) -> PagesInMemory:
    """Every stream of every dataset read the way the scan reads them, all pages kept in memory (the scan
    before the spool)."""
    tasks = [Task(s, pt, None if s.source == "pending" else (now_ms - RETENTION_MS, now_ms))
             for ds in DATASETS for s in streams_of(ds) for pt in ALL]
    pages = PagesInMemory()
    Scanner(client, pages, CONCURRENCY).run(tasks)
    return pages


def sorted_rows(df: pl.DataFrame) -> pl.DataFrame:
    cols = sorted(df.columns)
    return df.select(cols).sort(cols, nulls_last=True)


def test_a_scan_holds_a_bounded_number_of_rows_and_stages_what_it_read(tmp_path, monkeypatch):
    made: list[ScanSpool] = []
    small_spools(monkeypatch, made)
    spec = AccountSpec(name="demo", seed=21, orders=2500, symbols=9, now_ms=NOW_MS, open_orders=30)
    with Simulator([spec], SimulatorConfig(rate_limit=None, latency=None, frozen=True)) as sim:
        store, client = LocalStorage(tmp_path), client_for(sim)
        summary = extraction.scan_account(client, store, ALL, scan_id="s1", concurrency=CONCURRENCY,
                                          streams=DATASETS)
        memory = in_memory_read(client, summary.manifest["server_now_ms"])
    manifest, (spool,) = summary.manifest, made
    total = sum(meta["rows"] for meta in manifest["datasets"].values())
    assert total > 20 * spool.chunk_rows, "too few rows to prove anything about the spool"
    # Never more than two buffers' worth of rows in memory, plus the page each worker was adding.
    assert spool.peak_rows <= spool.max_rows + CONCURRENCY * PAGE, spool.peak_rows
    assert not spool.folder.exists(), "the spool's temporary folder outlived the scan"

    for ds in DATASETS:
        d, meta = dataset(ds), manifest["datasets"][ds]
        df = d.concat(f for s in streams_of(ds) for pt in ALL for f in memory.of(s.name, pt))
        assert df.height and meta["rows"] == df.height, ds
        groups = {f"{symbol}:{pt}": g for (pt, symbol), g in df.group_by([PRODUCT_TYPE_COL, "symbol"])}
        assert meta["symbols"] == {k: g.height for k, g in sorted(groups.items())}, ds
        for key, want in groups.items():
            symbol, pt = hs.split_key(key)
            got = hs.read_parquet(store, hs.staged_key("s1", pt, symbol, ds))
            # Every staged file has every column of its dataset, all text, and exactly the rows read.
            assert set(got.columns) == set(df.columns) and set(got.dtypes) == {pl.String}, (ds, key)
            assert sorted_rows(got).equals(sorted_rows(want)), (ds, key)
        for pt in ALL:
            of_pt = df.filter(pl.col(PRODUCT_TYPE_COL) == pt)
            pending = of_pt.filter(pl.col("_source") == "pending")
            marks = meta["marks"][pt]
            assert marks["newest_ctime"] == (of_pt["cTime"].cast(pl.Int64).max() if of_pt.height else None)
            assert marks["open_orders"] == extraction.open_orders(pending, d.key), (ds, pt)
    assert manifest["staged_files"] == sum(len(m["symbols"]) for m in manifest["datasets"].values())
    assert manifest["orders"] == manifest["datasets"]["orders"]["rows"]


def test_a_malformed_page_fails_the_scan_records_nothing_and_removes_the_spool(tmp_path, monkeypatch):
    made: list[ScanSpool] = []
    small_spools(monkeypatch, made)
    pages = {"n": 0}
    real = scan.stream_frame

    def one_page_without_ctime(spec, rows, product_type):
        frame = real(spec, rows, product_type)
        if spec is ORDERS_HISTORY and frame.height:
            pages["n"] += 1
            if pages["n"] == 7:  # a page well into the scan, after chunks were written
                return frame.drop("cTime")
        return frame

    monkeypatch.setattr(scan, "stream_frame", one_page_without_ctime)
    spec = AccountSpec(name="demo", seed=22, orders=2000, symbols=5, now_ms=NOW_MS)
    with Simulator([spec], SimulatorConfig(rate_limit=None, latency=None, frozen=True)) as sim:
        store = LocalStorage(tmp_path)
        with pytest.raises(ValueError, match="orders without cTime: the API answer is malformed"):
            extraction.scan_account(client_for(sim), store, ALL, scan_id="s1", concurrency=CONCURRENCY)
    assert hs.read_json(store, hs.SCAN_MANIFEST) is None
    assert made and not made[0].folder.exists()


def test_concurrent_pages_wait_for_room_and_every_row_is_staged_once(tmp_path):
    def page(thread: int, n: int) -> pl.DataFrame:
        ids = [f"{thread}{n:04d}{i:03d}" for i in range(PAGE)]
        return pl.DataFrame({"orderId": ids, "cTime": [str(1_000 + i) for i in range(PAGE)],
                             "symbol": [f"S{i % 7}USDT" for i in range(PAGE)], "uTime": ["1"] * PAGE,
                             PRODUCT_TYPE_COL: ["USDT-FUTURES"] * PAGE, "_source": ["history"] * PAGE})

    store = LocalStorage(tmp_path)
    with ScanSpool(chunk_rows=300, stream_rows=200) as spool:
        def work(t: int) -> None:
            for n in range(40):
                spool.add(ORDERS_HISTORY.name, "USDT-FUTURES", ORDERS_HISTORY, page(t, n))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(1, 7)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        spool.flush()
        assert spool.peak_rows <= spool.max_rows + len(threads) * PAGE
        groups = spool.groups("orders")
        assert sum(groups.values()) == spool.rows(ORDERS_HISTORY.name, "USDT-FUTURES") == 6 * 40 * PAGE
        for (pt, symbol), n in groups.items():
            spool.write_group("orders", pt, symbol, ["orderId", "cTime", "symbol", "uTime", PRODUCT_TYPE_COL,
                                                     "_source", "extra"],
                              lambda data, k=f"{symbol}.parquet": store.write(k, data))
            got = hs.read_parquet(store, f"{symbol}.parquet")
            assert got.height == n == got["orderId"].n_unique() and got["extra"].null_count() == n
