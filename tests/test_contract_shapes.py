"""The page parser on answers recorded from the live exchange (tests/fixtures/bitget/, each citing its source):
every endpoint the engine calls, every shape the sources show (null vs "" vs a missing endId, a list that is
null or missing, feeDetail as an array, upper-case values, big-integer cursors, bare arrays)."""

import dataclasses
import json
from pathlib import Path

import polars as pl
import pytest

from bitget_assets.datasets import dataset, stream_frame
from bitget_assets.paging import MalformedRowError, parse_page, walk
from bitget_assets.streams import BY_NAME, CURSOR_END_ID, V2_STREAMS, V3_STREAMS
from bitget_assets.v3map import RAW_COL

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "bitget").glob("*.json"))
DAY_MS = 86_400_000


def load(path: Path) -> tuple[dict, dict]:
    doc = json.loads(path.read_text())  # parsed as the client parses an answer: json, ints exact
    assert doc["source"] and doc["body"]["code"] == "00000", path.name
    return doc, doc["body"]["data"]


def test_every_endpoint_the_engine_calls_has_a_recorded_answer():
    recorded = {BY_NAME[load(p)[0]["stream"]].path for p in FIXTURES}
    assert recorded == {s.path for s in (*V2_STREAMS, *V3_STREAMS)}


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_recorded_answer_parses_into_exact_rows_and_cursor(path):
    doc, data = load(path)
    spec = BY_NAME[doc["stream"]]
    page = parse_page(spec, data)
    rows = data if spec.list_field is None else data[spec.list_field]
    assert page.rows == rows and len(rows) == 1
    if not spec.paged:
        expected = None
    elif spec.cursor == CURSOR_END_ID:
        expected = data.get("endId") or rows[-1][spec.id_field]  # a missing endId: below the last row
    else:
        expected = str(data["cursor"])
    assert page.cursor == expected
    frame = stream_frame(spec, page.rows, "USDT-FUTURES")
    d = dataset(spec.dataset)
    d.validate(frame)
    assert frame[d.key].to_list() == [str(rows[0][spec.id_field])]
    assert frame["cTime"].to_list() == [rows[0][spec.time_field]]
    assert set(frame.schema.values()) <= {pl.String, pl.Null}  # every value kept as text
    assert all(str(v).isdigit() for v in frame[d.key])
    row = frame.row(0, named=True)
    if spec.version == 3:
        assert json.loads(row[RAW_COL]) == rows[0]  # the v3 object, kept whole
    else:  # v2 values are kept exactly as sent: upper/lower case, "", and nested arrays as their JSON text
        for name, value in rows[0].items():
            text = value if value is None or isinstance(value, str) else json.dumps(value, separators=(",", ":"))
            assert row[name] == text, name
    if "feeDetail" in rows[0] and isinstance(rows[0]["feeDetail"], list) and spec.dataset == "fills":
        details = json.loads(row["feeDetail"])
        assert isinstance(details, list) and all(str(f["totalFee"]).startswith("-") for f in details)


@pytest.mark.parametrize("end_id", ["absent", None, ""])
@pytest.mark.parametrize("entries", ["absent", None, []])
def test_every_spelling_of_an_empty_page_ends_the_walk(end_id, entries):
    """bitget-api.md §3: `entrustedList` `[]` or `null`, `endId` `""` or `null` (and missing, as the live plan-pending
    answer shows): every combination is an empty last page."""
    doc, data = load(FIXTURES[0].with_name("v2_orders_history_ccxt.json"))
    spec = BY_NAME[doc["stream"]]
    empty = {k: v for k, v in data.items() if k not in ("entrustedList", "endId")}
    if entries != "absent":
        empty["entrustedList"] = entries
    if end_id != "absent":
        empty["endId"] = end_id
    assert parse_page(spec, empty).rows == [] and parse_page(spec, empty).cursor is None
    assert parse_page(spec, None).rows == []


class Replay:
    """A transport that answers each request with the next recorded `data`, remembering what it was asked."""

    def __init__(self, *answers):
        self.answers, self.asked = list(answers), []

    def request(self, path, params=None, **_):
        self.asked.append((path, dict(params or {})))
        return self.answers.pop(0)


def test_a_big_integer_cursor_goes_back_exactly():
    doc, data = load(FIXTURES[0].with_name("v3_history_strategy_orders_ccxt_bigint_cursor.json"))
    assert isinstance(data["cursor"], int) and data["cursor"] > 2**53
    spec = dataclasses.replace(BY_NAME[doc["stream"]], limit=1)  # the recorded page counts as full
    client = Replay(data, {"list": [], "cursor": None})
    now = 1753058447920
    pages = list(walk(client, spec, "USDT-FUTURES", start_ms=now - 10 * DAY_MS, end_ms=now))
    assert [len(p) for p in pages] == [1]
    (_, first), (_, second) = client.asked
    assert "cursor" not in first
    assert second["cursor"] == "1330960754317619202" and second["type"] == "tpsl"
    assert second["category"] == "USDT-FUTURES" and "productType" not in second and "symbol" not in second


def test_a_stream_without_symbol_is_read_account_wide_and_filtered():
    doc, data = load(FIXTURES[0].with_name("v3_fills_ccxt.json"))
    spec = BY_NAME[doc["stream"]]
    other = dict(data["list"][0], symbol="ETHUSDT", execId="1322441401010528256")
    client = Replay({"list": [*data["list"], other], "cursor": None})
    pages = list(walk(client, spec, "USDT-FUTURES", symbol="BTCUSDT", start_ms=0, end_ms=DAY_MS))
    assert [r["execId"] for p in pages for r in p] == ["1322441401010528257"]
    assert "symbol" not in client.asked[0][1]


def test_a_row_without_its_id_is_refused_loudly():
    doc, data = load(FIXTURES[0].with_name("v2_fills_ccxt.json"))
    broken = {**data, "fillList": [{k: v for k, v in data["fillList"][0].items() if k != "tradeId"}]}
    with pytest.raises(MalformedRowError, match="tradeId"):
        parse_page(BY_NAME[doc["stream"]], broken)
