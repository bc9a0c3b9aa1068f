"""Grouping: country, then source, newest first, caps, duplicates credited to both sources."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from newsletter.digest import Candidate, DigestSettings, build_digest

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def item(i: int, source: str, primary: str | None, *, hours: float = 1, **kw: object) -> Candidate:
    when = NOW - timedelta(hours=hours)
    fields: dict = dict(
        id=i,
        source=source,
        title=f"story {i}",
        link=f"https://example.org/{i}",
        published=when,
        fetched=when,
        canonical=f"https://example.org/{i}",
        primary=primary,
    )
    fields.update(kw)
    return Candidate(**fields)


def shape(digest):  # type: ignore[no-untyped-def]
    return [
        (g.code, g.name, [(s.name, [i.id for i in s.items], s.more) for s in g.sources])
        for g in digest.countries
    ]


def test_groups_by_country_then_source_newest_first() -> None:
    items = [
        item(1, "Orinoco Tribune", "VE", hours=5),
        item(2, "Orinoco Tribune", "VE", hours=1),
        item(3, "Prensa Latina", "CU", hours=2),
        item(4, "Venezuelanalysis", "VE", hours=3),
        item(5, "Kawsachun News", "BO", hours=4),
    ]
    digest = build_digest(items, title="LA Weekly", now=NOW)
    assert shape(digest) == [
        ("VE", "Venezuela", [("Orinoco Tribune", [2, 1], 0), ("Venezuelanalysis", [4], 0)]),
        ("BO", "Bolivia", [("Kawsachun News", [5], 0)]),
        ("CU", "Cuba", [("Prensa Latina", [3], 0)]),
    ]
    assert digest.countries[0].flag == "🇻🇪"
    assert digest.subject == "LA Weekly: 5 stories from Venezuela, Bolivia, Cuba"


def test_regional_and_unknown_headings_come_after_countries() -> None:
    items = [
        item(1, "teleSUR", None, region="latin-america"),
        item(2, "teleSUR", None, region="latin-america"),
        item(3, "teleSUR", None),
        item(4, "Prensa Latina", "CU"),
    ]
    digest = build_digest(items, title="T", now=NOW)
    assert [(g.code, g.name) for g in digest.countries] == [
        ("CU", "Cuba"),
        (None, "Latin America"),
        (None, "Elsewhere"),
    ]


def test_caps_per_source_and_in_total_are_counted() -> None:
    busy = [item(i, "teleSUR", "VE", hours=i) for i in range(1, 9)]
    other = [item(i, "Prensa Latina", "CU", hours=i) for i in range(20, 24)]
    settings = DigestSettings(max_per_source=3, max_items=5)
    digest = build_digest(busy + other, title="T", now=NOW, settings=settings)
    assert shape(digest) == [
        ("VE", "Venezuela", [("teleSUR", [1, 2, 3], 5)]),
        ("CU", "Cuba", [("Prensa Latina", [20, 21], 2)]),
    ]
    assert digest.item_count == 5
    assert digest.more_count == 7


def test_sources_left_without_a_slot_are_still_counted() -> None:
    busy = [item(i, "teleSUR", "VE", hours=i) for i in range(1, 5)]
    late = [item(10, "Prensa Latina", "CU"), item(11, "Kawsachun News", "BO", hours=2)]
    digest = build_digest(busy + late, title="T", now=NOW, settings=DigestSettings(max_items=3))
    assert digest.item_count == 3
    assert digest.omitted == 2
    assert digest.more_count == 3  # one more from teleSUR, two from sources with no slot


def test_old_items_are_left_out_but_covered() -> None:
    items = [item(1, "teleSUR", "VE", hours=24 * 8), item(2, "teleSUR", "VE")]
    digest = build_digest(items, title="T", now=NOW, settings=DigestSettings(max_age_days=7))
    assert [i.id for g in digest.countries for s in g.sources for i in s.items] == [2]
    assert digest.item_ids == (1, 2)


def test_same_story_from_two_sources_is_one_item_credited_to_both() -> None:
    first = item(1, "teleSUR", "CU", hours=3, canonical="https://x.org/story")
    second = item(2, "Prensa Latina", "CU", hours=2, canonical="https://x.org/story")
    digest = build_digest([second, first], title="T", now=NOW)
    assert shape(digest) == [("CU", "Cuba", [("teleSUR", [1], 0)])]
    assert digest.countries[0].sources[0].items[0].sources == ("teleSUR", "Prensa Latina")


def test_empty_digest() -> None:
    digest = build_digest([], title="LA Weekly", now=NOW)
    assert digest.is_empty
    assert digest.subject == "LA Weekly"


def test_pinned_items_lead_their_source() -> None:
    items = [item(1, "teleSUR", "VE", hours=1), item(2, "teleSUR", "VE", hours=9, pinned=True)]
    digest = build_digest(items, title="T", now=NOW)
    assert [i.id for i in digest.countries[0].sources[0].items] == [2, 1]
