"""newsletter: a weekly email digest of independent Latin American outlets.

The pipeline, one module (or package) per stage:

    feeds      fetch (httpx) + parse (feedparser on bytes) + sanitize (nh3)
    store      SQLModel tables and queries (models.py holds the tables)
    countries  which country each item reports on
    digest     grouping: country -> source -> items, with caps
    render     Jinja2 HTML + plaintext, CSS inlined once per variant
    mailer     one message per subscriber, delivered over SMTP
    schedule   croniter slots
    cli, web   the edges people touch

``pipeline`` is the one place where the stages meet.
"""

__version__ = "0.1.0"
