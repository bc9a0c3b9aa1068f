"""Which country an item reports on: scoring the names the gazetteer finds.

Each mention adds weight to the place it names. The weight says how strongly the mention
points at the story's subject: a country's name more than a demonym or a city; the title
more than the body; an early mention more than a late one; a country named as the actor
("US sanctions", "bloqueo de Washington") or inside a person's name ("Francia Márquez") far
less. The highest-scoring country is the one the item is filed under, unless a region
scores higher.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from newsletter.countries import aliases
from newsletter.countries.gazetteer import Mention, Place, fold, gazetteer
from newsletter.countries.names import is_country_code

KIND_WEIGHT = {
    "country": 1.0,
    "abbrev": 1.0,
    "demonym": 0.7,
    "city": 0.6,
    "state": 0.6,
    "region": 0.8,
}
TITLE_WEIGHT = 3.0
# Characters over which a mention's weight halves: in a 300-character lead the last
# sentence counts half as much as the first.
TITLE_HALF_LIFE = 150
TEXT_HALF_LIFE = 300
ACTOR_FACTOR = 0.35
PROPER_NAME_FACTOR = 0.2
# Demonyms and abbreviations sit next to capitalised words as a matter of course
# ("Venezuelan President", "US House"); only names can be swallowed by a longer name.
NAME_KINDS = frozenset({"country", "city", "state", "region"})
LIST_MIN = 4
# The US is named in most of these items as the actor (sanctions, blockade, strikes); an
# item is filed under it only when it is mainly about the US, so its mentions count less.
HABITUAL_ACTORS = {"US": 0.6}

_LIST_GAP = re.compile(r"\s*,?\s*(?:(?:and|y|e|or|o|ou|to|&)\s+)?")

_LOOKBACK = 40  # characters before a mention searched for "sanciones de", "blockade by"
_NEXT_WORD = re.compile(r"(?:'s)?[\s-]*(\w+)")
_PREV_WORD = re.compile(
    r"(\w+)\s+(?:(?:de|del|dos|das|da|do|of|by|por|pelo|pela)\s+)?"
    r"(?:(?:los|las|el|la|os|as|o|a|the)\s+)?$"
)


@dataclass(frozen=True)
class Placement:
    """Where an item is filed."""

    countries: tuple[str, ...]  # every country the item names, alpha-2, in order of weight
    primary: str | None  # the country the item is filed under; None when about a region
    region: str | None  # a key of names.REGIONS when the item is about a region, else None


@dataclass(frozen=True)
class _Scored:
    mention: Mention
    weight: float


def detect(title: str, text: str, source_country: str | None = None) -> Placement:
    """Place an item by what it reports on; ``source_country`` is only the last resort."""
    source = source_country.upper() if source_country and is_country_code(source_country) else None
    scored = _weigh(title, TITLE_WEIGHT, TITLE_HALF_LIFE) + _weigh(text, 1.0, TEXT_HALF_LIFE)
    if not scored:
        return Placement((), source, None)

    evidence: dict[str, float] = defaultdict(float)
    for s in scored:
        if len(s.mention.places) == 1:
            evidence[s.mention.places[0].target] += s.weight

    scores: dict[str, float] = defaultdict(float)
    for s in scored:
        target = _resolve(s.mention.places, evidence, source)
        scores[target] += s.weight * HABITUAL_ACTORS.get(target, 1.0)

    countries = {t: w for t, w in scores.items() if not t.startswith("region:")}
    regions = {t: w for t, w in scores.items() if t.startswith("region:")}
    ranked = tuple(sorted(countries, key=lambda t: -countries[t]))
    best_region = max(regions, key=lambda t: regions[t], default=None)
    if best_region and (not ranked or regions[best_region] > countries[ranked[0]]):
        return Placement(ranked, None, best_region.removeprefix("region:"))
    return Placement(ranked, ranked[0] if ranked else source, None)


def _weigh(text: str, base: float, half_life: int) -> list[_Scored]:
    folded = fold(text).lower()
    mentions = gazetteer().scan(text)
    share = _list_shares(folded, mentions)
    out: list[_Scored] = []
    for mention, list_share in zip(mentions, share, strict=True):
        kind = mention.places[0].kind
        if kind == "none":
            continue
        if kind == "region" and _is_epithet(folded, mention):
            continue  # "the Caribbean island" names a country already counted
        weight = base * KIND_WEIGHT[kind] * list_share / (1 + mention.start / half_life)
        if mention.in_proper_name and kind in NAME_KINDS:
            weight *= PROPER_NAME_FACTOR
        elif kind != "region" and _is_actor(folded, mention):
            weight *= ACTOR_FACTOR
        out.append(_Scored(mention, weight))
    return out


def _list_shares(folded: str, mentions: list[Mention]) -> list[float]:
    """Places in a list ("from Caracas, to New York, Ottawa, Havana...") show how far
    something reached, not where it happened: a list of n places shares one mention."""
    shares = [1.0] * len(mentions)
    run_start = 0
    for i in range(1, len(mentions) + 1):
        joined = i < len(mentions) and _LIST_GAP.fullmatch(
            folded[mentions[i - 1].end : mentions[i].start]
        )
        if not joined:
            if i - run_start >= LIST_MIN:
                for j in range(run_start, i):
                    shares[j] = 1.0 / (i - run_start)
            run_start = i
    return shares


def _is_actor(folded: str, mention: Mention) -> bool:
    """The country acts on the story's subject: "US sanctions", "embaixada dos EUA"."""
    after = _NEXT_WORD.match(folded, mention.end)
    if after and after.group(1) in aliases.ACTOR_NOUNS:
        return True
    before = _PREV_WORD.search(folded, max(0, mention.start - _LOOKBACK), mention.start)
    return bool(before and before.group(1) in aliases.ACTOR_NOUNS)


def _is_epithet(folded: str, mention: Mention) -> bool:
    after = _NEXT_WORD.match(folded, mention.end)
    if after and after.group(1) in aliases.EPITHET_NOUNS:
        return True
    before = _PREV_WORD.search(folded, max(0, mention.start - _LOOKBACK), mention.start)
    return bool(before and before.group(1) in aliases.EPITHET_NOUNS)


def _resolve(places: tuple[Place, ...], evidence: dict[str, float], source: str | None) -> str:
    """Settle a name shared by several places ("Mérida", "San Juan"): the one the rest of
    the item points at, else the source's country, else the most populous."""
    if len(places) == 1:
        return places[0].target
    targets = [p.target for p in places]
    backed = [t for t in targets if evidence.get(t)]
    if backed:
        return max(backed, key=lambda t: evidence[t])
    if source in targets:
        return source
    return max(places, key=lambda p: p.population).target
