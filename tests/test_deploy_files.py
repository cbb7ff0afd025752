"""The image files, linted and kept in step with the deploy/ files the topology test runs.

Docker cannot run here, so the Dockerfile and compose.yaml are checked for what can go out
of step without a build: the linter's findings, the nginx file the proxy mounts, the setting
names the instances get, the addresses and ports the pieces use to find one another.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import httpx
import yaml

from auth.config import declarations
from graph.settings import SECTIONS
from tests.factories import signup
from tests.servers import authgraph_env, free_port, serve_command
from tests.topology import (
    ENV_FILE,
    NGINX_SITE,
    ROOT,
    SYSTEMD_UNIT,
    placeholders,
    read_env_file,
    unit_exec_start,
)

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
HADOLINT = Path(sys.executable).with_name("hadolint")
SETTINGS = {declared.env for section in SECTIONS for _, declared in declarations(section)}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def instructions(name: str) -> list[str]:
    """The arguments of every ``name`` instruction of the Dockerfile (continuations joined)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [
        line.split(None, 1)[1]
        for line in text.splitlines()
        if line.split(None, 1)[:1] == [name] and len(line.split(None, 1)) == 2
    ]


def test_dockerfile_passes_hadolint() -> None:
    linted = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert linted.stdout == ""


def test_dockerfile_runs_authgraph_serve_from_the_wheel_as_a_user_with_a_healthcheck() -> None:
    bases = instructions("FROM")
    assert bases
    assert all(b.split()[0].startswith("python:") and "-slim" in b for b in bases)
    assert any("pip wheel" in run for run in instructions("RUN"))
    assert any("pip install" in run and ".whl" in run for run in instructions("RUN"))
    (user,) = instructions("USER")
    assert user.split(":")[0] not in ("0", "root")
    assert json.loads(instructions("ENTRYPOINT")[0]) == ["authgraph"]
    command = json.loads(instructions("CMD")[0])
    assert command[0] == "serve"
    port = command[command.index("--port") + 1]
    assert instructions("EXPOSE") == [port]
    (healthcheck,) = instructions("HEALTHCHECK")
    assert f"http://127.0.0.1:{port}/healthz" in healthcheck


def test_compose_proxy_renders_the_tested_nginx_file_from_its_environment() -> None:
    proxy = compose()["services"]["proxy"]
    mounts = [v.split(":") for v in proxy["volumes"]]
    sources = {Path(ROOT / m[0]).resolve(): m[1] for m in mounts}
    # The nginx image renders /etc/nginx/templates/*.template with envsubst.
    assert sources[NGINX_SITE.resolve()] == "/etc/nginx/templates/authgraph.conf.template"
    assert set(proxy["environment"]) == placeholders(NGINX_SITE.read_text())


def test_compose_instances_read_the_tested_env_file_and_declared_settings_only() -> None:
    services = compose()["services"]
    instances = [s for s in services.values() if s.get("image", "").startswith("authgraph")]
    assert len(instances) >= 3  # migrate and two instances
    shipped = read_env_file(ENV_FILE)
    assert set(shipped) <= SETTINGS, set(shipped) - SETTINGS
    for service in instances:
        assert (ROOT / service["env_file"]).resolve() == ENV_FILE.resolve()
        assert set(service["environment"]) <= SETTINGS, set(service["environment"]) - SETTINGS


def test_compose_addresses_agree_with_the_image_and_the_proxy() -> None:
    services = compose()["services"]
    port = json.loads(instructions("CMD")[0])[-1]
    proxy = services["proxy"]
    upstreams = [v for k, v in proxy["environment"].items() if k.startswith("AUTHGRAPH_INSTANCE_")]
    assert len(upstreams) == 2
    for upstream in upstreams:
        name, upstream_port = upstream.split(":")
        assert upstream_port == port
        assert services[name]["command"][0] == "serve"
        assert services[name]["command"][-1] == port
        # Started once the image's HEALTHCHECK passes.
        assert proxy["depends_on"][name] == {"condition": "service_healthy"}
    # The instances believe X-Forwarded-For from the proxy's fixed address, and from no one else.
    proxy_address = proxy["networks"]["backend"]["ipv4_address"]
    for name in ("authgraph-1", "authgraph-2", "migrate"):
        assert services[name]["environment"]["TRUSTED_PROXIES"] == proxy_address


def test_systemd_unit_serves_on_loopback_behind_the_env_files_trusted_proxy() -> None:
    unit = SYSTEMD_UNIT.read_text()
    assert f"EnvironmentFile=/etc/authgraph/{ENV_FILE.name}\n" in unit
    command = unit_exec_start(SYSTEMD_UNIT, "8001")
    assert command[1:2] == ["serve"]
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "8001"
    # nginx on the same machine reaches the instance from loopback.
    assert read_env_file(ENV_FILE)["TRUSTED_PROXIES"] == "127.0.0.1"
    assert shlex.join(command).startswith("/opt/authgraph/bin/authgraph serve")


def test_wheel_of_the_files_the_dockerfile_copies_migrates_and_serves(tmp_path: Path) -> None:
    # The build stage's COPY lines, into a context of their own, built as its RUN builds them.
    context = tmp_path / "src"
    context.mkdir()
    copied = [c.split() for c in instructions("COPY") if not c.startswith("--from")]
    for *sources, _destination in copied:
        for source in sources:
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, context / source)
            else:
                shutil.copy(ROOT / source, context / source)
    wheels = tmp_path / "wheels"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    built = subprocess.run(
        [*pip_wheel, "--wheel-dir", str(wheels), str(context)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("authgraph-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    # The unpacked wheel comes first on the path: nothing is imported from the repository.
    env = {
        **authgraph_env(DATABASE_URL=f"sqlite:///{tmp_path / 'wheel.db'}"),
        "PYTHONPATH": str(site),
    }
    cli = [sys.executable, "-P", "-m", "graph.cli"]
    run = tmp_path / "run"
    run.mkdir()
    where = subprocess.run(
        [sys.executable, "-P", "-c", "import auth, db, graph, mail; print(graph.__file__)"],
        env=env,
        cwd=run,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.stdout.strip() == str(site / "graph" / "__init__.py"), where.stderr
    migrated = subprocess.run(
        [*cli, "migrate"], env=env, cwd=run, capture_output=True, text=True, timeout=60
    )
    assert migrated.returncode == 0, migrated.stderr
    port = free_port()
    command = [*cli, "serve", "--host", "127.0.0.1", "--port", str(port)]
    with serve_command(command, env, run, port) as served:
        page = httpx.get(f"{served.base}/graphql", headers={"Accept": "text/html"}, timeout=10)
        assert page.status_code == 200
        asset = httpx.get(f"{served.base}/static/graphiql/graphiql.min.js", timeout=10)
        assert asset.status_code == 200
        # A signup renders the verification mail from the package's templates.
        with httpx.Client(base_url=served.base, timeout=30) as client:
            assert signup(client)["user"]["email"]
