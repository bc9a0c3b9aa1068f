"""The render stage: HTML email + plaintext twin.

Golden files: ``tests/golden/digest.html`` and ``tests/golden/digest.txt`` hold the render
of the fixed digest built below (fixed candidates, fixed dates; nothing volatile is left to
scrub). When a template change is intended, regenerate them and review the diff::

    NEWSLETTER_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_render.py

The fixture texts are adapted from real items of the outlets the digest is made for.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from newsletter.digest import Candidate, Digest, DigestSettings, build_digest
from newsletter.jinja import clip, create_environment, safe_href, template_dirs, wrap
from newsletter.render import (
    PREFERENCES_URL,
    UNSUBSCRIBE_URL,
    RenderedDigest,
    fill,
    render_digest,
)

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("NEWSLETTER_REGEN_GOLDEN") == "1"
BASE_URL = "https://digest.example.org/"
NOW = datetime(2026, 2, 6, 9, 0, tzinfo=UTC)
SIZE_BUDGET = 102 * 1024  # Gmail clips larger messages
WIDTH = 72
BARE_URL = re.compile(r"\s*(https?://|NLX)\S*")


def day(d: int, hour: int = 12) -> datetime:
    return datetime(2026, 2, d, hour, 0, tzinfo=UTC)


def candidate(
    id: int,
    source: str,
    title: str,
    *,
    published: datetime | None,
    primary: str | None = None,
    region: str | None = None,
    excerpt: str = "",
    author: str | None = None,
    canonical: str = "",
    link: str = "",
    fetched: datetime | None = None,
    pinned: bool = False,
) -> Candidate:
    return Candidate(
        id=id,
        source=source,
        title=title,
        link=link or f"https://news.example.org/{id}/",
        published=published,
        fetched=fetched or (published or day(5)) + timedelta(hours=1),
        excerpt=excerpt,
        author=author,
        canonical=canonical,
        countries=(primary,) if primary else (),
        primary=primary,
        region=region,
        pinned=pinned,
    )


CARACAS_MARCH = (
    "This Tuesday the Venezuelan capital, Caracas, was the scene of a massive demonstration "
    "of citizens demanding the return of the constitutional president, Nicolás Maduro, and "
    "the first lady, Cilia Flores, one month after they were abducted."
)

FIXED_CANDIDATES = (
    # Venezuela: one story carried by two outlets, a source over the per-source cap
    candidate(
        1,
        "Orinoco Tribune",
        "Massive March in Caracas Demands Return of President Maduro and Cilia Flores",
        published=day(4),
        fetched=day(4, 13),
        primary="VE",
        excerpt=CARACAS_MARCH,
        canonical="orinocotribune.com/massive-march-caracas",
        link="https://orinocotribune.com/massive-march-in-caracas-demands-return-of-president-maduro/",
    ),
    candidate(
        2,
        "teleSUR",
        "Multitudinaria marcha en Caracas exige el regreso del presidente Maduro",
        published=day(4),
        fetched=day(4, 15),
        primary="VE",
        excerpt=CARACAS_MARCH,
        canonical="orinocotribune.com/massive-march-caracas",
        link="https://www.telesurtv.net/multitudinaria-marcha-caracas-regreso-maduro/",
    ),
    candidate(
        3,
        "Orinoco Tribune",
        "Venezuela Exports First Shipment of Liquefied Petroleum Gas",
        published=day(3),
        primary="VE",
        excerpt="The cargo left the José Antonio Anzoátegui complex for the Caribbean, "
        "the first export of liquefied petroleum gas in the country’s history.",
        link="https://orinocotribune.com/venezuela-exports-first-shipment-of-lpg/",
    ),
    candidate(
        4,
        "Orinoco Tribune",
        "Workers Diplomacy & Bolivarian Brigades",
        published=day(1),
        primary="VE",
        author="Lev M. Velázquez Barriga",
        excerpt="In mid-December, the First Latin American, Caribbean, and World Congress of "
        "the Working Class in Defense of Peace was held in Caracas, despite the US maritime "
        "and satellite blockade of Venezuelan airspace.",
        link="https://orinocotribune.com/workers-diplomacy-bolivarian-brigades/",
    ),
    candidate(
        5,
        "Venezuelanalysis",
        "Self-Government in Times of Blockade: Luisa Cáceres Commune (Part I)",
        published=day(2),
        primary="VE",
        author="Cira Pascual Marquina",
        excerpt="Despite sanctions, a commune finds novel ways to survive through collecting "
        "and recycling waste in one of Venezuela’s coastal cities.",
        link="https://venezuelanalysis.com/interviews/self-government-blockade-luisa-caceres-commune/",
        pinned=True,
    ),
    # Mexico: Spanish title with accents, a byline
    candidate(
        6,
        "Mexico Solidarity Media",
        "Mexico’s Proposed Workweek Law Promises Triple Overtime, but Fear Rules the Workplace",
        published=day(3),
        primary="MX",
        author="Arturo Rivero",
        excerpt="The Senate proposal to pay overtime up to triple seeks to curb abuse of "
        "extended days; for thousands of workers the problem is how overtime hours are "
        "imposed. “Here they don’t ask you if you want to stay.”",
        link="https://mexicosolidaritymedia.org/mexicos-proposed-workweek-law-triple-overtime/",
    ),
    candidate(
        7,
        "Mexico Solidarity Media",
        "La Mañanera del Pueblo: inversión récord y reforma electoral en febrero",
        published=day(4),
        primary="MX",
        excerpt="Sheinbaum explained that Mexico’s foreign policy is guided by respect, "
        "equality and non-intervention, and that Mexico will send humanitarian aid to Cuba "
        "transparently.",
        link="https://mexicosolidaritymedia.org/peoples-mananera-february-3/",
    ),
    # Bolivia and Brazil: Spanish and Portuguese titles
    candidate(
        8,
        "Kawsachun News",
        "Bolivia rompe relaciones diplomáticas con Israel por crímenes de lesa humanidad",
        published=day(2),
        primary="BO",
        excerpt="Bolivia becomes the first country in the Americas to cut ties with Israel, "
        "“in repudiation and condemnation of the aggressive and disproportionate Israeli "
        "military offensive occurring in the Gaza Strip.”",
        link="https://kawsachunnews.com/bolivia-rompe-relaciones-con-israel",
    ),
    candidate(
        9,
        "Brasil de Fato",
        "Movimentos populares ocupam Brasília em solidariedade à Venezuela e a Cuba",
        published=day(5),
        primary="BR",
        author="Redação",
        excerpt="Sem-terra, sindicatos e estudantes marcharam até o Itamaraty para exigir "
        "respeito à soberania dos povos latino-americanos.",
        link="https://www.brasildefato.com.br/2026/02/05/movimentos-populares-ocupam-brasilia/",
    ),
    # a regional heading: no flag
    candidate(
        10,
        "Peoples Dispatch",
        "Joint Statement on the One-Month Anniversary of the US Kidnapping of President "
        "Nicolás Maduro",
        published=day(3),
        region="latin-america",
        author="International League of Peoples’ Struggle",
        excerpt="For one month, our organizations have joined hundreds of others and millions "
        "of people in taking to the streets from Caracas to New York, Havana, Bogotá, La Paz "
        "and Buenos Aires.",
        link="https://peoplesdispatch.org/2026/02/03/joint-statement-one-month-kidnapping/",
    ),
    candidate(
        11,
        "Prensa Latina",
        "Letter to the People for Integration of Latin America and the Caribbean",
        published=None,  # no date in the feed: filed by fetch time, shown without one
        fetched=day(5, 8),
        region="latin-america",
        excerpt="The organizations participating in the Conference on the Integration of "
        "Latin American and Caribbean Peoples approved a letter summarising the event’s "
        "discussions.",
        link="https://www.prensa-latina.cu/2026/02/05/letter-to-the-people-for-integration/",
    ),
    # an outlet reporting on somewhere else entirely
    candidate(
        12,
        "Press TV",
        "Harper: Canada Must Make ‘Any Sacrifice Necessary’ to Protect Its Independence",
        published=day(4),
        primary="CA",
        excerpt="Canada must make “any sacrifice necessary” to protect its independence as US "
        "expansionist pressure intensifies, former Prime Minister Harper says.",
        link="https://www.presstv.ir/Detail/2026/02/04/canada-harper-sacrifice/",
    ),
)

NOTE = (
    "<p>One month after the January 3 attack on Caracas, this week’s digest leads with the "
    "<strong>marches for Maduro’s return</strong>. Replies reach the editors.</p>"
)


def fixed_digest() -> Digest:
    return build_digest(
        FIXED_CANDIDATES,
        title="Latin America Weekly",
        now=NOW,
        settings=DigestSettings(max_per_source=2),
        note=NOTE,
    )


# Realistic lengths for the size budget: titles ~90, excerpts ~280, links ~90 characters.
TITLE_90 = (
    "Communal Councils in Lara Open Forty New Cooperative Bakeries Despite Blockade Shortages"
)
EXCERPT_280 = (
    "Despite sanctions, communes in the western state are finding novel ways to keep bread on "
    "the table: flour is bought collectively, ovens are shared between councils, and the "
    "profits go back into the neighbourhood’s water brigade, its nursery and the repair of "
    "the local clinic’s roof."
)
SOURCES = (
    "Orinoco Tribune",
    "Venezuelanalysis",
    "teleSUR English",
    "Prensa Latina",
    "Peoples Dispatch",
    "Kawsachun News",
    "Mexico Solidarity Media",
    "Brasil de Fato",
)
COUNTRIES = ("VE", "CU", "BO", "MX", "CO", "BR", "NI", "AR", "PE", "HN", "CL", "PS")


def big_digest(n: int = 100) -> Digest:
    """``n`` items over 12 countries and 8 sources, plus a few over the per-source cap."""

    def one(i: int, country: int, source: int) -> Candidate:
        return candidate(
            i,
            SOURCES[source],
            f"{TITLE_90[:-4]} {i:03d}",
            published=NOW - timedelta(hours=i),
            primary=COUNTRIES[country] if country else None,
            region=None if country else "latin-america",
            author="Cira Pascual Marquina" if i % 3 else None,
            excerpt=EXCERPT_280,
            link=f"https://venezuelanalysis.com/news/communal-councils-lara-bakeries-{i:05d}/",
        )

    cands = [one(i, i % len(COUNTRIES), (i // len(COUNTRIES)) % len(SOURCES)) for i in range(n)]
    cands += [one(n + i, 1, 0) for i in range(6)]  # Cuba / Orinoco Tribune: over the cap
    settings = DigestSettings(max_per_source=4, max_items=n)
    return build_digest(cands, title="Latin America Weekly", now=NOW, settings=settings)


@pytest.fixture(scope="module")
def rendered() -> RenderedDigest:
    return render_digest(fixed_digest(), base_url=BASE_URL)


# --- golden files ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["html", "text"])
def test_matches_golden_file(rendered: RenderedDigest, kind: str) -> None:
    actual = rendered.html if kind == "html" else rendered.text
    path = GOLDEN / ("digest.html" if kind == "html" else "digest.txt")
    if REGEN:
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="")
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{path.name} changed; NEWSLETTER_REGEN_GOLDEN=1 to accept"


def test_fixed_digest_covers_the_interesting_cases() -> None:
    digest = fixed_digest()
    names = [g.name for g in digest.countries]
    assert names[0] == "Venezuela"
    assert "Latin America" in names
    regional = next(g for g in digest.countries if g.name == "Latin America")
    assert regional.code is None and regional.flag == ""
    ve = digest.countries[0]
    orinoco = next(s for s in ve.sources if s.name == "Orinoco Tribune")
    assert orinoco.more == 1
    assert any(len(i.sources) == 2 for i in orinoco.items)


# --- content -----------------------------------------------------------------------------


def test_html_shape(rendered: RenderedDigest) -> None:
    html = rendered.html
    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="en">' in html
    assert '<meta name="color-scheme" content="light dark">' in html
    assert "prefers-color-scheme:dark" in html
    assert "max-width:480px" in html
    assert "max-width:600px" in html
    # headings: flag + name for countries, plain name for regions, anchors from the contents
    assert '<a href="#ve"' in html and 'id="ve"' in html
    assert "\U0001f1fb\U0001f1ea Venezuela</h2>" in html
    assert ">Latin America</h2>" in html
    assert 'href="#latin-america"' in html and 'id="latin-america"' in html
    # items
    assert "Orinoco Tribune · also in teleSUR · 4 Feb 2026" in html
    assert "by Cira Pascual Marquina" in html
    assert "Bolivia rompe relaciones diplomáticas con Israel" in html
    assert "Movimentos populares ocupam Brasília em solidariedade à Venezuela" in html
    assert "and 1 more from Orinoco Tribune" in html
    assert "Editor's pick" in html
    assert "<strong>marches for Maduro’s return</strong>" in html  # the note, unescaped
    assert f'href="{UNSUBSCRIBE_URL}"' in html and f'href="{PREFERENCES_URL}"' in html


def test_css_is_inlined_and_only_media_rules_stay(rendered: RenderedDigest) -> None:
    html = rendered.html
    styles = re.findall(r"<style[^>]*>(.*?)</style>", html, re.DOTALL)
    assert len(styles) == 1
    assert re.fullmatch(r"(@media[^{]*\{(?:[^{}]*\{[^{}]*\})*\})+", styles[0]), styles[0]
    assert " class=" not in html
    assert "<link" not in html
    assert 'style="margin:0;padding:0;background-color:#e9e6df"' in html  # on <body>


def test_text_shape(rendered: RenderedDigest) -> None:
    text = rendered.text
    lines = text.splitlines()
    assert lines[:2] == ["Latin America Weekly", "===================="]
    assert "Venezuela\n=========\n" in text
    assert "Orinoco Tribune\n---------------\n" in text
    assert "and 1 more from Orinoco Tribune" in text
    assert (
        "  https://orinocotribune.com/massive-march-in-caracas-demands-return-of-president-maduro/"
        in lines
    )
    assert UNSUBSCRIBE_URL in lines and PREFERENCES_URL in lines
    assert "marches for Maduro’s return" in text and "<strong>" not in text  # note as text


def assert_fits(text: str) -> None:
    too_wide = [
        line for line in text.splitlines() if len(line) > WIDTH and not BARE_URL.fullmatch(line)
    ]
    assert not too_wide


def test_text_fits_72_columns(rendered: RenderedDigest) -> None:
    assert_fits(rendered.text)
    assert_fits(render_digest(big_digest(), base_url=BASE_URL).text)
    filled = fill(
        rendered,
        unsubscribe_url="https://digest.example.org/unsubscribe/" + "x" * 80,
        preferences_url="https://digest.example.org/preferences/" + "y" * 80,
    )
    assert_fits(filled.text)


def test_long_words_are_not_broken() -> None:
    url = "https://example.org/" + "a" * 100
    assert wrap(f"see {url} now") == f"see\n{url}\nnow"


# --- safety ------------------------------------------------------------------------------


HOSTILE = (
    '<script>alert("x")</script> and "><img src=x onerror=alert(1)>',
    "Excerpt with <b>markup</b> & an </p></td></tr></table> escape attempt",
)


def hostile_digest() -> Digest:
    title, excerpt = HOSTILE
    cands = [
        candidate(
            1,
            "Evil <Feed> & Co",
            title,
            published=day(4),
            primary="VE",
            excerpt=excerpt,
            author='"><svg onload=alert(1)>',
            link="javascript:alert(document.cookie)",
        ),
        candidate(2, "Fine Source", title, published=day(4), primary="CU", link='https://x.org/"a'),
    ]
    return build_digest(cands, title="Weekly <i>digest</i>", now=NOW)


def test_hostile_feed_text_is_escaped() -> None:
    out = render_digest(hostile_digest(), base_url=BASE_URL)
    html = out.html
    assert "<script" not in html
    assert "<img" not in html
    assert "<svg" not in html
    assert "<i>" not in html
    assert "</p></td></tr></table> escape" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "Evil &lt;Feed&gt; &amp; Co" in html
    assert "javascript:" not in html
    assert 'href="#"' in html
    assert "href='https://x.org/\"a'" in html  # lxml picks the other quote
    # the plaintext twin shows the text as it is: it is never interpreted
    assert HOSTILE[0] in out.text
    assert "javascript:" not in out.text


def test_safe_href() -> None:
    assert safe_href(" https://example.org/a?b=1 ") == "https://example.org/a?b=1"
    assert safe_href("HTTP://EXAMPLE.ORG") == "HTTP://EXAMPLE.ORG"
    for bad in ("javascript:alert(1)", "JaVaScRiPt:x", "data:text/html,x", "vbscript:x", "//x"):
        assert safe_href(bad) == "#"


def test_environment_escapes_html_only_and_is_strict() -> None:
    env = create_environment()
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    escapes = env.autoescape
    assert callable(escapes)
    assert escapes("digest.html.j2") and escapes("page.html")
    assert not escapes("digest.txt.j2")
    with pytest.raises(UndefinedError):
        env.from_string("{{ missing }}").render()


# --- placeholders ------------------------------------------------------------------------


def test_placeholders_survive_premailer(rendered: RenderedDigest) -> None:
    for token in (UNSUBSCRIBE_URL, PREFERENCES_URL):
        assert re.fullmatch(r"[A-Za-z0-9-]+", token)
        assert rendered.html.count(token) == 1
        assert rendered.text.count(token) == 1
        assert f'href="{token}"' in rendered.html


def test_fill_substitutes_placeholders(rendered: RenderedDigest) -> None:
    unsub = "https://digest.example.org/u?t=abc&l=weekly"
    prefs = "https://digest.example.org/p?t=abc"
    out = fill(rendered, unsubscribe_url=unsub, preferences_url=prefs)
    assert UNSUBSCRIBE_URL not in out.html + out.text
    assert PREFERENCES_URL not in out.html + out.text
    assert 'href="https://digest.example.org/u?t=abc&amp;l=weekly"' in out.html
    assert unsub in out.text.splitlines() and prefs in out.text.splitlines()
    assert rendered.html.count(UNSUBSCRIBE_URL) == 1  # the original is untouched


# --- size --------------------------------------------------------------------------------


def test_100_item_digest_stays_under_gmail_clip() -> None:
    digest = big_digest()
    assert digest.item_count == 100
    assert digest.more_count > 0
    start = time.perf_counter()
    html = render_digest(digest, base_url=BASE_URL).html
    elapsed = time.perf_counter() - start
    size = len(html.encode("utf-8"))
    assert html.count(TITLE_90[:40]) == 100
    print(f"100-item digest: {size} bytes of HTML, rendered + inlined in {elapsed:.2f}s")
    assert size < SIZE_BUDGET, f"{size} bytes: Gmail clips at {SIZE_BUDGET}"


def test_clip_keeps_excerpts_short() -> None:
    assert clip("a b c", 10) == "a b c"
    long = "word " * 100
    clipped = clip(long, 50)
    assert len(clipped) <= 50 and clipped.endswith("…")


# --- misc --------------------------------------------------------------------------------


def test_lang_is_set_and_checked() -> None:
    out = render_digest(fixed_digest(), base_url=BASE_URL, lang="es")
    assert '<html lang="es">' in out.html
    assert "4 feb 2026" in out.html
    with pytest.raises(ValueError):
        render_digest(fixed_digest(), base_url=BASE_URL, lang='en" onload="x')


def test_empty_digest_renders() -> None:
    digest = build_digest([], title="Latin America Weekly", now=NOW)
    out = render_digest(digest, base_url=BASE_URL)
    assert "No new stories this week." in out.html
    assert "No new stories this week." in out.text
    assert UNSUBSCRIBE_URL in out.html


# --- packaging ---------------------------------------------------------------------------


REPO = Path(__file__).resolve().parent.parent


def test_templates_found_in_checkout() -> None:
    assert template_dirs() == [REPO / "templates"]


def test_wheel_ships_templates_and_finds_them(tmp_path: Path) -> None:
    """Build the wheel, unzip it alone and render from it: only its copy of templates/."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("newsletter-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for name in ("digest.html.j2", "digest.txt.j2", "digest.css"):
            assert f"newsletter/templates/{name}" in names
        site = tmp_path / "site"
        zf.extractall(site)
    code = (
        "import newsletter.jinja as j, sys\n"
        "from pathlib import Path\n"
        "assert j.template_dirs() == [j.PACKAGE_TEMPLATES], j.template_dirs()\n"
        f"assert Path(j.__file__).is_relative_to({str(site)!r})\n"
        "print(j.environment().get_template('digest.html.j2').filename)\n"
    )
    # -I would drop PYTHONPATH; -s + a cwd outside the repo keeps the checkout off sys.path
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("PYTHONHOME", None)
    done = subprocess.run(
        [sys.executable, "-s", "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(site / "newsletter" / "templates" / "digest.html.j2")
