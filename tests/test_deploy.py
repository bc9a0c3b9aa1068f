"""deploy/: what can be checked without systemd running or docker.

- the systemd units pass ``systemd-analyze verify`` (when it is installed) and carry the
  hardening we promise;
- the crontab line is valid and calls ``run-due`` the way the units do;
- compose.yaml parses (PyYAML of the system python3, in a subprocess) into the services
  we document;
- the Dockerfile's steps agree with the repository and pyproject, and the wheel it builds
  holds the templates and package data and installs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from croniter import croniter

from newsletter.cli import app
from newsletter.config import load_config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
INSTALLED = "/opt/newsletter/bin/newsletter"
CONFIG = "/etc/newsletter/newsletter.toml"
ENV_FILE = "/etc/newsletter/newsletter.env"


def unit(name: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file as section -> [(key, value)] (keys repeat in systemd units)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in (UNITS / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections.setdefault(current, [])
            continue
        key, _, value = line.partition("=")
        sections[current].append((key.strip(), value.strip()))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in section if k == key]


def command_names() -> set[str]:
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    return names | {g.name or "" for g in app.registered_groups}


# -- systemd -------------------------------------------------------------------------------


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd provides it)")
    # verify checks that ExecStart exists: point it at this environment's entry point.
    here = Path(sys.executable).parent / "newsletter"
    assert here.exists(), here
    for path in UNITS.iterdir():
        (tmp_path / path.name).write_text(path.read_text().replace(INSTALLED, str(here)))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["newsletter-run.service", "newsletter-run.timer", "newsletter-web.service"]
    result = subprocess.run(
        [analyze, "verify", "--man=no", *(f"./{n}" for n in names)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # unknown or unparsable settings are only warnings: there must be none
    assert result.stdout + result.stderr == ""


@pytest.mark.parametrize("name", ["newsletter-run.service", "newsletter-web.service"])
def test_services_are_hardened(name: str) -> None:
    service = unit(name)["Service"]
    expected = {
        "DynamicUser": "yes",
        "User": "newsletter",
        "StateDirectory": "newsletter",
        "WorkingDirectory": "/var/lib/newsletter",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "EnvironmentFile": ENV_FILE,
        "CapabilityBoundingSet": "",
    }
    for key, value in expected.items():
        assert values(service, key) == [value], key
    assert set(values(service, "RestrictAddressFamilies")[0].split()) == {
        "AF_INET",
        "AF_INET6",
        "AF_UNIX",
    }
    assert "@system-service" in values(service, "SystemCallFilter")
    assert f"NEWSLETTER_CONFIG={CONFIG}" in values(service, "Environment")
    [exec_start] = values(service, "ExecStart")
    argv = shlex.split(exec_start)
    assert argv[0] == INSTALLED and argv[1] in command_names()


def test_timer_runs_run_due_every_five_minutes() -> None:
    timer = unit("newsletter-run.timer")
    assert values(timer["Timer"], "OnCalendar") == ["*:0/5"]
    assert values(timer["Timer"], "Unit") == ["newsletter-run.service"]
    assert values(timer["Install"], "WantedBy") == ["timers.target"]
    run = unit("newsletter-run.service")["Service"]
    assert values(run, "Type") == ["oneshot"]
    assert shlex.split(values(run, "ExecStart")[0])[1:] == ["run-due"]
    web = unit("newsletter-web.service")
    assert shlex.split(values(web["Service"], "ExecStart")[0])[1] == "serve"
    assert values(web["Install"], "WantedBy") == ["multi-user.target"]


# -- cron ----------------------------------------------------------------------------------


def test_crontab_line() -> None:
    entries = [
        line
        for line in (DEPLOY / "crontab").read_text().splitlines()
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
    ]
    [entry] = entries
    fields = entry.split(None, 6)
    schedule, user, command = " ".join(fields[:5]), fields[5], fields[6]
    assert schedule == "*/5 * * * *" and croniter.is_valid(schedule)
    assert user == "newsletter"
    assert "%" not in command  # cron would turn it into a newline
    assert f". {ENV_FILE}" in command
    assert f"{INSTALLED} --config {CONFIG} run-due" in command


def test_example_config_and_env_are_valid(tmp_path: Path) -> None:
    config = load_config(DEPLOY / "newsletter.toml.example", env={})
    assert config.newsletter.base_url.startswith("https://")
    assert config.database_url == "sqlite:////var/lib/newsletter/subscribers.db"
    env = (DEPLOY / "newsletter.env.example").read_text().splitlines()
    keys = {line.split("=", 1)[0] for line in env if line and not line.startswith("#")}
    assert keys == {"NEWSLETTER_SECRET", "NEWSLETTER_SMTP_PASSWORD"}


# -- compose -------------------------------------------------------------------------------


def load_yaml(path: Path) -> dict[str, object]:
    """Parse YAML with the system python3's PyYAML (the venv has no YAML parser)."""
    python3 = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or shutil.which(
        "python3"
    )
    if python3 is None:
        pytest.skip("no system python3 to parse YAML with")
    code = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"
    result = subprocess.run(
        [python3, "-c", code, str(path)], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0 and "No module named 'yaml'" in result.stderr:
        pytest.skip(f"{python3} has no PyYAML")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def test_compose_file_parses_into_the_documented_services() -> None:
    compose = load_yaml(DEPLOY / "compose.yaml")
    services = compose["services"]
    assert isinstance(services, dict)
    assert set(services) == {"init", "scheduler", "web", "smtp"}
    commands = command_names()
    for name in ("init", "scheduler", "web"):
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["command"][0] in commands
        assert "data:/data" in service["volumes"]
        assert service["environment"]["DATABASE_URL"] == "sqlite:////data/subscribers.db"
        assert (DEPLOY / f"{service['env_file']}.example").is_file()
    assert services["init"]["command"] == ["init"]
    assert services["scheduler"]["command"][0] == "schedule"
    assert services["web"]["command"][:1] == ["serve"]
    for name in ("scheduler", "web"):
        assert services[name]["depends_on"]["init"] == {
            "condition": "service_completed_successfully"
        }
    assert services["smtp"]["image"].startswith("boky/postfix")
    assert set(compose["volumes"]) == {"data", "postfix-spool"}  # type: ignore[arg-type]


# -- Dockerfile and the wheel --------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined."""
    text = (DEPLOY / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    steps = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            steps.append((word.upper(), " ".join(rest.split())))
    return steps


def test_dockerfile_steps_agree_with_the_repository() -> None:
    steps = dockerfile()
    froms = [args for word, args in steps if word == "FROM"]
    assert froms == ["python:3.11-slim AS builder", "python:3.11-slim"]
    split = next(i for i, (w, _) in enumerate(steps) if w == "FROM" and i > 0)
    builder, runtime = steps[:split], steps[split:]
    # the builder copies exactly what pyproject says the wheel is built from
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    hatch = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {"pyproject.toml", pyproject["project"]["readme"], *hatch["packages"]}
    needed |= set(hatch.get("force-include", {}))
    copied: set[str] = set()
    for word, args in builder:
        if word == "COPY":
            copied.update(Path(src).as_posix() for src in args.split()[:-1])
    assert needed <= copied, needed - copied
    for src in copied:
        assert (ROOT / src).exists(), src
    assert any(w == "RUN" and "pip wheel" in a and "/wheels" in a for w, a in builder)
    # the runtime installs only from those wheels, runs unprivileged, keeps data on a volume
    install = [a for w, a in runtime if w == "RUN" and "pip install" in a]
    assert install and "--no-index --find-links /wheels newsletter" in install[0]
    [user] = [a for w, a in runtime if w == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    assert ("VOLUME", '["/data"]') in runtime
    env = " ".join(a for w, a in runtime if w == "ENV")
    assert "DATABASE_URL=sqlite:////data/subscribers.db" in env
    assert f"NEWSLETTER_CONFIG={CONFIG}" in env
    [health] = [a for w, a in runtime if w == "HEALTHCHECK"]
    assert '"newsletter", "status", "--check"' in health
    assert ("ENTRYPOINT", '["newsletter"]') in runtime
    [cmd] = [json.loads(a) for w, a in runtime if w == "CMD"]
    assert cmd[0] in command_names()


def package_data() -> set[str]:
    """The files the wheel must carry besides Python modules, as paths in the wheel."""
    expected = {
        f"newsletter/templates/{p.relative_to(ROOT / 'templates').as_posix()}"
        for p in (ROOT / "templates").rglob("*")
        if p.is_file()
    }
    for p in (ROOT / "newsletter").rglob("*"):
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts:
            expected.add(p.relative_to(ROOT).as_posix())
    samples = ROOT / "samples"  # bundled sample feeds, should they move out of the package
    if samples.is_dir():
        expected |= {
            f"newsletter/samples/{p.relative_to(samples).as_posix()}"
            for p in samples.rglob("*")
            if p.is_file()
        }
    return expected


def test_the_wheel_holds_templates_and_data_and_installs(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    offline = ("Failed to establish a new connection", "No matching distribution found")
    if build.returncode != 0 and any(s in build.stderr for s in offline):
        pytest.skip("building needs hatchling from the package index, which is unreachable")
    assert build.returncode == 0, build.stderr
    [wheel] = wheels.glob("newsletter-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "newsletter = newsletter.cli:main" in z.read(entry_points).decode()
    assert "newsletter/templates/digest.html.j2" in names
    assert package_data() <= names, package_data() - names
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    check = (
        "import sys, newsletter; from importlib import resources;"
        "assert newsletter.__file__.startswith(sys.argv[1]), newsletter.__file__;"
        "assert (resources.files('newsletter') / 'templates' / 'digest.html.j2').is_file();"
        "from newsletter.cli import main; sys.exit(main(['--version']))"
    )
    run = subprocess.run(
        [sys.executable, "-c", check, str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(target)},
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("newsletter ")
