"""The countries stage: which country each item reports on."""

from newsletter.countries.detect import Placement, detect
from newsletter.countries.names import REGIONS, country_name, flag, is_country_code, region_name

__all__ = [
    "REGIONS",
    "Placement",
    "country_name",
    "detect",
    "flag",
    "is_country_code",
    "region_name",
]
