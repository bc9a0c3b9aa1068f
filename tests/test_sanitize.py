"""clean_html against a hostile corpus; html_to_text and excerpt."""

from __future__ import annotations

import re

import pytest

from newsletter.sanitize import ALLOWED_TAGS, clean_html, excerpt, html_to_text, safe_url

BASE = "https://orinocotribune.com/feed/"

# XSS cheat-sheet style inputs. None of them may keep anything executable.
HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/xss.js></SCRIPT>",
    "<script>alert(1)//<</script>",
    "<<script>script>alert(1)<</script>/script>",
    '<img src="x" onerror="alert(1)">',
    "<img src=x onerror=alert(1)//",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JAVASCRIPT:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="java\tscript:alert(1)">x</a>',
    '<a href="java&#x09;script:alert(1)">x</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    '<a href="&#x6A;avascript:alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    '<a href="https://ok.example" onclick="alert(1)">x</a>',
    '<a href="https://ok.example" onmouseover=alert(1)>x</a>',
    '<p style="background:url(javascript:alert(1))">x</p>',
    '<p style="expression(alert(1))">x</p>',
    '<div style="width: expression(alert(1));">x</div>',
    "<style>@import 'https://evil.example/x.css';</style>",
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    '<iframe src="https://evil.example"></iframe>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<frameset><frame src="javascript:alert(1)"></frameset>',
    '<object data="https://evil.example/x.swf"></object>',
    '<embed src="https://evil.example/x.swf">',
    '<form action="https://evil.example"><input type="password"><button>go</button></form>',
    '<svg onload="alert(1)"><circle r="1"/></svg>',
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table>",
    '<body onload="alert(1)">x</body>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<details open ontoggle="alert(1)">x</details>',
    '<video><source onerror="alert(1)"></video>',
    "<audio src=x onerror=alert(1)>",
    '<input autofocus onfocus="alert(1)">',
    '<marquee onstart="alert(1)">x</marquee>',
    "<!--<script>alert(1)</script>-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    '<a href="https://ok.example" target="_blank">x</a>',
    '<p id="x" class="y" data-x="1" title="t">x</p>',
    "<template><script>alert(1)</script></template>",
    "<noscript><img src=x onerror=alert(1)></noscript>",
    "<textarea><script>alert(1)</script></textarea>",
    '<a href="https://ok.example/&quot;onmouseover=&quot;alert(1)">x</a>',
]

_TAG = re.compile(r"<\s*/?\s*([a-zA-Z][a-zA-Z0-9]*)")
_ATTRIBUTE = re.compile(r"\s([a-zA-Z-]+)\s*=")


@pytest.mark.parametrize("html", HOSTILE)
def test_hostile_input_leaves_nothing_executable(html: str) -> None:
    cleaned = clean_html(html, base_url=BASE)
    lowered = cleaned.lower()
    for needle in ("<script", "javascript:", "vbscript:", "data:", "<iframe", "<style", "<form"):
        assert needle not in lowered, cleaned
    assert not re.search(r"\son[a-z]+\s*=", lowered), cleaned
    assert "style=" not in lowered and "srcdoc" not in lowered
    # Only allow-listed tags, and only href / title / rel attributes.
    assert {tag.lower() for tag in _TAG.findall(cleaned)} <= ALLOWED_TAGS, cleaned
    assert set(_ATTRIBUTE.findall(cleaned)) <= {"href", "rel", "title"}, cleaned


def test_links_are_absolutized_and_marked_noopener() -> None:
    cleaned = clean_html('<p><a href="/2026/11/venezuela-lpg/">Venezuela exports LPG</a></p>', BASE)
    assert cleaned == (
        '<p><a href="https://orinocotribune.com/2026/11/venezuela-lpg/" '
        'rel="noopener noreferrer">Venezuela exports LPG</a></p>'
    )


def test_protocol_relative_links_take_the_base_scheme() -> None:
    cleaned = clean_html('<a href="//venezuelanalysis.com/news/1">x</a>', BASE)
    assert 'href="https://venezuelanalysis.com/news/1"' in cleaned


def test_mailto_is_kept_and_rel_replaced() -> None:
    cleaned = clean_html('<a href="mailto:info@mexicosolidarity.org" rel="opener">write</a>')
    assert cleaned == (
        '<a href="mailto:info@mexicosolidarity.org" rel="noopener noreferrer">write</a>'
    )


def test_relative_link_without_base_loses_its_href_but_keeps_its_text() -> None:
    assert clean_html('<p><a href="/x">read more</a></p>') == "<p>read more</p>"


def test_refused_link_keeps_its_text() -> None:
    assert clean_html('<p>See <a href="javascript:alert(1)">this</a>.</p>') == "<p>See this.</p>"


def test_allowed_structure_survives() -> None:
    html = (
        "<h2>When the Empire Starts Rebuilding the Cage</h2>"
        "<p>Every system has a <em>moment</em> when it <strong>stops pretending</strong>.</p>"
        "<blockquote><p>Hands off Venezuela!</p></blockquote>"
        "<ul><li>Caracas</li><li>La Guaira</li></ul><ol><li>one</li></ol><p>a<br>b</p>"
    )
    assert clean_html(html) == html


def test_disallowed_wrappers_are_unwrapped_not_dropped() -> None:
    html = '<div class="entry"><span style="color:red">Cuba</span> <font>resists</font></div>'
    assert clean_html(html) == "Cuba resists"


def test_images_are_removed() -> None:
    assert clean_html('<p>x<img src="https://tracker.example/p.gif" width="1"></p>') == "<p>x</p>"


def test_script_and_style_content_is_dropped_entirely() -> None:
    assert clean_html("<p>a</p><script>var x = 1;</script><style>p{}</style>") == "<p>a</p>"


def test_entities_and_unicode_survive() -> None:
    cleaned = clean_html("<p>Nicolás &amp; Cilia &#8220;libres&#8221; – São Paulo</p>")
    assert cleaned == "<p>Nicolás &amp; Cilia “libres” – São Paulo</p>"


def test_empty_and_plain_input() -> None:
    assert clean_html("") == ""
    assert clean_html("just text") == "just text"
    assert clean_html("5 < 6 & 7 > 3") == "5 &lt; 6 &amp; 7 &gt; 3"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://ok.example/a", "https://ok.example/a"),
        ("/a", "https://orinocotribune.com/a"),
        ("a", "https://orinocotribune.com/feed/a"),
        ("mailto:x@y.org", "mailto:x@y.org"),
        ("javascript:alert(1)", None),
        (" \tjavascript:alert(1)", None),
        ("data:text/html,x", None),
        ("ftp://x.example/", None),
        ("https://[::1", None),
        ("", None),
    ],
)
def test_safe_url(url: str, expected: str | None) -> None:
    assert safe_url(url, BASE) == expected


def test_html_to_text_keeps_paragraphs_as_lines() -> None:
    html = (
        "<p>By Prince Kapone &#8211; Nov 16, 2026</p>\n<p>The U.S. economy is  generating\n"
        "profits.</p><h2>The Cage</h2><ul><li>one</li><li>two</li></ul>x<br>y"
    )
    assert html_to_text(html) == (
        "By Prince Kapone – Nov 16, 2026\nThe U.S. economy is generating profits.\nThe Cage\n"
        "one\ntwo\nx\ny"
    )


def test_html_to_text_drops_invisible_content() -> None:
    html = "<style>p{}</style><script>alert(1)</script><p>visible</p><template>no</template>"
    assert html_to_text(html) == "visible"


def test_html_to_text_decodes_entities_and_survives_broken_markup() -> None:
    assert html_to_text("Venezuela&#8217;s &amp; Cuba&rsquo;s") == "Venezuela’s & Cuba’s"
    assert html_to_text("<p>unclosed <b>bold") == "unclosed bold"
    assert html_to_text("5 < 6 and 7 > 3") == "5 < 6 and 7 > 3"


def test_excerpt_short_text_is_unchanged() -> None:
    assert excerpt("  Hands off   Venezuela!  ") == "Hands off Venezuela!"


def test_excerpt_cuts_at_a_word_boundary() -> None:
    text = (
        "The Luisa Cáceres de Arismendi Commune, one of the most advanced communes in the "
        "country, grew up in the shadow of this multibillion-dollar business."
    )
    cut = excerpt(text, 60)
    assert len(cut) <= 60
    assert cut.endswith("…")
    assert text.startswith(cut[:-1])
    assert text[len(cut) - 1] == " "  # the cut fell between words


def test_excerpt_does_not_end_on_punctuation_before_the_ellipsis() -> None:
    assert excerpt("Caracas, La Guaira, Miranda, Aragua and more", 21) == "Caracas, La Guaira…"


def test_excerpt_cuts_a_single_long_word() -> None:
    cut = excerpt("x" * 500, 280)
    assert len(cut) == 280 and cut.endswith("…")
