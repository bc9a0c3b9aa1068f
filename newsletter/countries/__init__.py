"""The countries stage: which country each item reports on."""

from newsletter.countries.names import REGIONS, country_name, flag, is_country_code, region_name

__all__ = ["REGIONS", "country_name", "flag", "is_country_code", "region_name"]
