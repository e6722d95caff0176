"""The simulator's website export, read back with the csv module only (not the project's importer)."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bitget_assets.simulator.accounts import DAY_MS, AccountSpec, generate_account
from bitget_assets.simulator.cli import main
from bitget_assets.simulator.export import HEADER, month_range_ms, render_export, write_exports

from .conftest import NOW

SPEC = AccountSpec(name="hist", seed=5, orders=300, symbols=9, now_ms=NOW, history_days=425, expired_fraction=3.0)
TZ = "Europe/Berlin"
MARGIN_SUFFIX = {"USDT-FUTURES": "USDT", "USDC-FUTURES": "PERP", "COIN-FUTURES": "USD"}


@pytest.fixture(scope="module")
def account():
    return generate_account(SPEC)


@pytest.fixture(scope="module")
def orders(account):
    """Every generated order with its product type and whether it is open, from the account's own columns."""
    return [dict(json.loads(b), _pt=account.symbols[account.sym_idx[p]].product_type, _open=bool(account.is_open[p]))
            for p, b in enumerate(account.blobs)]


def _rows(raw: bytes, delimiter=","):
    assert raw.startswith(b"\xef\xbb\xbf")
    body = raw[3:]
    assert body.endswith(b"\r\n") and b"\n" not in body.replace(b"\r\n", b"")
    return list(csv.reader(io.StringIO(body.decode(), newline=""), delimiter=delimiter))


def _eu_summer(t: datetime) -> bool:
    """EU daylight saving, independent of zoneinfo: last Sunday of March 01:00 UTC to last Sunday of October."""
    def last_sunday(month):
        d = datetime(t.year, month + 1, 1, 1, tzinfo=UTC) - timedelta(days=1)
        return d - timedelta(days=(d.weekday() + 1) % 7)
    return last_sunday(3) <= t < last_sunday(10)


def test_files_carry_the_documented_quirks(account, orders, tmp_path):
    files = write_exports(account, tmp_path, tz=TZ)
    assert list(files) == list(SPEC.product_types)
    assert [p.name for p in files.values()] == [f"Export futures order history-2026-09-21 16_13_{s}.csv"
                                                for s in (20, 21, 22)]
    by_id = {o["orderId"]: o for o in orders}
    seen = []
    for pt, path in files.items():
        header, *rows = _rows(path.read_bytes())
        assert tuple(header) == HEADER
        cols = {h: i for i, h in enumerate(header)}
        ids = []
        for r in rows:
            assert r[cols["Order ID"]].startswith("\t")
            o = by_id[r[cols["Order ID"]][1:]]
            ids.append(o["orderId"])
            assert (r[cols["Futures"]], r[cols["Coin"]]) == (o["symbol"], o["marginCoin"])
            assert r[cols["Futures"]].endswith(MARGIN_SUFFIX[pt]) and o["_pt"] == pt
            assert r[cols["Order amount"]] == o["size"] and r[cols["Executed"]] == o["baseVolume"]
            assert r[cols["Price"]] == ("" if o["orderType"] == "market" else o["price"])
            assert r[cols["Status"]] in ("Filled", "Cancelled", "Partially filled")
            utc = datetime.fromtimestamp(int(o["cTime"]) // 1000, UTC)
            offset = datetime.strptime(r[cols["Date"]], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) - utc
            assert offset == timedelta(hours=2 if _eu_summer(utc) else 1), (r, o["cTime"])
        assert ids == sorted(ids, key=int, reverse=True)  # newest first
        seen += ids
    # The whole history, expired orders included; open orders are not history.
    assert sorted(seen) == sorted(o["orderId"] for o in orders if not o["_open"])
    assert min(int(o["cTime"]) for o in orders) < NOW - 300 * DAY_MS


def test_month_range_and_no_cancelled_export_exactly_the_matching_orders(account, orders, tmp_path):
    lo, hi = month_range_ms("2025-10", "2026-03", TZ)
    assert (lo, hi) == (int(datetime(2025, 9, 30, 22, tzinfo=UTC).timestamp() * 1000),
                        int(datetime(2026, 3, 31, 22, tzinfo=UTC).timestamp() * 1000))
    files = write_exports(account, tmp_path, tz=TZ, start_ms=lo, end_ms=hi, include_cancelled=False)
    got = {r[1][1:] for p in files.values() for r in _rows(p.read_bytes())[1:]}
    want = {o["orderId"] for o in orders if not o["_open"] and lo <= int(o["cTime"]) < hi
            and o["status"] not in ("canceled", "cancelled")}
    assert got == want and len(want) > 100
    cancelled = {o["orderId"] for o in orders if lo <= int(o["cTime"]) < hi and o["status"] == "canceled"}
    assert cancelled and not cancelled & got


def test_semicolon_files_and_the_cli_match_the_function(account, tmp_path, capsys):
    argv = ["export", "--account", "hist", "--seed", "5", "--orders", "300", "--symbols", "9", "--now", str(NOW),
            "--history-days", "425", "--expired-fraction", "3", "--tz", TZ, "--out", str(tmp_path / "cli"),
            "--from-month", "2025-10", "--to-month", "2026-03", "--no-cancelled", "--semicolon"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    lo, hi = month_range_ms("2025-10", "2026-03", TZ)
    files = write_exports(account, tmp_path / "fn", tz=TZ, start_ms=lo, end_ms=hi, include_cancelled=False,
                          delimiter=";")
    assert list(printed) == list(files)
    for pt, path in files.items():
        raw = path.read_bytes()
        assert Path(printed[pt]).read_bytes() == raw
        header, *rows = _rows(raw, ";")
        assert tuple(header) == HEADER and all(len(r) == len(HEADER) for r in rows)


def test_bad_export_arguments_are_refused():
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_range_ms("2025/10", "2026-03", TZ)
    with pytest.raises(ValueError, match="before"):
        month_range_ms("2026-03", "2025-10", TZ)
    with pytest.raises(ValueError, match="delimiter"):
        render_export([], tz=TZ, delimiter="\t")
    with pytest.raises(SystemExit):
        main(["export", "--tz", TZ, "--out", "/nonexistent", "--from-month", "2025-10"])
