"""A tiny HTTP proxy on 127.0.0.1 in front of the local S3 server, to fail chosen requests the way S3 does.

`rule(method, path)` decides per request: None passes it through, "deny" answers 403 AccessDenied (S3's XML
error), "drop" reads half the request body and resets the connection (an upload cut off mid-way). Every
request is recorded as (method, path, action), so tests can count attempts and prove retries are bounded.
"""

import contextlib
import http.client
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "expect"}
ACCESS_DENIED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                 b"<Message>Access Denied</Message><RequestId>proxy</RequestId><HostId>proxy</HostId></Error>")


class S3FaultProxy:
    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        assert parts.hostname == "127.0.0.1", "the proxy only forwards to loopback"
        self.upstream = (parts.hostname, parts.port)
        self.rule = lambda method, path: None
        self.requests: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy._handle(self)

            do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

            def finish(self):
                with contextlib.suppress(OSError):  # the connection was reset on purpose
                    super().finish()

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "S3FaultProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    def count(self, method: str | None = None, suffix: str = "", action: str | None = None) -> int:
        with self._lock:
            return sum(1 for m, p, a in self.requests
                       if (method is None or m == method) and urlsplit(p).path.endswith(suffix)
                       and (action is None or a == action))

    # -- one request -------------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        method, target = h.command, h.path
        action = self.rule(method, urlsplit(target).path)
        with self._lock:
            self.requests.append((method, target, action or "pass"))
        if action == "drop":
            length = int(h.headers.get("Content-Length") or 0)
            h.rfile.read(length // 2)
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.close_connection = True
            h.connection.close()  # RST: the client sees the connection reset mid-upload
            return
        body = _read_body(h)
        if action == "deny":
            h.send_response(403, "Forbidden")
            h.send_header("Content-Type", "application/xml")
            h.send_header("Content-Length", str(len(ACCESS_DENIED)))
            h.end_headers()
            if method != "HEAD":
                h.wfile.write(ACCESS_DENIED)
            return
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_BY_HOP | {"content-length"}}
            if body or method in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            conn.request(method, target, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            h.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in HOP_BY_HOP and (k.lower() != "content-length" or method == "HEAD"):
                    h.send_header(k, v)
            if method != "HEAD":
                h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            if method != "HEAD":
                h.wfile.write(data)
        finally:
            conn.close()


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(h.rfile.read(size))
            h.rfile.readline()
    return h.rfile.read(int(h.headers.get("Content-Length") or 0))
