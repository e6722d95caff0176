"""One page of any stream, and the sequential walk of one stream over a window (the per-symbol direct read).

The client is only a transport here (`client.request(path, params)` returns the envelope's `data`); everything
about paging comes from the stream's spec (bitget_assets.streams). The parallel account scan (bitget_assets.scan)
uses `fetch_page` and `SpanMemory` too, so both reads follow the same rules.
"""

import inspect
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

from bitget_assets.bitget.errors import BitgetAPIError, BitgetResponseError
from bitget_assets.streams import BY_NAME, CURSOR_END_ID, SPAN_ERROR_CODES, SYMBOL_NONE, StreamSpec

# Codes meaning "this endpoint is not served for you": a stream with a fallback switches to it.
UNSUPPORTED_CODES = frozenset({"40404", "40085", "40084"})


class MalformedRowError(BitgetAPIError):
    """A row lacks a field every row of its stream has: the answer cannot be trusted, so stop loudly."""


@dataclass(frozen=True)
class Page:
    rows: list[dict]
    cursor: str | None  # what to send for the next, older page; None: there is none

    @property
    def orders(self) -> list[dict]:  # the name the order endpoints' callers used
        return self.rows

    @property
    def end_id(self) -> str | None:
        return self.cursor


def cursor_text(value, path: str) -> str | None:
    """A cursor as exact decimal text: v3 sends some as JSON numbers above 2^53, which must not pass a float."""
    if value is None or value == "":
        return None
    if isinstance(value, (bool, float)):
        raise BitgetResponseError(f"{path}: cursor {value!r} is not an integer or a string")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    raise BitgetResponseError(f"{path}: cursor of type {type(value).__name__}")


def parse_page(spec: StreamSpec, data) -> Page:
    """Rows and next cursor of one answer's `data`, for every shape the sources list.

    Empty: list `[]`/`null`/missing, cursor `""`/`null`/missing. A paged answer without a cursor but with rows
    continues below its last row's id (ids fall with every page), which is what `endId` is documented to be.
    """
    if spec.list_field is None:
        if data is None:
            return Page([], None)
        if not isinstance(data, list):
            raise BitgetResponseError(f"{spec.path}: data is {type(data).__name__}, expected an array")
        rows = data
        cursor = None
    else:
        if data is None or data == "":
            data = {}
        if not isinstance(data, dict):
            raise BitgetResponseError(f"{spec.path}: data is {type(data).__name__}, expected an object")
        rows = data.get(spec.list_field) or []
        if not isinstance(rows, list):
            raise BitgetResponseError(f"{spec.path}: {spec.list_field} is {type(rows).__name__}, expected an array")
        field = "endId" if spec.cursor == CURSOR_END_ID else "cursor"
        cursor = cursor_text(data.get(field), spec.path) if spec.paged else None
    for row in rows:
        if not isinstance(row, dict):
            raise MalformedRowError("malformed", f"a row is {type(row).__name__}, not an object", spec.path)
        missing = [f for f in spec.required_fields if row.get(f) in (None, "")]
        if missing:
            raise MalformedRowError("malformed", f"row without {', '.join(missing)}", spec.path)
    if spec.paged and cursor is None and rows:
        cursor = cursor_text(rows[-1][spec.id_field], spec.path)
    return Page(rows, cursor)


def has_more(spec: StreamSpec, page: Page) -> bool:
    return spec.paged and len(page.rows) >= spec.limit and page.cursor is not None


def check_advances(spec: StreamSpec, previous: str | None, page: Page) -> None:
    """Ids fall page by page; a cursor that does not would loop forever."""
    digits = previous is not None and page.cursor and page.cursor.isdigit() and previous.isdigit()
    if digits and int(page.cursor) >= int(previous):
        raise BitgetResponseError(f"{spec.path}: paging did not advance (cursor {page.cursor})")


_REQUEST_TAKES_RATE: dict[type, bool] = {}
V2_RATE_PER_S = 10.0  # the rate the limiter's configured rate (9.5/s by default) is derived from
RATE_MARGIN = 0.95  # the same margin for endpoints with another documented rate: 20/s is spaced at 19/s


def budget_rate(spec: StreamSpec) -> float | None:
    """The rate to space `spec`'s requests at: None (the limiter's configured rate) for v2's 10/s endpoints."""
    return None if spec.rate_per_s == V2_RATE_PER_S else spec.rate_per_s * RATE_MARGIN


def request(client, spec: StreamSpec, params: dict):
    """`client.request(path, params)`, passing the stream's own rate when it differs and the transport takes one."""
    rate = budget_rate(spec)
    if rate is None:
        return client.request(spec.path, params)
    takes = _REQUEST_TAKES_RATE.get(type(client))
    if takes is None:
        try:
            takes = "rate_per_s" in inspect.signature(client.request).parameters
        except (TypeError, ValueError):
            takes = False
        _REQUEST_TAKES_RATE[type(client)] = takes
    return client.request(spec.path, params, rate_per_s=rate) if takes else client.request(spec.path, params)


def fetch_page(client, spec: StreamSpec, product_type: str, *, symbol: str | None = None,
               start_ms: int | None = None, end_ms: int | None = None, cursor: str | None = None) -> Page:
    params = spec.params(product_type, symbol=symbol, start_ms=start_ms, end_ms=end_ms, cursor=cursor)
    return parse_page(spec, request(client, spec, params))


def is_span_error(exc: BaseException) -> bool:
    return isinstance(exc, BitgetAPIError) and exc.code in SPAN_ERROR_CODES


def is_unsupported(exc: BaseException) -> bool:
    return (isinstance(exc, BitgetAPIError) and exc.code in UNSUPPORTED_CODES) or (
        isinstance(exc, BitgetResponseError) and "HTTP 404" in str(exc))


class SpanMemory:
    """The widest window each stream's server has accepted, learnt once per client and shared by every read."""

    _of_client: "weakref.WeakKeyDictionary[object, SpanMemory]" = weakref.WeakKeyDictionary()
    _guard = threading.Lock()

    def __init__(self):
        self._spans: dict[str, int] = {}
        self._refused: set[str] = set()  # streams whose fallback serves instead (e.g. `fills` -> `fill-history`)
        self._lock = threading.Lock()

    def refuse(self, spec: StreamSpec) -> None:
        with self._lock:
            self._refused.add(spec.name)

    def serving(self, spec: StreamSpec) -> StreamSpec:
        """`spec`, or its fallback once `spec` has refused (so later windows skip the doomed request)."""
        with self._lock:
            refused = spec.name in self._refused
        return fallback_of(spec) if refused and spec.fallback else spec

    @classmethod
    def of(cls, client) -> "SpanMemory":
        with cls._guard:
            memory = cls._of_client.get(client)
            if memory is None:
                memory = cls._of_client[client] = SpanMemory()
            return memory

    def span(self, spec: StreamSpec) -> int:
        with self._lock:
            return self._spans.get(spec.name, spec.spans_ms[0])

    def shrink(self, spec: StreamSpec, refused_ms: int) -> int | None:
        """The next shorter span below the refused one (None when there is none); remembered for every read."""
        with self._lock:
            shorter = [s for s in spec.spans_ms if s < refused_ms]
            if not shorter:
                return None
            self._spans[spec.name] = min(self._spans.get(spec.name, spec.spans_ms[0]), shorter[0])
            return self._spans[spec.name]


def windows(lower: int, upper: int, span_ms: int) -> list[tuple[int, int]]:
    """Adjacent inclusive windows of at most `span_ms`, newest first, covering [lower, upper]: no gap, no overlap."""
    out = []
    while upper >= lower:
        start = max(lower, upper - span_ms)
        out.append((start, upper))
        upper = start - 1
    return out


def fallback_of(spec: StreamSpec) -> StreamSpec | None:
    return BY_NAME[spec.fallback] if spec.fallback else None


def walk(client, spec: StreamSpec, product_type: str, *, symbol: str | None = None,
         start_ms: int | None = None, end_ms: int | None = None) -> Iterator[list[dict]]:
    """Pages of one stream, newest window first, each window paged to its end; a span error shortens the span
    (or, for a stream with a fallback, hands the window to it). A stream that takes no `symbol` is read
    account-wide and filtered to `symbol`."""
    wanted = symbol.upper() if symbol else None  # doc examples spell symbols in lower case; live answers in upper
    keep = (lambda rows: [r for r in rows if str(r.get("symbol", "")).upper() == wanted]) \
        if symbol and spec.symbol == SYMBOL_NONE else (lambda rows: rows)
    if not spec.windowed:
        yield from map(keep, _pages(client, spec, product_type, symbol, None, None))
        return
    memory = SpanMemory.of(client)
    if memory.serving(spec) is not spec:
        yield from walk(client, memory.serving(spec), product_type, symbol=symbol, start_ms=start_ms, end_ms=end_ms)
        return
    upper = end_ms
    while upper >= start_ms:
        lower = max(start_ms, upper - memory.span(spec))
        try:
            for rows in _pages(client, spec, product_type, symbol, lower, upper):
                yield keep(rows)
        except BitgetAPIError as exc:
            fallback = fallback_of(spec)
            if fallback and (is_span_error(exc) or is_unsupported(exc)):
                memory.refuse(spec)
                yield from walk(client, fallback, product_type, symbol=symbol, start_ms=start_ms, end_ms=upper)
                return
            if not is_span_error(exc) or memory.shrink(spec, upper - lower) is None:
                raise
            continue
        upper = lower - 1


def _pages(client, spec, product_type, symbol, lower, upper) -> Iterator[list[dict]]:
    cursor = None
    while True:
        page = fetch_page(client, spec, product_type, symbol=symbol, start_ms=lower, end_ms=upper, cursor=cursor)
        check_advances(spec, cursor, page)
        if page.rows:
            yield page.rows
        if not has_more(spec, page):
            return
        cursor = page.cursor
