"""Fetch many feeds at once, politely, and parse them: the only I/O in `newsletter.feeds`.

Every feed ends as one `FeedResult`; nothing a feed's server does (refusing, stalling, redirecting
in circles, sending a gigabyte, sending HTML) raises out of `fetch_feeds` or delays the others more
than its own timeout. Downloads run on one event loop, bounded by a global pool and a per-host
limit. Parsing is CPU-bound (feedparser, sanitizing) so it runs in worker processes, and a feed
gives back its network slot before it is parsed: the downloads and the parses overlap.

This module decides what to fetch and what an answer means (redirects, validators, caps, status
codes); `network` carries the requests, `workers` runs the parser.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import urljoin, urlsplit

import httpx

from newsletter.errors import FetchError, ParseError
from newsletter.feeds.network import HttpClient
from newsletter.feeds.parse import ParsedFeed
from newsletter.feeds.workers import Parser, parser

__all__ = ["FeedRequest", "FeedResult", "FetchSettings", "FetchStatus", "fetch_feeds"]

FetchStatus = Literal["ok", "not_modified", "gone", "error"]

_PERMANENT_REDIRECTS = frozenset({301, 308})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ALLOWED_SCHEMES = frozenset({"http", "https"})
# A Retry-After further away than this is reported as this: a server's typo should not silence a
# feed for a month.
_MAX_RETRY_AFTER = timedelta(days=7)


@dataclass(frozen=True)
class FetchSettings:
    timeout: float = 20.0  # seconds per feed, for the whole download including redirects
    max_bytes: int = 10 * 1024 * 1024  # decoded body size; larger feeds are refused
    concurrency: int = 32  # downloads in flight at once
    per_host: int = 4  # downloads in flight per host, so one publisher's server is not hammered
    max_redirects: int = 5
    user_agent: str = "newsletter/0.1 (+https://github.com/newsletter)"
    # Processes that parse; None means one per CPU, 0 parses in this process (tests, tiny runs).
    parse_workers: int | None = None


@dataclass(frozen=True)
class FeedRequest:
    key: str  # the source's name
    url: str
    etag: str | None = None  # from the previous successful fetch, for a conditional GET
    last_modified: str | None = None


@dataclass(frozen=True)
class FeedResult:
    key: str
    url: str  # as requested
    status: FetchStatus
    http_status: int | None
    moved_to: str | None  # the final URL when every redirect was permanent: store it
    etag: str | None
    last_modified: str | None
    retry_after: datetime | None  # when a 429/503 asked us to come back
    feed: ParsedFeed | None  # when status == "ok"
    error: str | None  # one line for the admin
    elapsed: float  # seconds


@dataclass
class _Download:
    """What the network side hands to the parsing side."""

    status: FetchStatus
    http_status: int | None = None
    final_url: str = ""
    moved_to: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    retry_after: datetime | None = None
    content_type: str | None = None
    body: bytes = b""
    error: str | None = None
    started: float = field(default_factory=time.perf_counter)


async def fetch_feeds(
    requests: Sequence[FeedRequest],
    settings: FetchSettings = FetchSettings(),  # frozen, so sharing it is safe
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    on_result: Callable[[FeedResult], Awaitable[None] | None] | None = None,
    keep_feeds: bool = True,
) -> list[FeedResult]:
    """Fetch and parse every request; return one result per request, in the same order.

    `on_result` is called on the event loop as each feed finishes, in completion order; when it
    returns an awaitable (storing the feed in a thread, say), that is awaited before the feed's
    place in the backlog is given to the next download.
    With `keep_feeds=False` the results returned carry no parsed feed (`on_result` had it), so
    memory stays flat however many feeds a run has. `transport` replaces httpx's network
    transport (tests).
    """
    if not requests:
        return []
    global_slots = asyncio.Semaphore(settings.concurrency)
    # Bodies downloaded and not yet parsed: loopback or a fast network outruns the parsers,
    # and without a bound every feed of a large run would wait in memory at once.
    backlog = asyncio.Semaphore(2 * settings.concurrency)
    host_slots: dict[str, asyncio.Semaphore] = {}
    async with (
        HttpClient(
            user_agent=settings.user_agent, connections=settings.concurrency, transport=transport
        ) as client,
        parser(settings.parse_workers, len(requests)) as parsing,
    ):

        async def one(request: FeedRequest) -> FeedResult:
            host = _host(request.url)
            slot = host_slots.setdefault(host, asyncio.Semaphore(settings.per_host))
            # The host slot first: a task waiting for a busy host must not sit on the others.
            async with slot:
                await backlog.acquire()
                try:
                    async with global_slots:
                        download = await _download(client, request, settings)
                except BaseException:
                    backlog.release()
                    raise
            try:
                result = await _finish(request, download, parsing)
                if on_result is not None and (storing := on_result(result)) is not None:
                    await storing  # holding the backlog slot: a slow store slows the downloads
            finally:
                backlog.release()
            return result if keep_feeds else dataclasses.replace(result, feed=None)

        return list(await asyncio.gather(*(one(request) for request in requests)))


# --- downloading ---------------------------------------------------------------------------------


async def _download(client: HttpClient, request: FeedRequest, settings: FetchSettings) -> _Download:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(settings.timeout):
            download = await _follow(client, request, settings)
    except TimeoutError:
        download = _Download("error", error=f"timed out after {settings.timeout:g}s")
    except FetchError as exc:
        download = _Download("error", error=str(exc))
    except httpx.HTTPError as exc:
        download = _Download("error", error=_describe_http_error(exc))
    except httpx.InvalidURL as exc:
        # httpx prepares the next request of a redirect even when it is not following it, so a
        # Location it cannot parse ("javascript:alert(1)") surfaces here.
        download = _Download("error", error=f"invalid URL: {exc}")
    except Exception as exc:  # one feed's surprise must not stop the others
        download = _Download("error", error=f"unexpected {type(exc).__name__}: {exc}")
    download.started = started
    return download


async def _follow(client: HttpClient, request: FeedRequest, settings: FetchSettings) -> _Download:
    """GET the feed, following at most max_redirects redirects to http(s) URLs."""
    conditional: dict[str, str] = {}
    if request.etag:
        conditional["If-None-Match"] = request.etag
    if request.last_modified:
        conditional["If-Modified-Since"] = request.last_modified

    url = request.url
    seen = {url}
    all_permanent = True
    for _ in range(settings.max_redirects + 1):
        _check_scheme(url)
        async with client.get(url, conditional) as response:
            code = response.status_code
            if code in _REDIRECTS and "location" in response.headers:
                all_permanent &= code in _PERMANENT_REDIRECTS
                target = urljoin(url, response.headers["location"].strip())
                if target in seen:
                    raise FetchError(f"redirect loop: {url} -> {target}")
                seen.add(target)
                url = target
                continue
            download = await _read(response, settings)
            download.final_url = url
            # Only a redirect that led to a feed is worth remembering.
            if url != request.url and all_permanent and download.status in ("ok", "not_modified"):
                download.moved_to = url
            return download
    raise FetchError(f"too many redirects (more than {settings.max_redirects})")


async def _read(response: httpx.Response, settings: FetchSettings) -> _Download:
    code = response.status_code
    if code == 304:
        return _Download("not_modified", http_status=code)
    if code == 410:
        return _Download("gone", http_status=code, error="HTTP 410 Gone: the feed was removed")
    if code in (429, 503):
        retry_after = _retry_after(response.headers.get("retry-after"))
        when = f"; retry after {retry_after:%Y-%m-%d %H:%M} UTC" if retry_after else ""
        return _Download(
            "error",
            http_status=code,
            retry_after=retry_after,
            error=f"HTTP {code} {response.reason_phrase}{when}",
        )
    if not 200 <= code < 300:
        return _Download("error", http_status=code, error=f"HTTP {code} {response.reason_phrase}")

    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_bytes:
        raise FetchError(
            f"feed too large: {int(declared)} bytes declared, cap {settings.max_bytes}"
        )
    chunks: list[bytes] = []
    size = 0
    # aiter_bytes yields the *decoded* body, so the cap also stops gzip bombs.
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > settings.max_bytes:
            raise FetchError(f"feed too large: more than {settings.max_bytes} bytes")
        chunks.append(chunk)
    return _Download(
        "ok",
        http_status=code,
        etag=response.headers.get("etag"),
        last_modified=response.headers.get("last-modified"),
        content_type=response.headers.get("content-type"),
        body=b"".join(chunks),
    )


def _check_scheme(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise FetchError(f"invalid URL {url!r}: {exc}") from None
    if parts.scheme.lower() not in _ALLOWED_SCHEMES:
        raise FetchError(f"refusing URL scheme {parts.scheme or '(none)'!r}: {url}")
    if not parts.hostname:
        raise FetchError(f"invalid URL, no host: {url}")


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _retry_after(value: str | None, *, now: datetime | None = None) -> datetime | None:
    """Retry-After as an aware UTC datetime; it is either seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    now = now or datetime.now(UTC)
    value = value.strip()
    if value.isdigit():
        when = now + min(timedelta(seconds=int(value)), _MAX_RETRY_AFTER)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" dates come back naive; HTTP dates are GMT
            when = when.replace(tzinfo=UTC)
        when = min(when.astimezone(UTC), now + _MAX_RETRY_AFTER)
    return when


def _describe_http_error(exc: httpx.HTTPError) -> str:
    kinds: dict[type[httpx.HTTPError], str] = {
        httpx.ConnectError: "could not connect",
        httpx.ConnectTimeout: "connection timed out",
        httpx.ReadTimeout: "read timed out",
        httpx.RemoteProtocolError: "broken HTTP response",
        httpx.UnsupportedProtocol: "unsupported URL",
        httpx.DecodingError: "could not decode the response body",
        httpx.TooManyRedirects: "too many redirects",
    }
    kind = kinds.get(type(exc), type(exc).__name__)
    detail = " ".join(str(exc).split())
    return f"{kind}: {detail}" if detail else kind


# --- parsing -------------------------------------------------------------------------------------


async def _finish(request: FeedRequest, download: _Download, parser: Parser) -> FeedResult:
    feed: ParsedFeed | None = None
    status, error = download.status, download.error
    etag, last_modified = download.etag, download.last_modified
    if status == "ok":
        try:
            feed = await parser.parse(download.body, download.final_url, download.content_type)
        except ParseError as exc:
            status, error = "error", str(exc)
        except Exception as exc:  # a parser crash is this feed's problem only
            status, error = "error", f"could not parse: {type(exc).__name__}: {exc}"
        if status == "error":
            # Do not store validators for a body we could not read, or the next conditional GET
            # would get a 304 and we would never see the feed again until it changed.
            etag = last_modified = None
    elif status == "not_modified":
        # 304s often omit the validators; the ones we sent are still the current ones.
        etag = etag or request.etag
        last_modified = last_modified or request.last_modified
    return FeedResult(
        key=request.key,
        url=request.url,
        status=status,
        http_status=download.http_status,
        moved_to=download.moved_to,
        etag=etag,
        last_modified=last_modified,
        retry_after=download.retry_after,
        feed=feed,
        error=error,
        elapsed=time.perf_counter() - download.started,
    )
