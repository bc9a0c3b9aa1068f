"""Turn the bytes of an RSS or Atom document into `ParsedFeed` values. No I/O happens here.

feedparser does the format work (RSS 0.9x/1.0/2.0, Atom 0.3/1.0, encodings, dates, the liberal
parser for broken XML). Two of its features are turned off because they are its historical
weak spots and because we do the job ourselves: its HTML sanitizer (we use nh3, see
`newsletter.sanitize`) and its relative-URI rewriting inside content (we absolutize links while
sanitizing). It is always handed the bytes in a stream: given a `str` or `bytes` that looks like a
URL or a path, feedparser would fetch or open it.

Outlets such as Orinoco Tribune and Mexico Solidarity Media wrap their articles in credits
("By Prince Kapone – Jan 30, 2026", "This article by … originally appeared in La Jornada",
"Translation: Orinoco Tribune", "(Telesur)"); the excerpt skips them to start at the story.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from newsletter.errors import ParseError
from newsletter.feeds import speedups
from newsletter.feeds.links import canonical_link
from newsletter.sanitize import clean_html, excerpt, html_to_text

__all__ = ["EXCERPT_LENGTH", "ParsedEntry", "ParsedFeed", "parse_feed"]

EXCERPT_LENGTH = 280

speedups.apply()


@dataclass(frozen=True)
class ParsedEntry:
    """One item of a feed, cleaned and ready to store."""

    identity: (
        str  # guid, else canonical link, else sha256 of title + summary: stable across fetches
    )
    guid: str | None
    link: str | None  # absolute http(s)
    title: str  # plain text
    summary_html: str  # sanitized
    excerpt: str  # plain text, the opening of the article, at most EXCERPT_LENGTH characters
    author: str | None
    published: datetime | None  # aware, UTC


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    link: str | None
    entries: tuple[ParsedEntry, ...]
    warning: str | None  # what feedparser complained about when it still found a feed


def parse_feed(data: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse a fetched document. `url` is where it came from (the base for relative links).

    Raises ParseError when the bytes hold no feed at all.
    """
    # Without a Content-Type feedparser flags every document; application/xml is the neutral
    # choice: the XML declaration then decides the encoding, as it should. No Content-Location:
    # with a base URI feedparser re-joins it on every element (a tenth of its time); it still
    # tracks xml:base, and links are made absolute against `url` below.
    headers = {"content-type": content_type or "application/xml"}
    parsed = feedparser.parse(
        io.BytesIO(_without_entity_declarations(data)),
        response_headers=headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    warning = _bozo_message(parsed)
    if not parsed.get("version") and not parsed.entries:
        if not data.strip():
            raise ParseError("empty document")
        raise ParseError("not an RSS or Atom feed" + (f" ({warning})" if warning else ""))

    channel = parsed.feed
    feed_link = _absolute(channel.get("link"), url)
    entries = tuple(_entry(raw, base=url) for raw in parsed.entries)
    title = _plain(channel.get("title")) or None
    return ParsedFeed(title=title, link=feed_link, entries=entries, warning=warning)


# A DOCTYPE with an internal subset: `<!DOCTYPE rss [ <!ENTITY …> ]>`.
_DOCTYPE_WITH_SUBSET = re.compile(rb"<!DOCTYPE[^>\[]*\[.*?\]\s*>", re.S | re.I)
_PROLOG_BYTES = 64 * 1024


def _without_entity_declarations(data: bytes) -> bytes:
    """Drop a DOCTYPE that declares entities before the XML parser sees it.

    No real feed needs its own entities, and nested ones ("billion laughs") make expat expand
    megabytes of text, one feedparser callback per piece, before its amplification limit stops
    it: seconds of CPU per hostile feed. (External entities are never loaded either way.)
    """
    head = data[:_PROLOG_BYTES]
    if b"<!ENTITY" not in head and b"<!entity" not in head:
        return data
    stripped, count = _DOCTYPE_WITH_SUBSET.subn(b"", head, count=1)
    return stripped + data[_PROLOG_BYTES:] if count else data


def _bozo_message(parsed: Any) -> str | None:
    if not parsed.get("bozo"):
        return None
    exc = parsed.get("bozo_exception")
    message = " ".join(str(exc).split()) if exc is not None else ""
    return message or type(exc).__name__


def _entry(raw: Any, *, base: str) -> ParsedEntry:
    link = _absolute(raw.get("link"), base)
    guid = (raw.get("id") or "").strip() or None
    title = _plain(raw.get("title"))

    content_html = _content_html(raw)
    summary_source = raw.get("summary") or ""
    # feedparser fills `summary` from content:encoded when there is no description; then the
    # summary *is* the article and we keep it whole. Relative links in it are relative to the
    # document (xml:base, else the feed's URL), which feedparser tracks per element.
    content_base = urljoin(base, (raw.get("summary_detail") or {}).get("base") or "")
    summary_html = clean_html(summary_source or content_html, base_url=content_base)

    # The excerpt comes from the fullest text, as nh3 reads it: it parses HTML the way a browser
    # does, so whatever broken markup a feed sends, only visible text is left.
    if content_html and content_html != summary_source:
        body_lines, byline = _opening(content_html)
    else:
        body_lines, byline = _opening(summary_html)
    author = _author(raw) or byline

    if not title:
        title = excerpt(" ".join(body_lines), 80) if body_lines else ""
    return ParsedEntry(
        identity=_identity(guid, link, title, summary_source or content_html),
        guid=guid,
        link=link,
        title=title,
        summary_html=summary_html,
        excerpt=excerpt(" ".join(body_lines), EXCERPT_LENGTH),
        author=author,
        published=_date(_raw_get(raw, "published_parsed"))
        or _date(_raw_get(raw, "updated_parsed")),
    )


# The excerpt needs the opening of an article, not all of it: reading only its head keeps the
# cost per entry flat however long the article (full texts in content:encoded run to 50 KB).
# A short head usually holds enough text; markup-heavy openings (figures, embeds) need more.
_HEADS = (2500, 8000)


def _opening(html: str) -> tuple[list[str], str | None]:
    """The article's lines without credits, captions and byline; and the byline's name.

    Reads the head of `html` first, and all of it only when the head held too little text.
    html_to_text parses the markup as a browser does and keeps only its visible text, so the raw
    feed HTML is read directly: sanitizing it first would parse it twice for the same text.
    """
    parts = [html[:size] for size in _HEADS if len(html) > size] + [html]
    for part in parts:
        lines, byline = _strip_credits(html_to_text(part).splitlines())
        lines = _drop_captions(lines)
        if sum(map(len, lines)) >= 2 * EXCERPT_LENGTH:
            break
    return lines, byline


def _raw_get(raw: Any, key: str) -> Any:
    # Plain dict access: FeedParserDict.get("published_parsed") falls back to updated_parsed
    # with a DeprecationWarning; we make that choice ourselves.
    return dict.get(raw, key)


def _content_html(raw: Any) -> str:
    """The fullest body the entry has: content:encoded / atom:content, preferring HTML parts."""
    contents = raw.get("content") or []
    html_parts = [c.get("value", "") for c in contents if "html" in (c.get("type") or "")]
    parts = html_parts or [c.get("value", "") for c in contents]
    return max(parts, key=len, default="")


def _identity(guid: str | None, link: str | None, title: str, summary: str) -> str:
    if guid:
        return guid
    if link:
        return canonical_link(link)
    digest = hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()
    return f"sha256:{digest}"


def _absolute(link: object, base: str) -> str | None:
    """`link` resolved against `base`, if the result is an http(s) URL."""
    if not isinstance(link, str) or not link.strip():
        return None
    try:
        absolute = urljoin(base, link.strip())
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return absolute


def _plain(value: object) -> str:
    """A title as one line of plain text.

    Titles are always read as HTML: feedparser calls a title "text/plain" when its markup is not
    on its own list of harmless tags, so "<script>…</script>" in a title would otherwise survive.
    """
    if not isinstance(value, str):
        return ""
    return " ".join(html_to_text(value).split())


def _author(raw: Any) -> str | None:
    # author_detail.name is set for dc:creator, atom:author and RSS's "email (Name)" form alike.
    detail = raw.get("author_detail") or {}
    name = detail.get("name") or raw.get("author") or ""
    name = " ".join(str(name).split())
    return name or None


def _date(value: Any) -> datetime | None:
    """feedparser's struct_time (already normalised to UTC) as an aware datetime."""
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (OverflowError, ValueError, TypeError, OSError):
        return None


# --- credits and bylines -------------------------------------------------------------------------

# "By Prince Kapone – Jan 30, 2026", "Por Ana Pérez — 17 de noviembre de 2026": a dash and a date…
_DATED_BYLINE = re.compile(r"^(?:by|por)\s+(?P<name>[^–—|]{2,80}?)\s+[-–—|]\s+.*\d", re.I)
# …or the name alone ("By Ana Pérez"), which must then be short and not a sentence ("By the end
# of the year, …").
_BARE_BYLINE = re.compile(r"^(?:by|por)\s+(?P<name>(?:[^\s,.;:!?]+\s*){1,5})$", re.I)
_CREDIT_LINES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern, re.I)
    for pattern in (
        r"^(translation|traducción|tradução|translated by|source|fuente|fonte)\s*:",
        r"^(this|the following) (article|editorial|interview|op-ed|column|piece|statement)\b.*"
        r"\b(originally|first|was) (appeared|published|posted|written)",
        r"^(this|the following) (article|editorial|interview|op-ed|column|piece)\b.*"
        r"\b(appeared|published) in\b",
        r"^the views expressed in this",
        r"^\([\w .’'-]{2,40}\)$",  # "(Telesur)", "(Voces Urgentes)": a source or photo credit
        r"^[A-Z]{2,4}(/[A-Z]{2,4}){1,4}$",  # editors' initials: "OT/JRE/SL"
        r"^(from|de) .{2,120} via .{2,80}\.$",  # aggregator footers
        r"^(featured|cover|header) (image|photo)\b",
        r"^(photo|foto)\s*:",
        r"^(the post|la entrada|o post) .{2,300} (appeared first on|apareció primero en|apareceu "
        r"primeiro em) .*",
    )
)
# Credits only count as credits at the start or the end of the article: the same words in the
# middle are likely text.
_EDGE_LINES = 3


def _strip_credits(lines: Iterable[str]) -> tuple[list[str], str | None]:
    """Drop bylines and credits from the head and tail of an article; return the byline's name."""
    body = [line for line in lines if line.strip()]
    byline: str | None = None

    head = 0
    while head < min(_EDGE_LINES, len(body)):
        line = body[head]
        match = (_DATED_BYLINE.match(line) or _BARE_BYLINE.match(line)) if len(line) < 140 else None
        if match and byline is None:
            byline = match.group("name").strip()
        elif not _is_credit(line):
            break
        head += 1

    tail = len(body)
    while tail > head and len(body) - tail < _EDGE_LINES and _is_credit(body[tail - 1]):
        tail -= 1
    return body[head:tail], byline


def _is_credit(line: str) -> bool:
    return len(line) < 400 and any(pattern.match(line) for pattern in _CREDIT_LINES)


# A photo caption: a short line that ends by crediting the photographer or agency,
# "Luisa Cáceres de Arismendi communards. (Voces Urgentes)".
_CAPTION = re.compile(r"^.{0,100}\.\s+\([\w .’'/-]{2,40}\)$")


def _drop_captions(lines: list[str]) -> list[str]:
    return [line for line in lines if not _CAPTION.match(line)]
