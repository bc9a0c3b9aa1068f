"""canonical_link: the same story from two outlets gets the same key."""

from __future__ import annotations

import pytest

from newsletter.feeds import canonical_link
from newsletter.feeds.links import is_tracking_param

KEY = "https://orinocotribune.com/venezuela-exports-first-shipment-of-lpg"


@pytest.mark.parametrize(
    "url",
    [
        "https://orinocotribune.com/venezuela-exports-first-shipment-of-lpg/",
        "http://orinocotribune.com/venezuela-exports-first-shipment-of-lpg/",
        "https://www.orinocotribune.com/venezuela-exports-first-shipment-of-lpg",
        "HTTPS://WWW.OrinocoTribune.COM/venezuela-exports-first-shipment-of-lpg/",
        "https://orinocotribune.com:443/venezuela-exports-first-shipment-of-lpg/",
        "http://orinocotribune.com:80/venezuela-exports-first-shipment-of-lpg/",
        "https://orinocotribune.com/venezuela-exports-first-shipment-of-lpg/#comments",
        "https://orinocotribune.com/venezuela-exports-first-shipment-of-lpg/?utm_source=rss"
        "&utm_medium=rss&utm_campaign=venezuela",
        "https://orinocotribune.com/venezuela-exports-first-shipment-of-lpg/?fbclid=IwAR0xyz",
        "https://orinocotribune.com/venezuela-exports-first-shipment-of-lpg/?gclid=abc&mc_cid=1",
        "  https://orinocotribune.com/venezuela-exports-first-shipment-of-lpg/  ",
        "https://orinocotribune.com./venezuela-exports-first-shipment-of-lpg/",
    ],
)
def test_noise_variants_share_one_key(url: str) -> None:
    assert canonical_link(url) == KEY


def test_remaining_query_parameters_are_sorted_and_kept() -> None:
    a = canonical_link("https://www.telesurtv.net/news.php?lang=en&id=990011&utm_source=x")
    b = canonical_link("http://telesurtv.net/news.php?id=990011&lang=en")
    assert a == b == "https://telesurtv.net/news.php?id=990011&lang=en"


def test_meaningful_parameters_distinguish_stories() -> None:
    assert canonical_link("https://x.org/?p=1") != canonical_link("https://x.org/?p=2")


def test_percent_encoding_is_normalised() -> None:
    assert canonical_link("https://brasildefato.com.br/2026/11/são-paulo") == canonical_link(
        "https://brasildefato.com.br/2026/11/s%C3%A3o-paulo/"
    )
    assert canonical_link("https://x.org/%7Euser") == canonical_link("https://x.org/~user")


def test_path_case_is_kept() -> None:
    # Paths are case-sensitive on most servers; only scheme and host are folded.
    assert canonical_link("https://x.org/News/A") == "https://x.org/News/A"


def test_root_and_other_ports() -> None:
    assert canonical_link("http://www.kawsachunnews.com/") == "https://kawsachunnews.com"
    assert canonical_link("http://localhost:8080/feed/") == "https://localhost:8080/feed"


def test_credentials_are_dropped() -> None:
    assert canonical_link("https://user:pw@x.org/a") == "https://x.org/a"


@pytest.mark.parametrize(
    "url", ["mailto:info@x.org", "urn:uuid:1234", "not a url", "https://[::1", "ftp://x.org/a/"]
)
def test_non_web_or_broken_input_is_returned_stripped(url: str) -> None:
    assert canonical_link(f" {url} ") == url


def test_tracking_params() -> None:
    for name in ("utm_source", "UTM_Campaign", "fbclid", "gclid", "mc_eid", "_ga", "pk_kwd"):
        assert is_tracking_param(name)
    for name in ("p", "id", "lang", "page", "utmost"):
        assert not is_tracking_param(name)
