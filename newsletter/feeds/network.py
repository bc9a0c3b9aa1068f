"""How the feed fetcher reaches servers: a lean GET client on httpx's transports, and under it an
httpcore network backend on plain asyncio streams.

httpcore's default backend goes through anyio, which wraps every connect, read and write in
cancel scopes, task groups and a library sniff. On a run where every feed answers 304 that
bookkeeping is a large share of the client's CPU: 200 such feeds took 633M instructions with
anyio's backend, 552M with this one, 408M with this one on uvloop (callgrind). Feeds are only ever
fetched from asyncio, and `fetch.py` bounds each download with one `asyncio.timeout`, so httpcore's
calls map straight onto `asyncio.open_connection`; a per-call timeout, when one is passed, is
still honoured. httpcore documents network backends as public API (encode/httpcore#699); httpx has
no parameter for one yet (encode/httpx#3749), hence `feed_transport`.
"""

# The `timeout` parameters are httpcore's interface, not ours to replace with asyncio.timeout.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import urllib.request
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpcore
import httpx
from httpcore._utils import is_socket_readable

__all__ = [
    "ACCEPT",
    "HAPPY_EYEBALLS_DELAY",
    "AsyncioBackend",
    "AsyncioStream",
    "HttpClient",
    "feed_transport",
    "ssl_context",
]

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
)

# RFC 8305's delay before racing the next address of a host (IPv4 after IPv6), as anyio does.
HAPPY_EYEBALLS_DELAY = 0.25


@contextlib.asynccontextmanager
async def _mapped(
    seconds: float | None, on_timeout: type[Exception], on_error: type[Exception]
) -> AsyncIterator[None]:
    """httpcore's exceptions for OS and timeout errors; no timer at all without a limit."""
    try:
        if seconds is None:
            yield
        else:
            async with asyncio.timeout(seconds):
                yield
    except TimeoutError as exc:
        raise on_timeout(str(exc) or "timed out") from exc
    except OSError as exc:  # ssl.SSLError and ConnectionError are OSErrors
        raise on_error(str(exc) or type(exc).__name__) from exc


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        async with _mapped(timeout, httpcore.ReadTimeout, httpcore.ReadError):
            return await self._reader.read(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        async with _mapped(timeout, httpcore.WriteTimeout, httpcore.WriteError):
            self._writer.write(buffer)
            await self._writer.drain()

    async def aclose(self) -> None:
        # abort(), not close(): httpcore closes a connection only when nothing is left to send,
        # and over TLS close() would send close_notify and hold the socket open for up to 30 s
        # waiting for the server's. anyio's backend drops TLS connections the same way.
        self._writer.transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with _mapped(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except BaseException:
            await self.aclose()
            raise
        return self  # the same reader and writer now speak TLS

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        if info == "is_readable":
            # httpcore asks before reusing a kept-alive connection: readable means the server
            # closed it (or sent garbage), so it must not be reused.
            sock = self._writer.get_extra_info("socket")
            return self._reader.at_eof() or (sock is not None and is_socket_readable(sock))
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        local_addr = (local_address, 0) if local_address else None
        async with _mapped(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
            if isinstance(asyncio.get_running_loop(), asyncio.BaseEventLoop):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=local_addr, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY
                )
            else:  # uvloop tries a host's addresses in turn and takes no delay argument
                reader, writer = await asyncio.open_connection(host, port, local_addr=local_addr)
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        async with _mapped(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
            reader, writer = await asyncio.open_unix_connection(path)
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def feed_transport(
    *, verify: ssl.SSLContext, limits: httpx.Limits, proxy: str | None
) -> httpx.AsyncHTTPTransport:
    """httpx's HTTP transport (its proxies, TLS and pooling) on `AsyncioBackend`.

    The backend goes into the transport's connection pool, which creates every connection
    (proxied or not) from it. Should httpx rename that attribute, the transport keeps anyio's
    backend: slower, still correct, and `test_network` fails to say so.
    """
    transport = httpx.AsyncHTTPTransport(verify=verify, limits=limits, proxy=proxy)
    pool = getattr(transport, "_pool", None)
    if isinstance(pool, httpcore.AsyncConnectionPool) and hasattr(pool, "_network_backend"):
        pool._network_backend = AsyncioBackend()
    return transport


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """httpx's default context (certifi's roots), made once per process: loading the roots
    takes 30-50 ms, a fifth of a run that finds every feed unchanged."""
    return httpx.create_ssl_context()


class HttpClient:
    """GET through httpx transports directly.

    An `httpx.AsyncClient` would add cookies, auth, event hooks and its own redirect handling
    to every request, none of which a feed fetcher wants (`fetch.py` follows redirects itself,
    checking each hop): skipping them saves about a third of the CPU of a run where every feed
    answers 304. Proxies from the environment (http_proxy, https_proxy, all_proxy, no_proxy)
    are honoured: one transport per proxy, made on first use.
    """

    def __init__(
        self, *, user_agent: str, connections: int, transport: httpx.AsyncBaseTransport | None
    ):
        self._limits = httpx.Limits(
            max_connections=connections, max_keepalive_connections=connections
        )
        self._given = transport
        self._transports: dict[str | None, httpx.AsyncBaseTransport] = {}
        self._proxies = urllib.request.getproxies_environment()
        self._headers = {
            "User-Agent": user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": "gzip, deflate",  # what httpx decodes without extra packages
        }
        # No per-operation timeouts: `fetch.py` bounds the whole exchange with one, and a timer
        # for every connect, read and write costs more than the request itself on a 304.
        self._timeout = httpx.Timeout(None).as_dict()

    def _transport(self, url: httpx.URL) -> httpx.AsyncBaseTransport:
        if self._given is not None:
            return self._given
        proxy = self._proxies.get(url.scheme) or self._proxies.get("all")
        if proxy and urllib.request.proxy_bypass(url.host):
            proxy = None
        transport = self._transports.get(proxy)
        if transport is None:
            transport = feed_transport(verify=ssl_context(), limits=self._limits, proxy=proxy)
            self._transports[proxy] = transport
        return transport

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for transport in self._transports.values():
            await transport.aclose()

    @contextlib.asynccontextmanager
    async def get(self, url: str, headers: dict[str, str]) -> AsyncIterator[httpx.Response]:
        request = httpx.Request(
            "GET", url, headers={**self._headers, **headers}, extensions={"timeout": self._timeout}
        )
        response = await self._transport(request.url).handle_async_request(request)
        response.request = request
        try:
            yield response
        finally:
            await response.aclose()
