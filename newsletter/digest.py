"""The digest stage: group new items by country, then by source, under caps.

Pure data in, pure data out: the pipeline reads candidates from the store and hands
the resulting :class:`Digest` to the renderer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from newsletter.countries import country_name, flag, region_name

DEFAULT_MAX_AGE_DAYS = 7
DEFAULT_MAX_PER_SOURCE = 5
DEFAULT_MAX_ITEMS = 100
UNKNOWN_HEADING = "Elsewhere"


@dataclass(frozen=True)
class DigestSettings:
    """The ``[digest]`` table of the config."""

    max_age_days: int = DEFAULT_MAX_AGE_DAYS
    max_per_source: int = DEFAULT_MAX_PER_SOURCE
    max_items: int = DEFAULT_MAX_ITEMS


@dataclass(frozen=True)
class Candidate:
    """A stored item that may go into the next digest."""

    id: int
    source: str
    title: str
    link: str
    published: datetime | None
    fetched: datetime
    excerpt: str = ""
    author: str | None = None
    canonical: str = ""  # normalised link: the same story from two sources shares it
    countries: tuple[str, ...] = ()
    primary: str | None = None  # ISO alpha-2 the item is filed under
    region: str | None = None  # a key of countries.REGIONS when it is about a region
    pinned: bool = False

    @property
    def when(self) -> datetime:
        return self.published or self.fetched


@dataclass(frozen=True)
class DigestItem:
    id: int
    title: str
    link: str
    published: datetime | None
    author: str | None
    excerpt: str
    sources: tuple[str, ...]  # every source that carried this story, first one first
    countries: tuple[str, ...]
    pinned: bool = False


@dataclass(frozen=True)
class SourceGroup:
    name: str
    items: tuple[DigestItem, ...]
    more: int = 0  # items this source had beyond the caps


@dataclass(frozen=True)
class CountryGroup:
    code: str | None  # ISO alpha-2, or None for a regional or unknown heading
    name: str
    flag: str
    sources: tuple[SourceGroup, ...]

    @property
    def item_count(self) -> int:
        return sum(len(s.items) for s in self.sources)


@dataclass(frozen=True)
class Digest:
    title: str
    subject: str
    date: datetime
    countries: tuple[CountryGroup, ...] = ()
    note: str = ""  # an editor's note, already rendered to safe HTML
    item_ids: tuple[int, ...] = field(default=())  # every stored item the digest covers
    omitted: int = 0  # items of sources left without a single slot once max_items ran out

    @property
    def item_count(self) -> int:
        return sum(g.item_count for g in self.countries)

    @property
    def more_count(self) -> int:
        return sum(s.more for g in self.countries for s in g.sources) + self.omitted

    @property
    def is_empty(self) -> bool:
        return self.item_count == 0


def is_fresh(candidate: Candidate, now: datetime, max_age_days: int) -> bool:
    """Items published longer ago than ``max_age_days`` stay out of the digest."""
    return candidate.when >= now - timedelta(days=max_age_days)


def merge_duplicates(candidates: Iterable[Candidate]) -> list[tuple[Candidate, tuple[str, ...]]]:
    """One entry per story: items sharing a canonical link are credited to every source.

    The earliest-fetched copy is kept, so the story stays under the outlet that broke it.
    """
    by_key: dict[str, list[Candidate]] = defaultdict(list)
    for c in sorted(candidates, key=lambda c: (c.fetched, c.id)):
        by_key[c.canonical or f"#{c.id}"].append(c)
    merged = []
    for copies in by_key.values():
        first = copies[0]
        sources = tuple(dict.fromkeys(c.source for c in copies))
        merged.append((first, sources))
    return merged


def _heading(c: Candidate) -> tuple[str | None, str, str]:
    if c.primary:
        return c.primary, country_name(c.primary), flag(c.primary)
    if c.region:
        return None, region_name(c.region), ""
    return None, UNKNOWN_HEADING, ""


def build_digest(
    candidates: Sequence[Candidate],
    *,
    title: str,
    now: datetime | None = None,
    settings: DigestSettings = DigestSettings(),
    subject: str | None = None,
    note: str = "",
) -> Digest:
    """Group candidates into a digest: country -> source -> newest items first.

    Countries come in order of item count, then name; regional and unknown headings
    come after the countries. ``max_per_source`` caps each source inside a country and
    ``max_items`` the whole digest; what is cut is counted in ``SourceGroup.more``.
    """
    now = now or datetime.now(UTC)
    fresh = [c for c in candidates if is_fresh(c, now, settings.max_age_days)]
    stories = merge_duplicates(fresh)

    # (heading) -> source -> stories
    tree: dict[tuple[str | None, str, str], dict[str, list[tuple[Candidate, tuple[str, ...]]]]]
    tree = defaultdict(lambda: defaultdict(list))
    for story in stories:
        tree[_heading(story[0])][story[0].source].append(story)

    def heading_order(key: tuple[str | None, str, str]) -> tuple[int, int, str]:
        code, name, _ = key
        size = sum(len(v) for v in tree[key].values())
        rank = 0 if code else (2 if name == UNKNOWN_HEADING else 1)
        return rank, -size, name

    budget = settings.max_items
    omitted = 0
    groups: list[CountryGroup] = []
    for key in sorted(tree, key=heading_order):
        code, name, emoji = key
        source_groups: list[SourceGroup] = []
        for source in sorted(tree[key], key=lambda s: (-len(tree[key][s]), s)):
            ordered = sorted(
                tree[key][source], key=lambda s: (not s[0].pinned, -s[0].when.timestamp())
            )
            keep = min(len(ordered), settings.max_per_source, budget)
            budget -= keep
            items = tuple(_item(c, sources) for c, sources in ordered[:keep])
            if items:
                source_groups.append(SourceGroup(source, items, more=len(ordered) - keep))
            else:
                omitted += len(ordered)
        if source_groups:
            groups.append(CountryGroup(code, name, emoji, tuple(source_groups)))
    return Digest(
        title=title,
        subject=subject or default_subject(title, groups),
        date=now,
        countries=tuple(groups),
        note=note,
        item_ids=tuple(sorted(c.id for c in candidates)),
        omitted=omitted,
    )


def default_subject(title: str, groups: Sequence[CountryGroup]) -> str:
    """The default subject, e.g. "LA Weekly: 42 stories from Venezuela, Cuba, Bolivia and more"."""
    named = [g.name for g in groups if g.code]
    n = sum(g.item_count for g in groups)
    if not n:
        return title
    where = ", ".join(named[:3]) + (" and more" if len(named) > 3 else "")
    story = "story" if n == 1 else "stories"
    return f"{title}: {n} {story}" + (f" from {where}" if where else "")


def _item(c: Candidate, sources: tuple[str, ...]) -> DigestItem:
    return DigestItem(
        id=c.id,
        title=c.title,
        link=c.link,
        published=c.published,
        author=c.author,
        excerpt=c.excerpt,
        sources=sources,
        countries=c.countries,
        pinned=c.pinned,
    )
