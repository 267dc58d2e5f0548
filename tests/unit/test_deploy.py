"""The container files run only what Herald has: every command ``compose.yaml`` and the ``Dockerfile`` run is a
``herald`` CLI command taking those options, every ``HERALD_*`` variable they set is a setting Herald reads,
and the health check asks an endpoint the app serves, on the port the command listens on. (No Docker engine
is needed: the files are parsed, and the commands resolved by click as the container would.)"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from herald.cli import main
from herald.core.config import Settings
from herald.core.metrics import herald_version

ROOT = Path(__file__).resolve().parents[2]
HERALD_SERVICES = ("api", "worker", "scheduler")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            found.append((word.upper(), rest.strip()))
    final = max(i for i, (word, _) in enumerate(found) if word == "FROM")
    return found[final:]


def resolve(argv: list[str]) -> click.Context:
    """Resolve ``argv`` as the ``herald`` entry point would, down to the leaf command, and parse its options;
    raise if any part is unknown (a command, an option, a value of the wrong type)."""
    assert argv[0] == "herald", f"{argv} does not run herald"
    command: click.Command = main
    name, rest = "herald", list(argv[1:])
    ctx = main.make_context(name, [], resilient_parsing=True)
    while isinstance(command, click.Group):
        assert rest, f"{argv} names no command of {name}"
        found = command.get_command(ctx, rest[0])
        assert found is not None, f"{argv}: herald has no command {rest[0]!r}"
        name, command, rest = rest[0], found, rest[1:]
    return command.make_context(name, rest, parent=ctx)


def test_resolve_refuses_what_the_cli_lacks() -> None:
    with pytest.raises(AssertionError):
        resolve(["herald", "apiserver"])
    with pytest.raises(click.UsageError):
        resolve(["herald", "worker", "--host", "0.0.0.0"])
    with pytest.raises(click.BadParameter):
        resolve(["herald", "api", "--port", "http"])
    assert resolve(["herald", "keys", "list"]).info_name == "list"


def test_compose_runs_postgres_and_the_three_herald_roles() -> None:
    services = compose()["services"]
    assert set(HERALD_SERVICES) <= set(services)
    assert services["db"]["image"].startswith("postgres:")
    for name in HERALD_SERVICES:
        command = services[name]["command"]
        assert command[:2] == ["herald", name]
        assert services[name]["environment"]["HERALD_DATABASE_URL"].startswith("postgresql://")
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", HERALD_SERVICES)
def test_every_compose_command_exists_in_the_cli(service: str) -> None:
    command = compose()["services"][service]["command"]
    argv = shlex.split(command) if isinstance(command, str) else command
    ctx = resolve(argv)
    assert ctx.info_name == service
    if service == "api":
        assert ctx.params["host"] == "0.0.0.0"  # reachable from outside the container
        published = compose()["services"]["api"]["ports"][0]
        assert published.rsplit(":", 1)[1] == str(ctx.params["port"])


def test_compose_sets_only_variables_herald_reads() -> None:
    services = compose()["services"]
    for name in HERALD_SERVICES:
        env = services[name]["environment"]
        unknown = [k for k in env if k.startswith("HERALD_") and k[7:].lower() not in Settings.model_fields]
        assert unknown == [], f"{name}: Settings reads no {unknown}"
        assert env["HERALD_ENV"] == "production"
        assert "HERALD_SECRET_KEY" in env


def test_the_dockerfile_runs_herald_as_a_user_with_a_health_check() -> None:
    steps = dockerfile_instructions()
    words = [word for word, _ in steps]
    base = steps[0][1]
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base)
    user = [args for word, args in steps if word == "USER"]
    assert user
    assert user[-1] not in ("root", "0")
    assert any(word == "RUN" and "pip install" in args for word, args in steps)
    cmd = resolve(json.loads(next(args for word, args in steps if word == "CMD")))
    assert cmd.info_name == "serve"
    for env_args in (args for word, args in steps if word == "ENV"):
        names = re.findall(r"(HERALD_\w+)=", env_args)
        assert all(n[7:].lower() in Settings.model_fields for n in names), names
    assert words.index("USER") < words.index("CMD")
    check = next(args for word, args in steps if word == "HEALTHCHECK")
    argv = json.loads(check[check.index("CMD") + 3 :].strip())
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", " ".join(argv))
    assert url is not None
    assert int(url.group(1)) == cmd.params["port"]
    from herald.web.api.routes import ops

    assert url.group(2) in {route.path for route in ops.router.routes}  # type: ignore[attr-defined]


def test_the_image_installs_the_package_it_names() -> None:
    assert herald_version() != ""  # the version build info reports comes from the installed package
    text = (ROOT / "Dockerfile").read_text()
    assert "COPY pyproject.toml README.md" in text  # pyproject's readme must be in the build context
    assert (ROOT / "README.md").exists()
