"""parse_feed on the fixture feeds of tests/feeds/ (written from these outlets' real texts)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsletter.errors import FeedError, ParseError
from newsletter.feeds import ParsedFeed, parse_feed

FEEDS = Path(__file__).parent / "feeds"


def parse(name: str, url: str = "https://example.org/feed/") -> ParsedFeed:
    return parse_feed((FEEDS / name).read_bytes(), url=url)


def test_rss2_with_content_encoded_and_dc_creator() -> None:
    feed = parse("orinoco_tribune.rss", "https://orinocotribune.com/feed/")
    assert feed.title == "Orinoco Tribune – News and opinion pieces about Venezuela and beyond"
    assert feed.link == "https://orinocotribune.com"
    assert feed.warning is None
    assert len(feed.entries) == 4

    march = feed.entries[0]
    assert march.guid == march.identity == "https://orinocotribune.com/?p=182731"
    assert march.title == (
        "Massive March in Caracas Demands Return of President Maduro and Cilia Flores"
    )
    assert march.author == "Orinoco Tribune"
    assert march.published == datetime(2026, 11, 17, 18, 5, tzinfo=UTC)
    assert march.excerpt.startswith("This Tuesday, the Venezuelan capital, Caracas,")
    assert len(march.excerpt) <= 280 and march.excerpt.endswith("…")
    # The description is the summary; it is sanitized HTML, not the full article.
    assert march.summary_html.startswith("<p>This Tuesday")
    assert "La Previsora" not in march.summary_html


def test_byline_in_content_becomes_the_author_and_leaves_the_excerpt() -> None:
    essay = parse("orinoco_tribune.rss").entries[1]
    assert essay.author == "Prince Kapone"
    assert essay.excerpt.startswith("The U.S. economy is generating profits")
    assert "By Prince Kapone" not in essay.excerpt
    assert essay.published == datetime(2026, 11, 18, 9, 30, tzinfo=UTC)


def test_credits_at_the_end_are_not_in_the_excerpt() -> None:
    gas = parse("orinoco_tribune.rss").entries[2]
    assert gas.excerpt.startswith("This Sunday, Venezuela’s Acting President Delcy Rodríguez")
    assert "(Prensa Latina)" not in gas.excerpt
    short = parse("orinoco_tribune.rss").entries[3]
    assert short.author == "Caitlin Johnstone"
    assert short.excerpt.endswith("is mere coincidence.")  # no "(Caitlin’s Newsletter)"


def test_translation_credit_and_editor_initials_are_dropped() -> None:
    march = parse("orinoco_tribune.rss").entries[0]
    text = march.excerpt
    for credit in ("Translation: Orinoco Tribune", "OT/JRE/SL", "(Telesur)"):
        assert credit not in text


def test_relative_links_in_content_are_absolutized() -> None:
    entry = parse("venezuelanalysis.atom", "https://venezuelanalysis.com/feed.atom").entries[0]
    # xml:base="https://venezuelanalysis.com/" governs both the entry link and the content.
    assert (
        entry.link == "https://venezuelanalysis.com/news/delcy-rodriguez-meets-us-charge-daffaires/"
    )


def test_atom() -> None:
    feed = parse("venezuelanalysis.atom", "https://venezuelanalysis.com/feed.atom")
    assert feed.title == "Venezuelanalysis"
    assert feed.link == "https://venezuelanalysis.com/"
    first, interview, drill = feed.entries
    assert first.identity == "tag:venezuelanalysis.com,2026:news/16210"
    assert first.title == "Delcy Rodríguez Meets US Chargé d’Affaires in Miraflores"
    assert first.author == "Ricardo Vaz"
    assert first.published == datetime(2026, 11, 17, 0, 40, tzinfo=UTC)  # -04:00 → UTC
    assert interview.published == datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # updated only
    assert interview.author == "Cira Pascual Marquina"
    # xhtml content; the photo caption "(Voces Urgentes)" is not part of the excerpt.
    assert interview.excerpt.startswith("Despite sanctions, a commune finds novel ways")
    assert "Voces Urgentes" not in interview.excerpt
    assert drill.author is None
    assert drill.summary_html.startswith("Iran, Russia, and China")


def test_rss1_rdf() -> None:
    feed = parse("mexico_solidarity.rdf")
    assert feed.title == "Mexico Solidarity Media"
    assert [e.title for e in feed.entries] == [
        "Deputies Form Mexico-Cuba Brotherhood Group",
        "The Insurgent Train Finally Arrives in Mexico City",
        "Overtime: The Problem Is Not Only How Much Is Paid",
    ]
    brotherhood = feed.entries[0]
    assert (
        brotherhood.identity == "https://mexicosolidaritymedia.org/mexico-cuba-brotherhood-group/"
    )
    assert brotherhood.author == "Enrique Méndez"
    assert brotherhood.published == datetime(2026, 11, 17, 22, 0, tzinfo=UTC)
    # "This article by … originally appeared in … La Jornada" is a credit, not the lead.
    assert brotherhood.excerpt.startswith("Deputies from Morena and the Labor Party (PT)")


def test_spanish_feed_in_latin1() -> None:
    feed = parse("telesur_es.rss")
    cuba, bolivia = feed.entries
    assert cuba.title == "Cuba denuncia el recrudecimiento del bloqueo energético de EE.UU."
    assert cuba.author == "Ana Pérez"  # from "Por Ana Pérez - 17 de noviembre de 2026"
    assert cuba.excerpt == (
        "El canciller cubano, Bruno Rodríguez, denunció este martes que la administración de "
        "Donald Trump pretende asfixiar a la isla cortando los envíos de petróleo."
    )
    assert bolivia.author == "Redacción teleSUR"  # the feed's creator wins over a byline
    assert bolivia.excerpt.startswith("Miles de campesinos, mineros y estudiantes")


def test_portuguese_feed_and_rss_author_email_form() -> None:
    mst, palestina = parse("brasil_de_fato_pt.rss").entries
    assert mst.author == "Redação Brasil de Fato"  # from "redacao@… (Redação Brasil de Fato)"
    assert "Fonte: Brasil de Fato" not in mst.excerpt
    assert palestina.title == "Solidariedade à Palestina reúne milhares em São Paulo"
    assert palestina.published == datetime(2026, 11, 19, 23, 10, tzinfo=UTC)


def test_malformed_feed_still_parses_with_a_warning() -> None:
    feed = parse("malformed.rss")
    assert feed.warning  # feedparser's complaint, one line
    assert "\n" not in feed.warning
    assert feed.title == "Peoples Dispatch & friends"
    assert feed.entries[0].title.startswith("Sudanese resistance committees")
    assert "Khartoum &amp; Omdurman" in feed.entries[0].summary_html


def test_hostile_feed_is_defused() -> None:
    feed = parse("hostile.rss")
    assert feed.title == "Hostile Feed"  # markup in titles is dropped, not kept as text
    assert feed.link is None  # javascript: link
    [entry] = feed.entries
    assert entry.title == "Bolivia’s lithium referendum"
    assert entry.link is None
    html = entry.summary_html.lower()
    for bad in ("<script", "javascript:", "vbscript:", "data:", "onerror", "onclick", "<iframe"):
        assert bad not in html
    for bad in ("<style", "style=", "<form", "<input", "<svg", "<object", "<embed", "<img"):
        assert bad not in html
    assert '<a href="https://example.org/news/lithium" rel="noopener noreferrer">' in html
    assert "a victory for sovereignty" in entry.excerpt
    assert "alert" not in entry.excerpt and "document.cookie" not in entry.excerpt


def test_identity_falls_back_to_canonical_link_then_content_hash() -> None:
    with_link, bare = parse("no_guid.rss").entries
    assert with_link.guid is None
    # Tracking parameters and "www." do not change the identity of the story.
    assert with_link.identity == "https://kawsachunnews.com/evo-morales-lithium"
    assert bare.guid is None and bare.link is None
    assert bare.identity.startswith("sha256:")
    # A title-less item gets one from its text.
    assert bare.title.startswith("Breaking: road blockades lifted in Cochabamba")


@pytest.mark.parametrize(
    "name",
    [
        "orinoco_tribune.rss",
        "venezuelanalysis.atom",
        "mexico_solidarity.rdf",
        "telesur_es.rss",
        "brasil_de_fato_pt.rss",
        "malformed.rss",
        "no_guid.rss",
    ],
)
def test_identities_are_stable_and_unique(name: str) -> None:
    first = parse(name)
    second = parse(name)
    assert [e.identity for e in first.entries] == [e.identity for e in second.entries]
    assert len({e.identity for e in first.entries}) == len(first.entries)
    assert first == second


@pytest.mark.parametrize("name", ["orinoco_tribune.rss", "venezuelanalysis.atom"])
def test_all_dates_are_aware_utc(name: str) -> None:
    for entry in parse(name).entries:
        assert entry.published is not None
        assert entry.published.utcoffset() is not None
        assert entry.published.tzinfo == UTC


def test_missing_and_invalid_dates_are_none() -> None:
    data = (
        b'<rss version="2.0"><channel><title>x</title>'
        b"<item><title>a</title><guid>1</guid><pubDate>yesterday-ish</pubDate></item>"
        b"<item><title>b</title><guid>2</guid></item></channel></rss>"
    )
    assert [e.published for e in parse_feed(data, url="https://x.org/").entries] == [None, None]


def test_html_page_is_not_a_feed() -> None:
    with pytest.raises(ParseError, match="not an RSS or Atom feed"):
        parse("not_a_feed.html")


@pytest.mark.parametrize("data", [b"", b"   \n", b"\x00\xff\xfe garbage", b'{"items": []}'])
def test_non_feeds_raise_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_feed(data, url="https://x.org/feed")


def test_parse_error_is_a_feed_error() -> None:
    assert issubclass(ParseError, FeedError)


def test_empty_channel_is_a_feed_without_entries() -> None:
    data = b'<rss version="2.0"><channel><title>Kawsachun News</title></channel></rss>'
    feed = parse_feed(data, url="https://kawsachunnews.com/feed")
    assert feed.title == "Kawsachun News"
    assert feed.entries == ()


def test_bytes_that_look_like_a_path_or_url_are_never_opened(tmp_path: Path) -> None:
    secret = tmp_path / "secret.rss"
    secret.write_bytes(
        b'<rss version="2.0"><channel><title>SECRET</title>'
        b"<item><title>leaked</title><guid>1</guid></item></channel></rss>"
    )
    # feedparser would read a file (or fetch a URL) named by a str or bytes argument.
    for data in (str(secret).encode(), secret.as_uri().encode(), b"http://127.0.0.1:9/feed"):
        with pytest.raises(ParseError):
            parse_feed(data, url="https://x.org/")


def test_external_entities_are_not_loaded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    data = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'
        '<rss version="2.0"><channel><title>t</title>'
        "<item><title>a &xxe;</title><description>&xxe;</description><guid>1</guid></item>"
        "</channel></rss>"
    ).encode()
    feed = parse_feed(data, url="https://x.org/")
    assert "TOP-SECRET" not in repr(feed)


def test_entity_expansion_bomb_is_cheap() -> None:
    entities = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)).replace(
        "&lol0;", "lol"
    )
    data = (
        f'<?xml version="1.0"?><!DOCTYPE rss [{entities}]>'
        '<rss version="2.0"><channel><title>t</title>'
        "<item><title>&lol9;</title><guid>1</guid></item></channel></rss>"
    ).encode()
    started = time.perf_counter()
    feed = parse_feed(data, url="https://x.org/")
    assert time.perf_counter() - started < 0.5
    assert all(len(entry.title) < 1000 for entry in feed.entries)


def test_content_type_charset_is_honoured() -> None:
    data = (
        '<rss version="2.0"><channel><title>Peoples Dispatch</title><item><guid>1</guid>'
        "<title>Solidaridad con Cuba: ¡Abajo el bloqueo!</title></item></channel></rss>"
    ).encode("cp1252")
    feed = parse_feed(
        data, url="https://x.org/", content_type="application/rss+xml; charset=cp1252"
    )
    assert feed.entries[0].title == "Solidaridad con Cuba: ¡Abajo el bloqueo!"


def test_excerpt_never_exceeds_the_limit() -> None:
    body = "<p>" + "Venezuela sovereignty " * 200 + "</p>"
    data = (
        '<rss version="2.0"><channel><title>x</title><item><guid>1</guid><title>long</title>'
        f"<description><![CDATA[{body}]]></description></item></channel></rss>"
    ).encode()
    [entry] = parse_feed(data, url="https://x.org/").entries
    assert len(entry.excerpt) <= 280
    assert entry.excerpt.endswith("…")


def test_by_the_end_of_the_year_is_not_a_byline() -> None:
    data = (
        b'<rss version="2.0"><channel><title>x</title><item><guid>1</guid><title>t</title>'
        b"<description><![CDATA[<p>By the end of the year, Bolivia will have nationalized "
        b"its lithium.</p>]]></description></item></channel></rss>"
    )
    [entry] = parse_feed(data, url="https://x.org/").entries
    assert entry.author is None
    assert entry.excerpt.startswith("By the end of the year")


def test_bundled_samples_parse_cleanly() -> None:
    import tomllib
    from importlib.resources import files

    samples = files("newsletter.samples")
    sources = tomllib.loads(samples.joinpath("sources.toml").read_text())["sources"]
    assert 7 <= len(sources) <= 10
    week_start = datetime(2026, 11, 14, tzinfo=UTC)
    week_end = datetime(2026, 11, 21, tzinfo=UTC)
    for source in sources:
        assert set(source) == {"name", "file", "country"}
        assert len(source["country"]) == 2 and source["country"].isupper()
        feed = parse_feed(samples.joinpath(source["file"]).read_bytes(), url="https://x.org/")
        assert feed.warning is None, source["file"]
        assert 6 <= len(feed.entries) <= 12, source["file"]
        for entry in feed.entries:
            assert entry.published is not None and week_start <= entry.published < week_end
            assert entry.link and entry.title and entry.excerpt
        assert len({e.identity for e in feed.entries}) == len(feed.entries)
