"""The feeds stage: fetch feeds over HTTP, parse them, sanitize their HTML. No database here.

    results = await fetch_feeds([FeedRequest("Venezuelanalysis", url, etag=..., last_modified=...)])

`fetch_feeds` returns one `FeedResult` per request and never raises for one bad feed. Parsing alone
(`parse_feed`) takes bytes and does no I/O; `canonical_link` is the cross-outlet key of a story.
"""

from newsletter.feeds.fetch import FeedRequest, FeedResult, FetchSettings, FetchStatus, fetch_feeds
from newsletter.feeds.links import canonical_link
from newsletter.feeds.parse import ParsedEntry, ParsedFeed, parse_feed

__all__ = [
    "FeedRequest",
    "FeedResult",
    "FetchSettings",
    "FetchStatus",
    "ParsedEntry",
    "ParsedFeed",
    "canonical_link",
    "fetch_feeds",
    "parse_feed",
]
