"""Make feed HTML safe to put in an email, and turn it into plain text.

Feed content is untrusted: any outlet's CMS can be compromised, and a feed can be swapped for a
hostile one in transit. Everything that reaches a template goes through `clean_html`, which keeps
an explicit allow-list of tags (nh3, a binding of the Rust `ammonia` sanitizer, does the parsing,
so malformed markup is handled the way a browser would handle it).

`html_to_text` and `excerpt` make the plain-text side: titles, excerpts, the text/plain part.
"""

from __future__ import annotations

import contextvars
import re
from html import unescape
from urllib.parse import urljoin, urlsplit

import nh3

__all__ = ["ALLOWED_TAGS", "clean_html", "excerpt", "html_to_text", "safe_url"]

# What survives in a digest. No images: in an email they are trackers and break layouts, and the
# digest links to the article anyway. No tables, divs or spans: mail clients render them badly
# and feeds use them for layout, not meaning.
ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "cite",
        "code",
        "em",
        "h2",
        "h3",
        "h4",
        "hr",
        "i",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "strong",
        "sub",
        "sup",
        "ul",
    }
)
_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {"a": {"href"}, "abbr": {"title"}}

# Tags removed together with everything inside them: their content is code or chrome, never
# article text. (Tags merely not allowed are unwrapped and their text kept.)
_DROP_WITH_CONTENT: frozenset[str] = frozenset(
    {
        "button",
        "embed",
        "form",
        "iframe",
        "math",
        "noscript",
        "object",
        "script",
        "select",
        "style",
        "svg",
        "template",
        "textarea",
        "title",
    }
)
_SAFE_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto"})
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]+")


def safe_url(url: str, base_url: str | None = None) -> str | None:
    """Return `url` made absolute against `base_url`, or None unless it is http(s) or mailto.

    Relative URLs without a base are dropped: in an email there is nothing to resolve them against.
    """
    # Browsers ignore ASCII whitespace and control characters inside a URL ("java\tscript:"), so
    # strip them before judging the scheme rather than after.
    url = _URL_NOISE.sub("", unescape(url))
    if not url:
        return None
    try:
        if base_url:
            url = urljoin(base_url, url)
        parts = urlsplit(url)
    except ValueError:  # e.g. an invalid IPv6 literal
        return None
    if parts.scheme.lower() not in _SAFE_SCHEMES:
        return None
    if parts.scheme.lower() != "mailto" and not parts.netloc:
        return None
    return url


def clean_html(html: str, base_url: str | None = None) -> str:
    """Sanitize a feed's HTML fragment for an email: allow-listed tags, safe absolute links only."""
    token = _base_url.set(base_url)
    try:
        cleaned: str = _HTML_CLEANER.clean(html)
    finally:
        _base_url.reset(token)
    # Tidy what removed elements leave behind: empty paragraphs, anchors whose href was refused,
    # runs of blank lines. nh3's output is well-formed, so these patterns are exact.
    cleaned = _EMPTY_PARAGRAPH.sub("", cleaned)
    cleaned = _DEAD_ANCHOR.sub(r"\1", cleaned)
    cleaned = _BLANK_LINES.sub("\n", cleaned)
    return cleaned.strip()


# The base URL of the fragment being cleaned, for the attribute filter of the one reusable
# cleaner (building an nh3 cleaner per call costs more than cleaning a short description).
_base_url: contextvars.ContextVar[str | None] = contextvars.ContextVar("_base_url", default=None)


def _rewrite_attribute(tag: str, attribute: str, value: str) -> str | None:
    if tag == "a" and attribute == "href":
        return safe_url(value, _base_url.get())
    return value


_HTML_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags=set(_DROP_WITH_CONTENT),
    attributes=_ALLOWED_ATTRIBUTES,
    attribute_filter=_rewrite_attribute,
    url_schemes=set(_SAFE_SCHEMES),
    link_rel="noopener noreferrer",
    strip_comments=True,
)
_EMPTY_PARAGRAPH = re.compile(r"<p>\s*</p>")
_DEAD_ANCHOR = re.compile(r'<a rel="noopener noreferrer">(.*?)</a>', re.S)
_BLANK_LINES = re.compile(r"\n\s*\n")


# Elements that end a line of text; everything else flows inline.
_BLOCK_TAGS: frozenset[str] = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tr",
        "ul",
    }
)
_INVISIBLE_TAGS: frozenset[str] = _DROP_WITH_CONTENT | {"head"}


def html_to_text(html: str) -> str:
    """The visible text of `html`: entities decoded, one paragraph per line, spaces collapsed."""
    if "<" not in html and "&" not in html:
        return _collapse_lines(_reflow(html))
    # nh3 parses the markup as a browser would and keeps only block elements, so what is left
    # is text separated by well-formed tags, each of which ends a line. (A tag never holds a
    # newline, nor a paragraph break a tag, so reflowing first and then breaking at the tags is
    # the same as reflowing each piece between tags.)
    blocks: str = _TEXT_CLEANER.clean(html)
    return _collapse_lines(unescape(_TAG.sub("\n", _reflow(blocks))))


_TEXT_CLEANER = nh3.Cleaner(
    tags=set(_BLOCK_TAGS),
    clean_content_tags=set(_INVISIBLE_TAGS),
    attributes={},
    link_rel=None,
    strip_comments=True,
)
_TAG = re.compile(r"<[^>]*>")


def _reflow(text: str) -> str:
    """In HTML a line break is a space; a blank line is still kept as a paragraph break, because
    plain-text feed descriptions separate their paragraphs that way."""
    paragraphs = _PARAGRAPH_BREAK.split(text)
    return "\n".join(paragraph.replace("\n", " ") for paragraph in paragraphs)


_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r]*\n")


def _collapse_lines(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def excerpt(text: str, limit: int = 280) -> str:
    """At most `limit` characters of `text` on one line, cut at a word boundary and marked "…"."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]  # room for the ellipsis
    space = cut.rfind(" ")
    # A single enormous "word" (a URL, say) is cut mid-word rather than dropped altogether.
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.–—-") + "…"
