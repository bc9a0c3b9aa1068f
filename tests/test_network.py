"""The feed fetcher's sockets (newsletter.feeds.network) against real peers on loopback.

Plain asyncio servers stand in for misbehaving web servers; https runs against the FeedServer
with a throwaway CA from trustme. Every test runs on both event loops (see conftest).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpcore
import httpx
import pytest

from newsletter.feeds import FeedRequest, FetchSettings, fetch_feeds
from newsletter.feeds.network import AsyncioBackend, AsyncioStream, feed_transport, ssl_context
from tests.feedserver import FeedServer, feed_server_fixture  # noqa: F401  (the fixture)

INLINE = FetchSettings(parse_workers=0, timeout=5)
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
StartServer = Callable[[Handler], Awaitable[tuple[int, list[int]]]]


@pytest.fixture
async def tcp_server() -> AsyncIterator[StartServer]:
    """Start an asyncio server on 127.0.0.1 with a handler; get its port and a list that counts
    the connections it accepted."""
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> tuple[int, list[int]]:
        accepted: list[int] = []

        async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(1)
            try:
                await handler(reader, writer)
            finally:
                writer.close()

        server = await asyncio.start_server(counted, "127.0.0.1", 0)
        servers.append(server)
        return server.sockets[0].getsockname()[1], accepted

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def _transport() -> httpx.AsyncHTTPTransport:
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    return feed_transport(verify=ssl.create_default_context(), limits=limits, proxy=None)


async def test_requests_travel_on_the_asyncio_backend(feed_server: FeedServer) -> None:
    async with httpx.AsyncClient(transport=_transport()) as client:
        response = await client.get(feed_server.url("/feeds/orinoco_tribune.rss"))
    assert response.status_code == 200
    assert isinstance(response.extensions["network_stream"], AsyncioStream)


async def test_round_trip_and_addresses(tcp_server: StartServer) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write((await reader.readexactly(5)).upper())
        await writer.drain()

    port, _ = await tcp_server(echo)
    stream = await AsyncioBackend().connect_tcp(
        "127.0.0.1",
        port,
        timeout=5,
        local_address="127.0.0.1",
        socket_options=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)],
    )
    try:
        await stream.write(b"hello", timeout=5)
        assert await stream.read(100, timeout=5) == b"HELLO"
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", port)
        assert stream.get_extra_info("client_addr")[0] == "127.0.0.1"
        sock = stream.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
        assert stream.get_extra_info("ssl_object") is None
    finally:
        await stream.aclose()


async def test_a_silent_server_is_a_read_timeout(
    tcp_server: StartServer,
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client goes

    port, _ = await tcp_server(silent)
    stream = await AsyncioBackend().connect_tcp("127.0.0.1", port)
    try:
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(100, timeout=0.1)
    finally:
        await stream.aclose()


async def test_a_refused_port_is_a_connect_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, and nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(httpcore.ConnectError):
        await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)


async def test_a_reset_is_a_read_error(
    tcp_server: StartServer,
) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        sock = writer.get_extra_info("socket")
        # SO_LINGER 0: close() sends a RST instead of a FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()

    port, _ = await tcp_server(reset)
    stream = await AsyncioBackend().connect_tcp("127.0.0.1", port)
    try:
        await stream.write(b"GET / HTTP/1.1\r\n\r\n")
        with pytest.raises(httpcore.ReadError):
            while await stream.read(100, timeout=5):
                pass
            raise ConnectionResetError("read an orderly EOF, not a reset")
    finally:
        await stream.aclose()


async def test_a_kept_alive_connection_the_server_closed_is_not_reused(
    tcp_server: StartServer,
) -> None:
    """The server promises keep-alive, then closes: the next request must open a new connection
    instead of failing on the dead one (httpcore asks the stream whether it is readable)."""

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
        await writer.drain()

    port, accepted = await tcp_server(answer_once)
    async with httpx.AsyncClient(transport=_transport()) as client:
        first = await client.get(f"http://127.0.0.1:{port}/a")
        await asyncio.sleep(0.05)  # the server's FIN arrives
        second = await client.get(f"http://127.0.0.1:{port}/b")
    assert (first.text, second.text) == ("ok", "ok")
    assert len(accepted) == 2


@pytest.fixture
def https_server(server_tls: ssl.SSLContext) -> Iterator[FeedServer]:
    with FeedServer(tls=server_tls) as server:
        yield server


@pytest.fixture
def trusted(ca_in_environment: None) -> Iterator[None]:
    """The fetcher trusts the throwaway CA: its cached context is made again, under the
    environment's SSL_CERT_FILE."""
    ssl_context.cache_clear()
    try:
        yield
    finally:
        ssl_context.cache_clear()


async def test_https_feed_is_fetched_and_refetched(https_server: FeedServer, trusted: None) -> None:
    url = https_server.url("/feeds/orinoco_tribune.rss")
    assert url.startswith("https://")
    [first] = await fetch_feeds([FeedRequest("Orinoco Tribune", url)], INLINE)
    assert first.status == "ok", first.error
    assert first.feed is not None and first.feed.entries
    again = FeedRequest("Orinoco Tribune", url, etag=first.etag)
    [second] = await fetch_feeds([again], INLINE)
    assert second.status == "not_modified", second.error


async def test_https_with_an_unknown_authority_is_refused(https_server: FeedServer) -> None:
    ssl_context.cache_clear()  # the default roots, which do not hold the test CA
    url = https_server.url("/feeds/orinoco_tribune.rss")
    [result] = await fetch_feeds([FeedRequest("Orinoco Tribune", url)], INLINE)
    assert result.status == "error"
    assert result.error is not None and "CERTIFICATE_VERIFY_FAILED" in result.error
    assert https_server.requests_for("/feeds/orinoco_tribune.rss") == []


async def test_start_tls_upgrades_the_same_stream(
    https_server: FeedServer, client_tls: ssl.SSLContext
) -> None:
    host, port = https_server.base_url.removeprefix("https://").split(":")
    stream = await AsyncioBackend().connect_tcp(host, int(port), timeout=5)
    try:
        tls = await stream.start_tls(client_tls, server_hostname=host, timeout=5)
        assert tls.get_extra_info("ssl_object") is not None
        await tls.write(b"GET /feeds/orinoco_tribune.rss HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
        assert (await tls.read(12, timeout=5)).startswith(b"HTTP/1.")
    finally:
        await stream.aclose()
