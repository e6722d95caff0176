"""Website exports: parsing exactly what Bitget writes, refusing what it is not, and export + API = every order."""

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from bitget_assets.imports import (
    ExportFileError,
    MissingTimeZoneError,
    NotAnOrderExportError,
    describe,
    duplicate_order_ids,
    merge_sources,
    outside_partitions,
    overlap_disagreements,
    parse_export,
    parse_exports,
)
from bitget_assets.orders import concat, merge, orders_frame
from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig, generate_account
from bitget_assets.simulator.export import month_range_ms, write_exports
from tests.simulator.helpers import HISTORY, PENDING, page_all

FIXTURES = Path(__file__).parent / "fixtures" / "exports"
NOW = 1_790_000_000_000
DAY_MS = 86_400_000
TZ = "Europe/Berlin"
CANCELLED = ("canceled", "cancelled")
SPEC = AccountSpec(name="hist", seed=11, orders=500, symbols=24, now_ms=NOW, history_days=425,
                   expired_fraction=3.0)
TYPES = SPEC.product_types


def _ms(*args) -> str:
    return str(int(datetime(*args, tzinfo=UTC).timestamp() * 1000))


# -- hand-made fixtures ------------------------------------------------------------------------------------------

def test_2026_header_with_bom_crlf_tabs_and_an_empty_market_price():
    df = parse_export(FIXTURES / "order-history-2026.csv", tz=TZ)
    rows = df.select("orderId", "symbol", "marginCoin", "side", "tradeSide", "posSide", "orderType",
                     "orderSource", "size", "price", "priceAvg", "baseVolume", "quoteVolume", "totalProfits",
                     "status", "cTime", "uTime", "_productType", "source").rows()
    src = "export:order-history-2026.csv"
    assert rows == [
        ("1258113040865390595", "BTCUSDT", "USDT", "buy", "close", "long", "limit", "normal", "0.0100",
         "118250.5", "118250.5", "0.0100", "1182.505", "12.3400", "filled", _ms(2025, 7, 14, 16, 5, 9), "",
         "USDT-FUTURES", src),
        ("1258111688231755776", "BTCUSDT", "USDT", "buy", "open", "long", "market", "market", "0.0100", "",
         "117015.2", "0.0100", "1170.152", "0", "filled", _ms(2025, 7, 14, 15, 59, 44), "", "USDT-FUTURES", src),
        ("1232876543210987654", "POPCATUSDT", "USDT", "sell", "open", "short", "limit", "normal", "500",
         "0.8123", "", "0", "0", "0", "canceled", _ms(2025, 1, 3, 8), "", "USDT-FUTURES", src),
    ]


def test_older_lowercase_header_without_optional_columns_lf_and_no_bom():
    df = parse_export(FIXTURES / "order-history-older-lowercase.csv", tz="Asia/Tokyo")
    assert df.select("orderId", "side", "tradeSide", "posSide", "size", "baseVolume", "status", "cTime",
                     "orderType", "orderSource").rows() == [
        ("1187000000000000001", "sell", "close", "short", "0.50", "0.50", "filled", _ms(2024, 6, 30, 14, 59, 59),
         None, None),
        ("1187000000000000000", "sell", "open", "short", "0.50", "0.20", "partially_filled",
         _ms(2024, 6, 30, 14), None, None),
    ]


def test_semicolon_file_with_decimal_commas_coin_m_and_usdc_m_rows_across_a_dst_switch():
    df = parse_export(FIXTURES / "order-history-semicolon.csv", tz=TZ)
    assert df.select("orderId", "symbol", "marginCoin", "_productType", "price", "quoteVolume", "cTime").rows() == [
        # 03:15 on 2025-03-30 is summer time (UTC+2): clocks went forward at 02:00 that night.
        ("1240000000000000002", "BTCUSD", "BTC", "COIN-FUTURES", "82000.5", "0.00121951", _ms(2025, 3, 30, 1, 15)),
        ("1240000000000000001", "BTCPERP", "USDC", "USDC-FUTURES", "83000", "166", _ms(2025, 3, 29, 11)),
    ]


@pytest.mark.parametrize("name, what", [
    ("transactions-2026.csv", "futures transactions"), ("transactions-2024.csv", "futures transactions"),
    ("position-history.csv", "position history"), ("fills-semicolon.csv", "trade (fill) history"),
])
def test_other_kinds_of_export_are_refused_by_name(name, what):
    with pytest.raises(NotAnOrderExportError) as e:
        parse_export(FIXTURES / name, tz=TZ)
    assert (e.value.file, e.value.line) == (name, 1)
    assert f"a Bitget {what} export" in str(e.value) and "nothing was imported" in str(e.value)


def test_no_time_zone_is_refused_with_where_to_find_it():
    for tz in (None, "", "UTC+8"):
        with pytest.raises(MissingTimeZoneError) as e:
            parse_export(FIXTURES / "order-history-2026.csv", tz=tz)
        assert "time-zone setting in your Bitget preferences" in str(e.value) and "Europe/Berlin" in str(e.value)
        assert e.value.file == "order-history-2026.csv"


GOOD = (FIXTURES / "order-history-2026.csv").read_bytes()
LINE3 = "2025-07-14 17:59:44,\t1258111688231755776,Open long,USDT,BTCUSDT,market,Market,,117015.2,0.0100,0.0100,"


@pytest.mark.parametrize("old, new, line, expected", [
    ("\t1258111688231755776", "\tABC", 3, "a numeric order ID"),
    ("2025-07-14 17:59:44", "14.07.2025 17:59", 3, "a date like"),
    ("2025-07-14 17:59:44", "2025-02-30 17:59:44", 3, "a real calendar date"),
    ("2025-07-14 17:59:44", "2025-03-30 02:30:00", 3, "a time that exists in Europe/Berlin"),
    ("Open long", "Hold", 3, "a direction"),
    (",Cancelled", ",Expired", 4, "a status"),
    (",500,", ",5OO,", 4, "a plain decimal number in 'order amount'"),
    (LINE3 + "1170.152", LINE3 + "1,170.152", 3, "15 fields like the header"),
    ("USDT,POPCATUSDT", "BTC,POPCATUSDT", 4, "a futures symbol and margin coin"),
    ("\t1232876543210987654", "\t1258113040865390595", 4, "order 1258113040865390595 once"),
    ("Date,Order ID", "When,Order ID", 1, "the header of a Bitget futures order-history export"),
])
def test_a_malformed_file_is_refused_whole_naming_file_line_and_expectation(old, new, line, expected):
    raw = GOOD.replace(old.encode(), new.encode(), 1)
    assert raw != GOOD
    with pytest.raises(ExportFileError) as e:
        parse_export(raw, file_name="bad.csv", tz=TZ)
    assert (e.value.file, e.value.line) == ("bad.csv", line), str(e.value)
    assert expected in str(e.value) and str(e.value).startswith(f"bad.csv, line {line}: expected ")


def test_excel_and_non_utf8_files_are_refused():
    with pytest.raises(ExportFileError, match="choose CSV"):
        parse_export(b"PK\x03\x04rest-of-a-zip", file_name="x.xlsx", tz=TZ)
    with pytest.raises(ExportFileError, match="line 3: expected UTF-8"):
        parse_export(GOOD.replace(b"Open long", b"Open l\xf6ng"), file_name="latin1.csv", tz=TZ)
    with pytest.raises(ExportFileError, match="a header line"):
        parse_export(b"", file_name="empty.csv", tz=TZ)


def test_a_row_repeated_with_equal_values_is_kept_once():
    line = GOOD.split(b"\r\n")[2]
    df = parse_export(GOOD + line + b"\r\n", file_name="twice.csv", tz=TZ)
    assert df.equals(parse_export(GOOD, file_name="twice.csv", tz=TZ))


def test_a_header_only_file_imports_no_orders():
    df = parse_export(GOOD.split(b"\r\n")[0] + b"\r\n", file_name="none.csv", tz=TZ)
    assert df.height == 0 and {"orderId", "cTime", "symbol", "source", "_productType"} <= set(df.columns)


def test_merging_into_an_empty_api_frame_keeps_the_exports_once():
    df = parse_exports([FIXTURES / "order-history-2026.csv", FIXTURES / "order-history-semicolon.csv",
                        FIXTURES / "order-history-2026.csv"], tz=TZ)
    merged = merge_sources(pl.DataFrame(), df)
    assert merged["orderId"].to_list() == ["1232876543210987654", "1240000000000000001", "1240000000000000002",
                                           "1258111688231755776", "1258113040865390595"]  # chronological
    assert merged["source"].to_list() == ["export:order-history-2026.csv", "export:order-history-semicolon.csv",
                                          "export:order-history-semicolon.csv", "export:order-history-2026.csv",
                                          "export:order-history-2026.csv"]


def test_an_hour_that_occurs_twice_is_read_as_its_first_occurrence():
    raw = GOOD.replace(b"2025-07-14 17:59:44", b"2025-10-26 02:30:00")
    df = parse_export(raw, file_name="fold.csv", tz=TZ)
    assert df["cTime"][1] == _ms(2025, 10, 26, 0, 30)  # still summer time (UTC+2) at the first 02:30


# -- the simulator's export ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def account():
    return generate_account(SPEC)


@pytest.fixture(scope="module")
def every_order(account) -> dict[str, dict]:
    return {o["orderId"]: o for o in map(json.loads, account.blobs)}


@pytest.fixture(scope="module")
def api_orders():
    """The orders the API returns for the last 90 days, read over HTTP and merged as the pipeline does."""
    cfg = SimulatorConfig(rate_limit=None, public_rate_limit=None, frozen=True, seed=1)
    with Simulator([SPEC], cfg) as sim:
        creds = sim.credentials(SPEC.name)
        frames = []
        for pt in TYPES:
            window = f"productType={pt}&startTime={NOW - 90 * DAY_MS}&endTime={NOW}"
            frames.append(orders_frame(page_all(sim.base_url, creds, HISTORY, window), pt, "history"))
            frames.append(orders_frame(page_all(sim.base_url, creds, PENDING, f"productType={pt}"), pt, "pending"))
    return merge(frames)


def _months_1_to_13(account) -> tuple[str, str]:
    """From the month of the oldest order to the month 75 days before now: overlaps the API's 90 days."""
    first = datetime.fromtimestamp(account.ctimes[0] / 1000, UTC)
    last = datetime.fromtimestamp((NOW - 75 * DAY_MS) / 1000, UTC)
    return f"{first:%Y-%m}", f"{last:%Y-%m}"


def _import(paths, tz=TZ) -> pl.DataFrame:
    return concat(parse_export(p, tz=tz) for p in paths)


def test_simulator_export_parses_back_to_every_finished_order(account, every_order, tmp_path):
    files = write_exports(account, tmp_path, tz=TZ)
    df = _import(files.values())
    finished = {str(oid) for oid, is_open in zip(account.oids, account.is_open, strict=True) if not is_open}
    assert sorted(df["orderId"]) == sorted(finished)
    shifted = 0
    for r in df.iter_rows(named=True):
        o = every_order[r["orderId"]]
        for k in ("symbol", "marginCoin", "size", "priceAvg", "baseVolume", "quoteVolume", "totalProfits"):
            assert r[k] == o[k], (k, r, o)
        assert r["price"] == ("" if o["orderType"] == "market" else o["price"])
        assert r["status"] == ("canceled" if o["status"] in CANCELLED else o["status"])
        assert (r["orderType"], r["orderSource"]) == (o["orderType"], o["orderSource"])
        if o["posSide"] != "net":
            assert (r["side"], r["posSide"], r["tradeSide"] == "open") == (o["side"], o["posSide"],
                                                                          o["tradeSide"] == "open")
        second = int(o["cTime"]) // 1000 * 1000
        if int(r["cTime"]) != second:
            # Only the repeated hour when clocks go back: read as its first occurrence, one hour early.
            assert int(r["cTime"]) == second - 3_600_000, r
            shifted += 1
    assert shifted <= 0.01 * df.height
    # Symbols such as 龙虾USDT and $DEGENUSDT (when the generator makes them) are imported like any other.
    assert {o["symbol"] for o in every_order.values()} == set(df["symbol"])


@pytest.mark.parametrize("include_cancelled", [True, False], ids=["with-cancelled", "without-cancelled"])
def test_export_of_months_1_to_13_plus_the_api_is_every_order_once(account, every_order, api_orders,
                                                                   include_cancelled, tmp_path):
    lo, hi = month_range_ms(*_months_1_to_13(account), TZ)
    first = write_exports(account, tmp_path / "a", tz=TZ, start_ms=lo, end_ms=hi,
                          include_cancelled=include_cancelled)
    imported = _import(first.values())
    merged = merge_sources(api_orders, imported)

    cut = NOW - 90 * DAY_MS
    lost = set() if include_cancelled else {i for i, o in every_order.items()
                                           if o["status"] in CANCELLED and int(o["cTime"]) < cut}
    assert lost or include_cancelled
    assert merged.height == len(every_order) - len(lost)
    assert set(merged["orderId"]) == set(every_order) - lost
    assert duplicate_order_ids(merged) == []

    # API rows win in the overlap, unchanged; the rest carry their file's name.
    overlap = set(api_orders["orderId"]) & set(imported["orderId"])
    assert len(overlap) > 50
    api_part = merged.filter(pl.col("source") == "api").select(api_orders.columns)
    assert api_part.sort("orderId").equals(api_orders.sort("orderId"))
    exported = merged.filter(pl.col("source") != "api")
    assert set(exported["orderId"]) == set(every_order) - lost - set(api_orders["orderId"])
    assert set(exported["source"]) <= {f"export:{p.name}" for p in first.values()}
    assert overlap_disagreements(api_orders, imported) == []
    assert merged["cTime"].cast(pl.Int64).is_sorted()

    # Importing the same files again, and an overlapping second export, changes nothing.
    lo2, hi2 = month_range_ms("2026-03", _months_1_to_13(account)[1], TZ)
    second = write_exports(account, tmp_path / "b", tz=TZ, start_ms=lo2, end_ms=hi2,
                           include_cancelled=include_cancelled, created_ms=NOW + 3_600_000)
    again = merge_sources(api_orders, concat([imported, _import(first.values()), _import(second.values())]))
    assert again.equals(merged)


def test_a_wrong_time_zone_shows_in_the_overlap_check(account, api_orders, tmp_path):
    lo, hi = month_range_ms(*_months_1_to_13(account), TZ)
    files = write_exports(account, tmp_path, tz=TZ, start_ms=lo, end_ms=hi)
    wrong = _import(files.values(), tz="UTC")
    overlap = set(api_orders["orderId"]) & set(wrong["orderId"])
    found = overlap_disagreements(api_orders, wrong)
    assert {d.orderId for d in found} == overlap and {d.field for d in found} == {"time"}
    assert "+2 h off the API's" in describe(found, "UTC")  # the overlap is in Berlin's summer


def test_checks_name_exactly_the_offending_orders(account, api_orders, tmp_path):
    lo, hi = month_range_ms(*_months_1_to_13(account), TZ)
    imported = _import(write_exports(account, tmp_path, tz=TZ, start_ms=lo, end_ms=hi).values())
    overlap = sorted(set(api_orders["orderId"]) & set(imported["orderId"]), key=int)

    # Stacked without the merge rule, every overlapping order is there twice.
    assert duplicate_order_ids(concat([api_orders, imported])) == overlap

    # The partitions of every symbol the API saw, but one that the export also holds.
    pairs = set(api_orders.select("symbol", "_productType").unique().iter_rows())
    dropped = sorted(pairs & set(imported.select("symbol", "_productType").unique().iter_rows()))[0]
    keys = {f"{s}:{pt}" for s, pt in pairs - {dropped}}
    expected = imported.filter((pl.col("symbol") == dropped[0]) & (pl.col("_productType") == dropped[1]))
    assert expected.height and outside_partitions(imported, keys) == sorted(expected["orderId"], key=int)

    victim, other = overlap[0], overlap[-1]
    tampered = imported.with_columns(
        size=pl.when(pl.col("orderId") == victim).then(pl.lit("999")).otherwise(pl.col("size")),
        symbol=pl.when(pl.col("orderId") == other).then(pl.lit("XYZUSDT")).otherwise(pl.col("symbol")))
    found = overlap_disagreements(api_orders, tampered)
    assert [(d.orderId, d.field, d.export) for d in found] == [(victim, "size", "999"),
                                                               (other, "symbol", "XYZUSDT")]
