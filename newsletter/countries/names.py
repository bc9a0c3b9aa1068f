"""Readable names and flags for country codes and regional headings."""

from __future__ import annotations

import functools

import pycountry

# Regional headings: items about a region rather than one country. Keys are stable
# identifiers stored in the database; values are what readers see.
REGIONS: dict[str, str] = {
    "latin-america": "Latin America",
    "caribbean": "The Caribbean",
    "central-america": "Central America",
    "south-america": "South America",
    "world": "World",
}

# pycountry's official short names read oddly in a heading ("Venezuela, Bolivarian
# Republic of"); its common_name is used where present, then these.
_READABLE: dict[str, str] = {
    "BO": "Bolivia",
    "VE": "Venezuela",
    "IR": "Iran",
    "RU": "Russia",
    "SY": "Syria",
    "KR": "South Korea",
    "KP": "North Korea",
    "PS": "Palestine",
    "TW": "Taiwan",
    "TZ": "Tanzania",
    "VN": "Vietnam",
    "LA": "Laos",
    "MD": "Moldova",
    "FM": "Micronesia",
    "CD": "DR Congo",
    "CG": "Republic of the Congo",
}


@functools.cache
def country_name(code: str) -> str:
    """The readable English name of an ISO 3166-1 alpha-2 code ("VE" -> "Venezuela")."""
    code = code.upper()
    if code in _READABLE:
        return _READABLE[code]
    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        raise KeyError(code)
    return str(getattr(country, "common_name", None) or country.name)


def is_country_code(code: str) -> bool:
    """True when ``code`` is an ISO 3166-1 alpha-2 code."""
    return len(code) == 2 and pycountry.countries.get(alpha_2=code.upper()) is not None


def flag(code: str) -> str:
    """The flag emoji of an alpha-2 code: two regional-indicator symbols."""
    return "".join(chr(0x1F1E6 + ord(c) - ord("A")) for c in code.upper())


def region_name(key: str) -> str:
    """The heading of a regional group ("caribbean" -> "The Caribbean")."""
    return REGIONS[key]
