"""Canonical article links: one key per story, whichever outlet or share button linked it.

teleSUR, Orinoco Tribune and Popular Resistance re-post each other's stories, and the links they
carry differ only in noise: "www.", "http:", a trailing slash, `utm_*` parameters added by a
newsletter tool, a `#comments` fragment. `canonical_link` removes that noise so the store can
recognise the same article twice. It is a key, not a URL to send readers to: keep the original
link for that.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

__all__ = ["canonical_link", "is_tracking_param"]

# Query parameters that identify the click, not the document.
_TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        "_ga",
        "_gl",
        "amp",
        "dclid",
        "fbclid",
        "gclid",
        "gclsrc",
        "igshid",
        "mc_cid",
        "mc_eid",
        "mkt_tok",
        "msclkid",
        "oly_anon_id",
        "oly_enc_id",
        "ref",
        "ref_src",
        "s_cid",
        "twclid",
        "vero_id",
        "wickedid",
        "yclid",
    }
)
_TRACKING_PREFIXES: tuple[str, ...] = ("utm_", "pk_", "mtm_", "hsa_")
_DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443}


def is_tracking_param(name: str) -> bool:
    """True for query parameters added by analytics and share buttons (utm_source, fbclid…)."""
    lowered = name.lower()
    return lowered in _TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES)


def canonical_link(url: str) -> str:
    """The comparison key of an article URL.

    Lowercases scheme and host, treats http as https, drops "www.", default ports, the fragment,
    tracking parameters and a trailing slash, and sorts what is left of the query. Anything that is
    not an http(s) URL is returned stripped but otherwise unchanged.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a malformed port or IPv6 literal: nothing sensible to normalise
        return url
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return url

    host = parts.hostname.rstrip(".")  # hostname is already lowercased
    if host.startswith("www."):
        host = host[4:]
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"

    # Re-quote the path so that "%7E" and "~", or "é" and "%C3%A9", give the same key.
    path = quote(unquote(parts.path), safe="/:@!$&'()*+,;=-._~")
    path = path.rstrip("/")

    query_pairs = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if not is_tracking_param(name)
    ]
    query = urlencode(sorted(query_pairs))
    # userinfo is dropped on purpose: credentials are never part of an article's identity.
    return urlunsplit(("https", host, path, query, ""))
