"""A small scripted Bitget stand-in on 127.0.0.1 for transport tests: it checks signatures over the decoded query
and timestamps against its own (skewed) clock, and answers what each test scripts, logging every request."""

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from bitget_assets.bitget import Credentials

KEY, SECRET, PASSPHRASE = "fake-key-0123456789", "fake-secret-abcdef", "fake-pass"
TIME_PATH = "/api/v2/public/time"


@dataclass
class Request:
    path: str
    raw_query: str
    params: dict
    headers: dict
    at: float  # this machine's clock at arrival


@dataclass
class Answer:
    status: int
    body: dict | bytes


def ok(data) -> Answer:
    return Answer(200, {"code": "00000", "msg": "success", "requestTime": int(time.time() * 1000), "data": data})


def error(code: str, msg: str = "", status: int = 400) -> Answer:
    return Answer(status, {"code": code, "msg": msg, "requestTime": int(time.time() * 1000), "data": None})


@dataclass
class FakeExchange:
    """`route(request) -> Answer` decides every signed answer; `skew_s` moves the server's clock."""

    route: Callable[[Request], Answer] = field(default=lambda r: ok({}))
    skew_s: float = 0.0
    tolerance_s: float = 30.0
    log: list[Request] = field(default_factory=list)

    def server_ms(self) -> int:
        return int((time.time() + self.skew_s) * 1000)

    def credentials(self) -> Credentials:
        return Credentials(KEY, SECRET, PASSPHRASE, base_url=f"http://127.0.0.1:{self.port}")

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.log if r.path == path]

    def answer(self, req: Request) -> Answer:
        if req.path == TIME_PATH:
            return ok({"serverTime": str(self.server_ms())})
        ts = req.headers.get("ACCESS-TIMESTAMP", "")
        if req.headers.get("ACCESS-KEY") != KEY or req.headers.get("ACCESS-PASSPHRASE") != PASSPHRASE:
            return error("40037", "Apikey does not exist")
        if not ts.isdigit() or abs(int(ts) - self.server_ms()) > self.tolerance_s * 1000:
            return error("40008", "Request timestamp expired")
        prehash = ts + "GET" + req.path + (f"?{unquote(req.raw_query)}" if req.raw_query else "")
        expected = base64.b64encode(hmac.new(SECRET.encode(), prehash.encode(), hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, req.headers.get("ACCESS-SIGN", "")):
            return error("40009", "sign signature error")
        return self.route(req)

    def __enter__(self) -> "FakeExchange":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                url = urlsplit(self.path)
                req = Request(url.path, url.query, dict(parse_qsl(url.query)), dict(self.headers), time.time())
                fake.log.append(req)
                answer = fake.answer(req)
                raw = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
