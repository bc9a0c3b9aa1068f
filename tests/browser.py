"""Debian's headless Chromium for the browser tests: where it is, how it starts, when to skip.

Nothing here downloads a browser; without /usr/bin/chromium the tests skip and say why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# As root, in a sandbox with no network but loopback: no sandboxing, no GPU, and none of
# the background connections a closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium"
    ),
]
