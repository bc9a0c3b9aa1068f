"""`newsletter demo`: the whole pipeline offline, end to end, in a subprocess."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "newsletter", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "3 delivered, 0 failed, 0 skipped" in proc.stdout
    for name in ("digest.html", "digest.txt", "digest.eml"):
        assert (out / "preview" / name).stat().st_size > 1000
        assert str(out / "preview" / name) in proc.stdout
    mails = sorted((out / "mail").glob("*.eml"))
    assert sorted(m.name.split("-", 1)[1] for m in mails) == [
        "ana@example.org.eml",
        "bruno@example.org.eml",
        "carla@example.org.eml",
    ]
    subjects = {}
    for path in mails:
        assert str(path) in proc.stdout
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert msg["List-Unsubscribe"].startswith("<http://localhost:8000/unsubscribe/")
        plain, _html = msg.iter_parts()
        assert "Venezuela" in plain.get_content() or "Bolivia" in plain.get_content()
        subjects[msg["To"]] = msg["Subject"]
    # the three subscribers chose differently, so they got three different digests
    assert len(set(subjects.values())) == 3
    assert (out / "newsletter.toml").exists() and (out / "demo.db").exists()
