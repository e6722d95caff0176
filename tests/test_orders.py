import io
import json

import polars as pl
import pytest

from bitget_assets.orders import (
    merge,
    orders_frame,
    public_columns,
    validate,
    write_json_document,
)


def to_json_document(df, **kw) -> bytes:
    buf = io.BytesIO()
    write_json_document(df, buf, **kw)
    return buf.getvalue()


def order(oid, ctime, utime=None, **extra):
    return {"orderId": str(oid), "cTime": str(ctime), "uTime": str(utime or ctime), "symbol": "BTCUSDT",
            "status": "filled", **extra}


def test_merge_keeps_latest_utime_and_sorts_ties_by_order_id():
    old = orders_frame([order(3, 100, 100, status="live"), order(1, 50)], "USDT-FUTURES", "pending")
    new = orders_frame([order(3, 100, 180, status="filled"), order(2, 100)], "USDT-FUTURES", "history")
    df = merge([old, new])
    assert df["orderId"].to_list() == ["1", "2", "3"]
    assert df.filter(pl.col("orderId") == "3")["status"].item() == "filled"


def test_order_ids_of_different_lengths_sort_numerically():
    df = merge([orders_frame([order(10, 5), order(9, 5)], "USDT-FUTURES", "history")])
    assert df["orderId"].to_list() == ["9", "10"]


def test_unknown_fields_are_kept_and_non_strings_become_text():
    rows = [order(1, 5)] * 150 + [order(2, 6, newField="x", leverage=20)]
    df = orders_frame(rows, "USDT-FUTURES", "history")
    assert "newField" in df.columns
    assert df.filter(pl.col("orderId") == "2")["leverage"].item() == "20"


def test_missing_order_id_fails_loudly():
    df = orders_frame([{"cTime": "1", "symbol": "X"}], "USDT-FUTURES", "history")
    with pytest.raises(ValueError, match="orderId"):
        validate(df)


def test_json_document_is_valid_and_drops_internal_columns():
    df = merge([orders_frame([order(1, 5), order(2, 6)], "USDT-FUTURES", "history")])
    doc = json.loads(to_json_document(df, generated_at="2026-01-01T00:00:00+00:00", elapsed_seconds=1.23456))
    assert doc["count"] == 2 and doc["elapsed_seconds"] == 1.235
    assert [o["orderId"] for o in doc["orders"]] == ["1", "2"]
    assert all(not k.startswith("_") for o in doc["orders"] for k in o)
    assert public_columns(df).columns == [c for c in df.columns if not c.startswith("_")]


def test_empty_json_document():
    doc = json.loads(to_json_document(merge([]), generated_at="x", elapsed_seconds=0))
    assert doc["count"] == 0 and doc["orders"] == []


def test_json_document_written_in_slices_is_one_valid_document():
    tricky = [order(i, 10 + i) | {"clientOid": f'line\nbreak "{i}" ✓'} for i in range(1, 8)]
    df = merge([orders_frame(tricky, "USDT-FUTURES", "history")])
    for slice_rows in (1, 2, 3, 7, 100):
        buf = io.BytesIO()
        write_json_document(df, buf, generated_at="g", elapsed_seconds=0, slice_rows=slice_rows)
        doc = json.loads(buf.getvalue())
        assert [o["clientOid"] for o in doc["orders"]] == [o["clientOid"] for o in tricky], slice_rows
        assert doc["count"] == 7
    assert buf.getvalue() == to_json_document(df, generated_at="g", elapsed_seconds=0, slice_rows=50_000)


def test_merge_keeps_the_latest_utime_and_the_later_frame_on_ties():
    a = orders_frame([order(1, 5, 5, status="live"), order(2, 6, 6, status="first-read")], "USDT-FUTURES", "pending")
    b = orders_frame([order(1, 5, 9, status="filled"), order(3, 1)], "USDT-FUTURES", "history")
    c = orders_frame([order(2, 6, 6, status="later-read")], "USDT-FUTURES", "history")
    df = merge([a, b, c])
    assert df["orderId"].to_list() == ["3", "1", "2"]
    assert df["status"].to_list() == ["filled", "filled", "later-read"]
    assert df["_source"].to_list() == ["history", "history", "history"]


def test_ids_sent_as_json_numbers_beyond_2_to_the_53_stay_exact():
    big, bigger = 1330960754317619202, 2**64 + 7  # above a double's exact range; above int64
    df = orders_frame([order(1, 5) | {"orderId": big}, order(2, 6) | {"orderId": bigger, "cTime": 6}],
                      "USDT-FUTURES", "history")
    assert df["orderId"].to_list() == [str(big), str(bigger)] and df["cTime"].to_list() == ["5", "6"]
