"""A real HTTP server on loopback that serves feeds and misbehaves on request.

For any test that fetches feeds (feeds, pipeline, CLI): no mocks, real sockets, real HTTP.

    from tests.feedserver import FeedServer, feed_server_fixture  # noqa: F401  (the fixture)

    def test_something(feed_server: FeedServer) -> None:
        url = feed_server.url("/feeds/orinoco_tribune.rss")
        ...
        assert feed_server.requests_for("/feeds/orinoco_tribune.rss")[0].headers["user-agent"]

Or as a context manager: `with FeedServer() as server: ...`; `FeedServer(tls=context)` serves
https with a server-side SSLContext (trustme makes one in tests).

Documents: every file in `root` (default tests/feeds/) is served at /feeds/<name>, and
`add(path, body)` serves more from memory. Documents carry an ETag and a Last-Modified and answer
conditional GETs with 304.

Special routes:
    /gzip/<path>               the document, Content-Encoding: gzip
    /redirect/<code>/<path>    one redirect (301, 302, 303, 307, 308) to /<path>
    /chain/<n>/<path>          n successive 301s, then /<path>
    /redirect-to?status=301&to=<url>   a redirect to any URL (ftp://…, another host…)
    /loop/a, /loop/b           redirect to each other forever
    /status/<code>             that status; 429 carries Retry-After: 120, 503 an HTTP date
                               (override with ?retry_after=…)
    /slow/<seconds>/<path>     waits, then serves the document (for timeouts)
    /huge                      streams HUGE_BYTES of valid-looking XML, no Content-Length
    /huge-declared             declares a 50 MiB Content-Length
    /gzip-bomb                 20 KiB on the wire, HUGE_BYTES once decompressed
    /drop                      closes the connection without answering

Run `python -m tests.feedserver DIR` to serve a directory from another process; it prints its
base URL. `python -m tests.feedserver DIR --hosts N` is the benchmark's server: a lean
single-threaded asyncio server (documents and their 200/304 answers prepared at start, keep-alive,
conditional GETs, nothing else) listening on the N loopback addresses 127.0.0.2 … 127.0.0.N+1
with one port, printing their N base URLs on one line, so that a client sees N distinct hosts, as
it would with N outlets. All of 127.0.0.0/8 is loopback on Linux; nothing else is ever bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import hashlib
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

FIXTURES = Path(__file__).parent / "feeds"
HUGE_BYTES = 11 * 1024 * 1024  # more than FetchSettings.max_bytes' default of 10 MiB
LAST_MODIFIED = datetime(2026, 11, 19, 21, 10, 4, tzinfo=UTC)
_CONTENT_TYPES = {
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml",
    ".xml": "application/xml",
    ".html": "text/html; charset=utf-8",
}


@dataclass(frozen=True)
class Document:
    body: bytes
    content_type: str
    etag: str
    last_modified: datetime


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-cased names
    status: int  # what the server answered (0 if it dropped the connection)


class FeedServer:
    """A ThreadingHTTPServer on 127.0.0.1, on a free port, in a background thread."""

    def __init__(
        self,
        root: Path | None = FIXTURES,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ):
        self._documents: dict[str, Document] = {}
        self._log: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.feed_server = self
        self._scheme = "http"
        if tls is not None:  # https: each connection's handshake runs in its handler thread
            self._httpd.socket = tls.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
            self._scheme = "https"
        self._thread: threading.Thread | None = None
        if root is not None:
            for path in sorted(root.iterdir()):
                if path.is_file():
                    self.add(f"/feeds/{path.name}", path.read_bytes())

    # --- lifecycle ---

    def start(self) -> FeedServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes /slow handlers
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- content ---

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{self._scheme}://{host!s}:{port}"

    def url(self, path: str) -> str:
        """The absolute URL of a path on this server ("/feeds/x.rss")."""
        return self.base_url + (path if path.startswith("/") else f"/{path}")

    def add(
        self,
        path: str,
        body: bytes,
        content_type: str | None = None,
        *,
        last_modified: datetime = LAST_MODIFIED,
    ) -> str:
        """Serve `body` at `path` (replacing what was there: a new ETag); return its URL."""
        if content_type is None:
            content_type = _CONTENT_TYPES.get(Path(path).suffix, "application/xml")
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        with self._lock:
            self._documents[path] = Document(body, content_type, etag, last_modified)
        return self.url(path)

    def document(self, path: str) -> Document | None:
        with self._lock:
            return self._documents.get(path)

    # --- request log ---

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def requests_for(self, path: str) -> list[RequestRecord]:
        return [record for record in self.requests if urlsplit(record.path).path == path]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._log.append(record)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # the benchmark opens a few hundred connections at once
    feed_server: FeedServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (timeouts, size caps) are expected here, not errors.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self._route() == 0:
            self._log_request(0)

    def send_response(self, code: int, message: str | None = None) -> None:
        # Logged here, before a byte of the response is written, so a client that has its answer
        # always finds its request in the log.
        self._log_request(code)
        super().send_response(code, message)

    def _log_request(self, status: int) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.feed_server._record(RequestRecord(self.command, self.path, headers, status))

    # --- routing ---

    def _route(self) -> int:
        owner = self.server.feed_server
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        segments = path.strip("/").split("/")

        if path.startswith("/gzip/"):
            return self._serve(path[len("/gzip") :], gzip_body=True)
        if path.startswith("/redirect/") and len(segments) >= 3:
            return self._redirect(int(segments[1]), "/" + "/".join(segments[2:]))
        if path.startswith("/chain/") and len(segments) >= 3:
            left = int(segments[1])
            rest = "/" + "/".join(segments[2:])
            return self._redirect(301, f"/chain/{left - 1}{rest}" if left > 1 else rest)
        if path == "/redirect-to":
            return self._redirect(int(query.get("status", ["302"])[0]), query["to"][0])
        if path == "/loop/a":
            return self._redirect(302, "/loop/b")
        if path == "/loop/b":
            return self._redirect(302, "/loop/a")
        if path.startswith("/status/"):
            return self._status(int(segments[1]), query.get("retry_after", [None])[0])
        if path.startswith("/slow/") and len(segments) >= 3:
            owner._stopping.wait(float(segments[1]))
            return self._serve("/" + "/".join(segments[2:]))
        if path == "/huge":
            return self._huge()
        if path == "/huge-declared":
            return self._huge_declared()
        if path == "/gzip-bomb":
            return self._gzip_bomb()
        if path == "/drop":
            self.close_connection = True
            return 0
        return self._serve(path)

    # --- responses ---

    def _serve(self, path: str, *, gzip_body: bool = False) -> int:
        document = self.server.feed_server.document(path)
        if document is None:
            return self._plain(404, b"not found\n")
        if self._not_modified(document):
            self.send_response(304)
            self.send_header("ETag", document.etag)
            self.send_header("Last-Modified", format_datetime(document.last_modified, True))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return 304
        body = document.body
        self.send_response(200)
        self.send_header("Content-Type", document.content_type)
        self.send_header("ETag", document.etag)
        self.send_header("Last-Modified", format_datetime(document.last_modified, True))
        if gzip_body:
            body = gzip.compress(body)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return 200

    def _not_modified(self, document: Document) -> bool:
        # RFC 9110 13.2.2: If-None-Match wins over If-Modified-Since when both are sent.
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            return document.etag in tags or "*" in tags
        if_modified_since = self.headers.get("If-Modified-Since")
        if if_modified_since:
            try:
                since = parsedate_to_datetime(if_modified_since)
            except (TypeError, ValueError):
                return False
            return document.last_modified <= since
        return False

    def _redirect(self, code: int, location: str) -> int:
        self.send_response(code)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()
        return code

    def _status(self, code: int, retry_after: str | None) -> int:
        self.send_response(code)
        if code == 429:
            self.send_header("Retry-After", retry_after or "120")
        elif code == 503:
            self.send_header("Retry-After", retry_after or "Fri, 20 Nov 2026 12:00:00 GMT")
        body = f"status {code}\n".encode()
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return code

    def _plain(self, code: int, body: bytes) -> int:
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return code

    def _huge(self) -> int:
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>')
        for chunk in _filler(HUGE_BYTES):
            self.wfile.write(chunk)
        return 200

    def _huge_declared(self) -> int:
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(50 * 1024 * 1024))
        self.end_headers()
        self.close_connection = True
        self.wfile.write(b'<?xml version="1.0"?><rss version="2.0">')
        return 200

    def _gzip_bomb(self) -> int:
        body = _gzip_bomb_body()
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return 200


def _filler(size: int) -> Iterator[bytes]:
    item = b"<item><title>filler</title><description>" + b"x" * 4000 + b"</description></item>"
    for _ in range(size // len(item) + 1):
        yield item


_bomb_cache: list[bytes] = []


def _gzip_bomb_body() -> bytes:
    if not _bomb_cache:
        _bomb_cache.append(gzip.compress(b" " * HUGE_BYTES, compresslevel=9))
    return _bomb_cache[0]


@pytest.fixture(name="feed_server")
def feed_server_fixture() -> Iterator[FeedServer]:
    """A running FeedServer with the fixture feeds of tests/feeds/ under /feeds/."""
    with FeedServer() as server:
        yield server


# --- the benchmark's lean multi-host server ------------------------------------------------------

MAX_LOOPBACK_HOSTS = 253  # 127.0.0.2 … 127.0.0.254


@dataclass(frozen=True)
class _Prepared:
    """A document's answers, built once: the server's CPU is the client's competitor."""

    etag: str
    last_modified: datetime
    ok: bytes  # the whole 200 response, headers and body
    not_modified: bytes


def _prepare(body: bytes, content_type: str, last_modified: datetime) -> _Prepared:
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    date = format_datetime(last_modified, True)
    common = f"ETag: {etag}\r\nLast-Modified: {date}\r\n"
    ok = (
        f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n{common}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    not_modified = f"HTTP/1.1 304 Not Modified\r\n{common}Content-Length: 0\r\n\r\n".encode()
    return _Prepared(etag, last_modified, ok, not_modified)


_NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nnot found\n"
)


def _is_not_modified(document: _Prepared, headers: dict[str, str]) -> bool:
    # As _Handler._not_modified: If-None-Match wins over If-Modified-Since.
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return document.etag in tags or "*" in tags
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since:
        try:
            return document.last_modified <= parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
    return False


def prepare_directory(root: Path) -> dict[str, _Prepared]:
    """Every file of `root`, at /feeds/<name>, with its answers prepared."""
    return {
        f"/feeds/{path.name}": _prepare(
            path.read_bytes(), _CONTENT_TYPES.get(path.suffix, "application/xml"), LAST_MODIFIED
        )
        for path in sorted(root.iterdir())
        if path.is_file()
    }


async def serve_hosts(documents: dict[str, _Prepared], hosts: int, port: int = 0) -> None:
    """Serve `documents` on 127.0.0.2 … 127.0.0.<hosts+1>, one port, until cancelled."""
    if not 1 <= hosts <= MAX_LOOPBACK_HOSTS:
        raise ValueError(f"hosts must be 1..{MAX_LOOPBACK_HOSTS}")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").split("\r\n")
                method, target, _ = request_line.split(" ", 2)
                headers = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                document = documents.get(target.split("?", 1)[0]) if method == "GET" else None
                if document is None:
                    writer.write(_NOT_FOUND)
                elif _is_not_modified(document, headers):
                    writer.write(document.not_modified)
                else:
                    writer.write(document.ok)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
            ValueError,
        ):
            pass
        finally:
            writer.close()

    addresses = [f"127.0.0.{2 + i}" for i in range(hosts)]
    for attempt in range(5):
        servers: list[asyncio.Server] = []
        try:
            chosen = port
            # The first address picks the port when it is 0; the others must share it.
            for address in addresses:
                server = await asyncio.start_server(handle, address, chosen, backlog=512)
                servers.append(server)
                chosen = server.sockets[0].getsockname()[1]
            break
        except OSError:  # that port was taken on one of the other addresses
            for server in servers:
                server.close()
            if port or attempt == 4:
                raise
    port = chosen
    print(" ".join(f"http://{address}:{port}" for address in addresses), flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a directory of feeds at /feeds/<name>.")
    parser.add_argument("root", type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--hosts",
        type=int,
        default=0,
        help=f"lean mode: serve on 127.0.0.2 … 127.0.0.N+1 (N ≤ {MAX_LOOPBACK_HOSTS})",
    )
    args = parser.parse_args()
    if args.hosts:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_hosts(prepare_directory(args.root), args.hosts, args.port))
        return
    with FeedServer(args.root, port=args.port) as server:
        print(server.base_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
