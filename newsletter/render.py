"""The render stage: a :class:`~newsletter.digest.Digest` -> an HTML email and its plaintext twin.

Both are rendered once per digest. The HTML has its CSS inlined by premailer once, here;
the per-subscriber links are placeholders (:data:`UNSUBSCRIBE_URL`,
:data:`PREFERENCES_URL`) that the mailer substitutes in each message. The tokens are made
only of ASCII letters, so no HTML escaping, URL quoting, premailer pass or transfer
encoding can split or alter them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from functools import partial
from urllib.parse import urlsplit

from markupsafe import Markup
from premailer import Premailer

from newsletter.digest import CountryGroup, Digest, DigestItem
from newsletter.jinja import environment, format_day, slug

UNSUBSCRIBE_URL = "NLXUNSUBSCRIBEURLXLN"
PREFERENCES_URL = "NLXPREFERENCESURLXLN"
PLACEHOLDERS = (UNSUBSCRIBE_URL, PREFERENCES_URL)

HTML_TEMPLATE = "digest.html.j2"
TEXT_TEMPLATE = "digest.txt.j2"

# Hidden filler after the preheader so that mail clients do not pull the start of the
# body into the inbox preview: zero-width non-joiner + no-break space, repeated.
_PREHEADER_PAD = "\N{ZERO WIDTH NON-JOINER}\N{NO-BREAK SPACE}" * 40
_LANG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_STYLE = re.compile(r"(<style[^>]*>)(.*?)(</style>)", re.DOTALL)
_STYLE_ATTR = re.compile(r"""(<[a-z][a-z0-9]*\b[^<>]*? style=(["']))((?:(?!\2)[^<>])*)(\2)""")


@dataclass(frozen=True)
class RenderedDigest:
    html: str  # CSS inlined once with premailer; placeholders still inside
    text: str


def render_digest(digest: Digest, *, base_url: str, lang: str = "en") -> RenderedDigest:
    """Render ``digest`` to inlined HTML and to plaintext, placeholders left in."""
    if not _LANG.fullmatch(lang):
        raise ValueError(f"not a language tag: {lang!r}")
    context = _context(digest, base_url=base_url, lang=lang)
    env = environment()
    html = env.get_template(HTML_TEMPLATE).render(context)
    text = env.get_template(TEXT_TEMPLATE).render(context)
    return RenderedDigest(html=inline_css(html), text=text)


def fill(rendered: RenderedDigest, *, unsubscribe_url: str, preferences_url: str) -> RenderedDigest:
    """Substitute the placeholders, for previews (the mailer does its own, on bytes).

    The URLs go into the HTML attribute-escaped.
    """
    html_values = {
        UNSUBSCRIBE_URL: str(Markup.escape(unsubscribe_url)),
        PREFERENCES_URL: str(Markup.escape(preferences_url)),
    }
    text_values = {UNSUBSCRIBE_URL: unsubscribe_url, PREFERENCES_URL: preferences_url}
    return replace(
        rendered,
        html=_substitute(rendered.html, html_values),
        text=_substitute(rendered.text, text_values),
    )


def inline_css(html: str) -> str:
    """Inline the ``<style>`` rules; only the @media rules stay behind, in ``<style>``.

    Classes are removed afterwards (they only exist to be inlined), links are not
    rewritten and nothing is fetched.
    """
    out = Premailer(
        html,
        base_url=None,
        disable_link_rewrites=True,
        remove_classes=True,
        strip_important=False,  # the @media rules need their !important
        keep_style_tags=False,
        exclude_pseudoclasses=True,
        disable_validation=True,
        allow_network=False,
        allow_loading_external_files=False,
        align_floating_images=False,
        cssutils_logging_level=logging.CRITICAL,
    ).transform(pretty_print=False)
    out = _STYLE.sub(lambda m: m[1] + _squeeze_css(m[2]) + m[3], str(out))
    # premailer writes "a:1; b:2"; every byte counts a hundred times over
    return _STYLE_ATTR.sub(lambda m: m[1] + m[3].replace("; ", ";") + m[4], out)


# --- helpers -----------------------------------------------------------------------------


def _context(digest: Digest, *, base_url: str, lang: str) -> dict[str, object]:
    sections = _sections(digest.countries)
    named = [g.name for g in digest.countries]
    summary = digest.subject
    if summary.startswith(digest.title + ": "):
        summary = summary[len(digest.title) + 2 :]
    contents = "In this issue: " + " · ".join(
        f"{g.name}\N{NO-BREAK SPACE}({g.item_count})" for g in digest.countries
    )
    return {
        "digest": digest,
        "lang": lang,
        # the note is already safe HTML (rendered from the editor's Markdown and sanitised)
        "note": Markup(digest.note),  # noqa: S704
        "sections": sections,
        "preheader": summary if named else digest.title,
        "preheader_pad": _PREHEADER_PAD,
        "contents": contents,
        "meta": partial(item_meta, lang=lang),
        "base_url": base_url,
        "site": _site(base_url),
        "unsubscribe_url": UNSUBSCRIBE_URL,
        "preferences_url": PREFERENCES_URL,
    }


def _sections(groups: tuple[CountryGroup, ...]) -> list[tuple[str, CountryGroup]]:
    """Each heading with a unique anchor: ``ve``, ``latin-america``, ``elsewhere``."""
    seen: set[str] = set()
    out = []
    for g in groups:
        anchor = base = (g.code or slug(g.name)).lower()
        n = 2
        while anchor in seen:
            anchor, n = f"{base}-{n}", n + 1
        seen.add(anchor)
        out.append((anchor, g))
    return out


def item_meta(item: DigestItem, *, lang: str = "en") -> str:
    """``Orinoco Tribune · also in teleSUR · 3 Feb 2026 · by Jane Doe``.

    The source is named only when several carried the story (the heading above names it
    otherwise).
    """
    bits = []
    if item.pinned:
        bits.append("Editor's pick")
    if len(item.sources) > 1:
        bits.append(f"{item.sources[0]} · also in {', '.join(item.sources[1:])}")
    if item.published is not None:
        bits.append(format_day(item.published, lang))
    if item.author and item.author.strip():
        bits.append(f"by {' '.join(item.author.split())}")
    return " · ".join(bits)


def _site(base_url: str) -> str:
    parts = urlsplit(base_url)
    return (parts.netloc + parts.path.rstrip("/")) or base_url


def _squeeze_css(css: str) -> str:
    css = re.sub(r"\s+", " ", css)
    return re.sub(r"\s*([{};:,])\s*", r"\1", css).strip()


def _substitute(text: str, values: dict[str, str]) -> str:
    pattern = re.compile("|".join(re.escape(k) for k in values))
    return pattern.sub(lambda m: values[m[0]], text)


__all__ = [
    "PREFERENCES_URL",
    "UNSUBSCRIBE_URL",
    "RenderedDigest",
    "fill",
    "inline_css",
    "item_meta",
    "render_digest",
]
