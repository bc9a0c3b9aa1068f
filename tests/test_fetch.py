"""fetch_feeds against a real HTTP server on loopback (tests/feedserver.py)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from newsletter.feeds import FeedRequest, FeedResult, FetchSettings, fetch_feeds
from newsletter.feeds.fetch import _retry_after
from tests.feedserver import FIXTURES, FeedServer, feed_server_fixture  # noqa: F401

# Parse in-process in most tests (fast, deterministic); the pool has its own tests below.
INLINE = FetchSettings(timeout=5.0, parse_workers=0)


async def fetch_one(server: FeedServer, path: str, settings: FetchSettings = INLINE) -> FeedResult:
    [result] = await fetch_feeds([FeedRequest("test", server.url(path))], settings)
    return result


async def test_first_fetch_parses_and_returns_validators(feed_server: FeedServer) -> None:
    result = await fetch_one(feed_server, "/feeds/orinoco_tribune.rss")

    assert result.status == "ok", result.error
    assert result.http_status == 200
    assert result.feed is not None
    assert len(result.feed.entries) == 4
    assert result.etag == feed_server.document("/feeds/orinoco_tribune.rss").etag  # type: ignore[union-attr]
    assert result.last_modified == "Thu, 19 Nov 2026 21:10:04 GMT"
    assert result.moved_to is None and result.error is None
    assert result.elapsed > 0


async def test_sends_user_agent_and_accept(feed_server: FeedServer) -> None:
    await fetch_one(feed_server, "/feeds/orinoco_tribune.rss")
    [request] = feed_server.requests_for("/feeds/orinoco_tribune.rss")
    assert request.headers["user-agent"] == FetchSettings().user_agent
    assert "application/rss+xml" in request.headers["accept"]
    assert "gzip" in request.headers["accept-encoding"]


async def test_conditional_refetch_is_not_modified_and_not_parsed(feed_server: FeedServer) -> None:
    first = await fetch_one(feed_server, "/feeds/orinoco_tribune.rss")
    again = FeedRequest("ot", first.url, etag=first.etag, last_modified=first.last_modified)

    [result] = await fetch_feeds([again], INLINE)

    assert result.status == "not_modified"
    assert result.http_status == 304
    assert result.feed is None  # nothing was parsed
    assert (result.etag, result.last_modified) == (first.etag, first.last_modified)
    sent = feed_server.requests_for("/feeds/orinoco_tribune.rss")[-1].headers
    assert sent["if-none-match"] == first.etag
    assert sent["if-modified-since"] == first.last_modified


async def test_if_modified_since_alone_gives_304(feed_server: FeedServer) -> None:
    request = FeedRequest(
        "vA",
        feed_server.url("/feeds/venezuelanalysis.atom"),
        last_modified=("Fri, 20 Nov 2026 00:00:00 GMT"),
    )
    [result] = await fetch_feeds([request], INLINE)
    assert result.status == "not_modified"


async def test_changed_feed_is_fetched_again_with_stable_identities(
    feed_server: FeedServer,
) -> None:
    first = await fetch_one(feed_server, "/feeds/orinoco_tribune.rss")
    # The outlet publishes: same items plus nothing new, but the bytes change (lastBuildDate).
    body = feed_server.document("/feeds/orinoco_tribune.rss").body  # type: ignore[union-attr]
    feed_server.add("/feeds/orinoco_tribune.rss", body.replace(b"21:10:04", b"22:45:00"))
    request = FeedRequest("ot", first.url, etag=first.etag, last_modified=first.last_modified)

    [second] = await fetch_feeds([request], INLINE)

    assert second.status == "ok"
    assert second.etag != first.etag
    assert first.feed is not None and second.feed is not None
    assert [e.identity for e in second.feed.entries] == [e.identity for e in first.feed.entries]


async def test_gzip_response_is_decoded(feed_server: FeedServer) -> None:
    result = await fetch_one(feed_server, "/gzip/feeds/venezuelanalysis.atom")
    assert result.status == "ok", result.error
    assert result.feed is not None and result.feed.title == "Venezuelanalysis"


@pytest.mark.parametrize("code", [301, 308])
async def test_permanent_redirect_is_reported_as_moved(feed_server: FeedServer, code: int) -> None:
    result = await fetch_one(feed_server, f"/redirect/{code}/feeds/venezuelanalysis.atom")
    assert result.status == "ok"
    assert result.moved_to == feed_server.url("/feeds/venezuelanalysis.atom")


@pytest.mark.parametrize("code", [302, 307])
async def test_temporary_redirect_is_followed_but_not_reported(
    feed_server: FeedServer, code: int
) -> None:
    result = await fetch_one(feed_server, f"/redirect/{code}/feeds/venezuelanalysis.atom")
    assert result.status == "ok"
    assert result.moved_to is None


async def test_chain_of_permanent_redirects_reports_the_end(feed_server: FeedServer) -> None:
    result = await fetch_one(feed_server, "/chain/3/feeds/venezuelanalysis.atom")
    assert result.status == "ok"
    assert result.moved_to == feed_server.url("/feeds/venezuelanalysis.atom")


async def test_mixed_redirects_are_not_reported(feed_server: FeedServer) -> None:
    # 301 to a 302: the 302's target is temporary, so the caller must keep its URL.
    result = await fetch_one(feed_server, "/redirect/301/redirect/302/feeds/venezuelanalysis.atom")
    assert result.status == "ok"
    assert result.moved_to is None


async def test_too_many_redirects(feed_server: FeedServer) -> None:
    result = await fetch_one(feed_server, "/chain/6/feeds/venezuelanalysis.atom")
    assert result.status == "error"
    assert "too many redirects" in (result.error or "")
    # The original request plus five redirects followed, and not one more.
    assert len(feed_server.requests) == 6


async def test_redirect_loop(feed_server: FeedServer) -> None:
    result = await fetch_one(feed_server, "/loop/a")
    assert result.status == "error"
    assert "redirect loop" in (result.error or "")
    assert len(feed_server.requests) == 2


@pytest.mark.parametrize(
    "target", ["ftp://127.0.0.1/feed.xml", "file:///etc/passwd", "javascript:alert(1)"]
)
async def test_redirect_to_other_scheme_is_refused(feed_server: FeedServer, target: str) -> None:
    result = await fetch_one(feed_server, f"/redirect-to?status=301&to={target}")
    assert result.status == "error"
    # Refused by our scheme check, or earlier by httpx's URL parser: either way before any I/O.
    assert "refusing URL scheme" in (result.error or "") or "invalid URL" in (result.error or "")
    assert result.moved_to is None


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/feed", "feed.xml", ""])
async def test_non_http_request_is_refused_without_io(url: str) -> None:
    [result] = await fetch_feeds([FeedRequest("bad", url)], INLINE)
    assert result.status == "error"
    assert result.http_status is None
    assert result.error


async def test_gone(feed_server: FeedServer) -> None:
    result = await fetch_one(feed_server, "/status/410")
    assert result.status == "gone"
    assert result.http_status == 410


async def test_429_reports_retry_after_in_seconds(feed_server: FeedServer) -> None:
    before = datetime.now(UTC)
    started = time.monotonic()
    result = await fetch_one(feed_server, "/status/429")
    assert time.monotonic() - started < 2  # reported, not slept on
    assert result.status == "error"
    assert result.http_status == 429
    assert result.retry_after is not None
    assert before + timedelta(seconds=119) <= result.retry_after
    assert result.retry_after <= datetime.now(UTC) + timedelta(seconds=121)
    assert "429" in (result.error or "")


async def test_503_reports_retry_after_as_http_date(feed_server: FeedServer) -> None:
    result = await fetch_one(feed_server, "/status/503")
    assert result.status == "error"
    assert result.retry_after is not None
    assert result.retry_after.tzinfo is not None
    # The server's date, unless it is more than a week away (then capped).
    expected = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert result.retry_after <= expected


def test_retry_after_parsing() -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert _retry_after("30", now=now) == now + timedelta(seconds=30)
    assert _retry_after("Fri, 20 Nov 2026 13:00:00 GMT", now=now) == now + timedelta(hours=1)
    assert _retry_after("99999999", now=now) == now + timedelta(days=7)  # capped
    assert _retry_after("soon", now=now) is None
    assert _retry_after(None, now=now) is None


async def test_server_error(feed_server: FeedServer) -> None:
    result = await fetch_one(feed_server, "/status/500")
    assert result.status == "error"
    assert result.http_status == 500
    assert result.error == "HTTP 500 Internal Server Error"


async def test_timeout_is_per_feed(feed_server: FeedServer) -> None:
    settings = FetchSettings(timeout=0.5, parse_workers=0)
    started = time.monotonic()
    result = await fetch_one(feed_server, "/slow/10/feeds/orinoco_tribune.rss", settings)
    assert time.monotonic() - started < 3
    assert result.status == "error"
    assert "timed out" in (result.error or "")


async def test_streamed_body_over_the_cap_is_refused(feed_server: FeedServer) -> None:
    result = await fetch_one(feed_server, "/huge")
    assert result.status == "error"
    assert "too large" in (result.error or "")


async def test_declared_length_over_the_cap_is_refused_before_reading(
    feed_server: FeedServer,
) -> None:
    result = await fetch_one(feed_server, "/huge-declared")
    assert result.status == "error"
    assert "declared" in (result.error or "")


async def test_gzip_bomb_is_capped_on_decoded_size(feed_server: FeedServer) -> None:
    result = await fetch_one(feed_server, "/gzip-bomb")
    assert result.status == "error"
    assert "too large" in (result.error or "")


async def test_small_cap(feed_server: FeedServer) -> None:
    settings = FetchSettings(max_bytes=1000, parse_workers=0)
    result = await fetch_one(feed_server, "/feeds/orinoco_tribune.rss", settings)
    assert result.status == "error"
    assert "too large" in (result.error or "")


async def test_html_page_is_a_parse_error_without_validators(feed_server: FeedServer) -> None:
    result = await fetch_one(feed_server, "/feeds/not_a_feed.html")
    assert result.status == "error"
    assert result.http_status == 200
    assert "not an RSS or Atom feed" in (result.error or "")
    # No ETag stored, or the next conditional GET would hide a fixed feed behind a 304.
    assert result.etag is None and result.last_modified is None


async def test_dropped_connection_and_refused_port(feed_server: FeedServer) -> None:
    dropped = await fetch_one(feed_server, "/drop")
    [refused] = await fetch_feeds([FeedRequest("closed", "http://127.0.0.1:9/feed")], INLINE)
    assert dropped.status == "error" and dropped.error
    assert refused.status == "error" and refused.error
    assert "\n" not in (dropped.error or "") + (refused.error or "")


async def test_one_broken_feed_never_stops_the_others(feed_server: FeedServer) -> None:
    paths = [
        "/feeds/orinoco_tribune.rss",
        "/status/500",
        "/feeds/venezuelanalysis.atom",
        "/slow/10/feeds/telesur_es.rss",
        "/loop/a",
        "/feeds/not_a_feed.html",
        "/huge",
        "/redirect-to?status=302&to=ftp://x/y",
        "/drop",
        "/feeds/mexico_solidarity.rdf",
    ]
    requests = [FeedRequest(f"feed{i}", feed_server.url(p)) for i, p in enumerate(paths)]
    requests.append(FeedRequest("invalid", "not a url at all"))
    seen: list[str] = []

    results = await fetch_feeds(
        requests,
        FetchSettings(timeout=1.0, parse_workers=0),
        on_result=lambda r: seen.append(r.key),
    )

    assert [r.key for r in results] == [r.key for r in requests]  # request order
    assert sorted(seen) == sorted(r.key for r in requests)  # each reported once
    statuses = {r.url.removeprefix(feed_server.base_url): r.status for r in results}
    assert statuses["/feeds/orinoco_tribune.rss"] == "ok"
    assert statuses["/feeds/venezuelanalysis.atom"] == "ok"
    assert statuses["/feeds/mexico_solidarity.rdf"] == "ok"
    assert [r.status for r in results].count("error") == 8
    assert all(r.error and "\n" not in r.error for r in results if r.status == "error")


async def test_on_result_is_called_as_each_feed_finishes(feed_server: FeedServer) -> None:
    order: list[str] = []
    requests = [
        FeedRequest("slow", feed_server.url("/slow/0.5/feeds/orinoco_tribune.rss")),
        FeedRequest("fast", feed_server.url("/feeds/venezuelanalysis.atom")),
    ]
    await fetch_feeds(requests, INLINE, on_result=lambda r: order.append(r.key))
    assert order == ["fast", "slow"]


async def test_per_host_limit_bounds_concurrency(feed_server: FeedServer) -> None:
    settings = FetchSettings(per_host=2, concurrency=32, parse_workers=0)
    requests = [
        FeedRequest(f"f{i}", feed_server.url(f"/slow/0.3/feeds/orinoco_tribune.rss?{i}"))
        for i in range(6)
    ]
    started = time.monotonic()
    results = await fetch_feeds(requests, settings)
    elapsed = time.monotonic() - started
    assert all(r.status == "ok" for r in results)
    # Six 0.3 s downloads, two at a time: three rounds, not one.
    assert elapsed >= 0.85


async def test_global_limit_bounds_concurrency(feed_server: FeedServer) -> None:
    settings = FetchSettings(per_host=10, concurrency=3, parse_workers=0)
    requests = [
        FeedRequest(f"f{i}", feed_server.url(f"/slow/0.3/feeds/orinoco_tribune.rss?{i}"))
        for i in range(6)
    ]
    started = time.monotonic()
    await fetch_feeds(requests, settings)
    assert time.monotonic() - started >= 0.55


async def test_parsing_in_worker_processes(feed_server: FeedServer) -> None:
    names = ["orinoco_tribune.rss", "venezuelanalysis.atom", "mexico_solidarity.rdf", "hostile.rss"]
    requests = [FeedRequest(n, feed_server.url(f"/feeds/{n}")) for n in names]
    pooled = await fetch_feeds(requests, FetchSettings(parse_workers=2))
    inline = await fetch_feeds(requests, INLINE)
    assert [r.status for r in pooled] == ["ok"] * 4
    assert [r.feed for r in pooled] == [r.feed for r in inline]


async def test_parse_error_in_worker_becomes_an_error_result(feed_server: FeedServer) -> None:
    requests = [
        FeedRequest("html", feed_server.url("/feeds/not_a_feed.html")),
        FeedRequest("ok", feed_server.url("/feeds/orinoco_tribune.rss")),
    ]
    html, ok = await fetch_feeds(requests, FetchSettings(parse_workers=1))
    assert html.status == "error" and "not an RSS or Atom feed" in (html.error or "")
    assert ok.status == "ok"


async def test_not_modified_run_starts_no_worker_processes(feed_server: FeedServer) -> None:
    first = await fetch_one(feed_server, "/feeds/orinoco_tribune.rss")
    requests = [FeedRequest(str(i), first.url, etag=first.etag) for i in range(3)]
    started = time.monotonic()
    results = await fetch_feeds(requests, FetchSettings(parse_workers=2))
    assert [r.status for r in results] == ["not_modified"] * 3
    assert time.monotonic() - started < 0.5  # no process pool was started


async def test_empty_request_list() -> None:
    assert await fetch_feeds([]) == []


async def test_fetch_is_cancellable(feed_server: FeedServer) -> None:
    task = asyncio.create_task(fetch_one(feed_server, "/slow/10/feeds/orinoco_tribune.rss"))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _only_proxy(monkeypatch: pytest.MonkeyPatch, proxy: str, no_proxy: str = "") -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("http_proxy", proxy)
    if no_proxy:
        monkeypatch.setenv("no_proxy", no_proxy)


async def test_an_http_proxy_from_the_environment_is_used(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The feed server answers absolute-form requests, as a forward proxy receives them.
    _only_proxy(monkeypatch, feed_server.base_url)
    url = "http://outlet.invalid/feeds/orinoco_tribune.rss"
    [result] = await fetch_feeds([FeedRequest("ot", url)], INLINE)
    assert result.status == "ok", result.error
    [record] = feed_server.requests_for("/feeds/orinoco_tribune.rss")
    assert record.path == url


async def test_no_proxy_hosts_are_fetched_directly(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _only_proxy(monkeypatch, "http://127.0.0.1:9", no_proxy="127.0.0.1")  # port 9: nobody
    [result] = await fetch_feeds(
        [FeedRequest("ot", feed_server.url("/feeds/orinoco_tribune.rss"))], INLINE
    )
    assert result.status == "ok", result.error


async def test_results_can_leave_their_feeds_to_on_result() -> None:
    body = (FIXTURES / "orinoco_tribune.rss").read_bytes()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    seen: list[FeedResult] = []
    requests = [FeedRequest(f"f{i}", f"https://outlet{i}.example/feed") for i in range(3)]
    results = await fetch_feeds(
        requests, INLINE, transport=transport, on_result=seen.append, keep_feeds=False
    )
    assert [r.status for r in results] == ["ok"] * 3
    assert all(r.feed is None for r in results)
    assert all(r.feed is not None and r.feed.entries for r in seen)


async def test_downloads_wait_for_the_parsers_instead_of_piling_up_in_memory() -> None:
    body = (FIXTURES / "orinoco_tribune.rss").read_bytes()
    started = 0
    finished = 0
    most_waiting = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal started, most_waiting
        started += 1
        most_waiting = max(most_waiting, started - finished)
        return httpx.Response(200, content=body)

    def done(result: FeedResult) -> None:
        nonlocal finished
        finished += 1

    settings = FetchSettings(timeout=30.0, concurrency=2, parse_workers=1)
    requests = [FeedRequest(f"f{i}", f"https://outlet{i}.example/feed") for i in range(30)]
    results = await fetch_feeds(
        requests, settings, transport=httpx.MockTransport(answer), on_result=done
    )
    assert {r.status for r in results} == {"ok"}
    # the in-memory transport answers at once: without the bound all 30 would be waiting
    assert most_waiting <= 2 * settings.concurrency


async def test_an_async_on_result_is_awaited_and_holds_back_the_downloads() -> None:
    """The pipeline stores each feed in a thread: until a store is done, its feed keeps its
    place in the backlog, so a slow database slows the downloads instead of piling them up."""
    body = (FIXTURES / "orinoco_tribune.rss").read_bytes()
    answered = 0
    gate = asyncio.Event()
    stored: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal answered
        answered += 1
        return httpx.Response(200, content=body)

    async def store(result: FeedResult) -> None:
        await gate.wait()
        stored.append(result.key)

    settings = FetchSettings(timeout=30.0, concurrency=2, parse_workers=0)
    requests = [FeedRequest(f"f{i}", f"https://outlet{i}.example/feed") for i in range(12)]
    run = asyncio.create_task(
        fetch_feeds(requests, settings, transport=httpx.MockTransport(answer), on_result=store)
    )
    await asyncio.sleep(0.3)
    assert answered == 2 * settings.concurrency  # the backlog is full of feeds being stored
    assert stored == []
    gate.set()
    results = await run
    assert {r.status for r in results} == {"ok"}
    assert sorted(stored) == sorted(r.key for r in requests)
