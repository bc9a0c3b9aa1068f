"""feedparser's C1 table swapped for a string table: same text out, on every character."""

from __future__ import annotations

import feedparser.mixin

from newsletter.feeds import speedups
from newsletter.feeds.parse import parse_feed


def test_the_string_table_translates_exactly_like_feedparsers_dict() -> None:
    mapping = speedups.replaced
    assert len(mapping) >= 27  # windows-1252 defines 27 of the 32 C1 code points
    assert mapping[0x93] == "“"
    table = speedups.cp1252_table(mapping)
    every_bmp_char = "".join(chr(i) for i in range(0x10000) if not 0xD800 <= i <= 0xDFFF)
    beyond = "😀 𝄞 \U0010ffff"
    for text in (every_bmp_char, beyond, "plain ascii", "Bolivia – “Evo” ¡sí!\x93\x94\x80"):
        assert text.translate(table) == text.translate(mapping)


def test_apply_is_in_place_and_idempotent() -> None:
    assert speedups.apply()
    assert speedups.apply()
    assert isinstance(feedparser.mixin._cp1252, str)


def test_a_c1_quote_in_a_feed_still_becomes_the_character_it_meant() -> None:
    # The title holds U+0093/U+0094: windows-1252 curly quotes decoded as Latin-1 upstream.
    feed = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        "<item><title>\u0093Sovereignty\u0094 in Caracas – día 1</title>"
        "<link>https://example.org/a</link></item></channel></rss>"
    ).encode()
    parsed = parse_feed(feed, url="https://example.org/feed")
    assert parsed.entries[0].title == "“Sovereignty” in Caracas – día 1"
