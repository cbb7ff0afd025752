"""The deploy/ files as the tests run them: rendered, then nginx and instances on loopback.

``deploy/nginx/authgraph.conf.template``, ``deploy/systemd/authgraph@.service`` and
``deploy/authgraph.env`` are read from the repository and turned into what an operator's
machine would run: the nginx site with its placeholders filled in, each instance started with
the unit's ``ExecStart`` line and the environment file's settings. Nothing here is a copy of
those files, so a change to them is what the end-to-end tests exercise.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shlex
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping
from configparser import ConfigParser
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NGINX_SITE = DEPLOY / "nginx" / "authgraph.conf.template"
SYSTEMD_UNIT = DEPLOY / "systemd" / "authgraph@.service"
ENV_FILE = DEPLOY / "authgraph.env"
NGINX = os.environ.get("AUTHGRAPH_TEST_NGINX", "/usr/sbin/nginx")
# ${NAME} as envsubst (and the nginx image's templates) replace it; nginx's own are $name.
_PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
_STARTUP_SECONDS = 15
# The end of a line of the site's log_format; upstream is "a, b" when nginx tried two.
_ACCESS_LINE = re.compile(
    r'" (?P<status>\d{3}) \d+ upstream=(?P<upstream>.*) upstream_status=(?P<upstream_status>.*) '
    r"request_time=\S+ request_id=(?P<request_id>\w+)$"
)


def placeholders(template: str) -> set[str]:
    """The ``${NAME}`` placeholders of a template."""
    return set(_PLACEHOLDER.findall(template))


def render(template: str, values: Mapping[str, str]) -> str:
    """``template`` with every placeholder filled in; a missing or extra value is an error."""
    names = placeholders(template)
    if names != set(values):
        raise KeyError(f"placeholders {sorted(names)} but values for {sorted(values)}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines as systemd's ``EnvironmentFile=`` reads them (no quotes used)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"{path}: not NAME=value: {line!r}"
        values[name.strip()] = value.strip()
    return values


def unit_exec_start(path: Path, instance: str) -> list[str]:
    """The unit's ``ExecStart`` command for ``instance`` (what ``%i`` expands to)."""
    unit = ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(path.read_text())
    return [arg.replace("%i", instance) for arg in shlex.split(unit["Service"]["ExecStart"])]


def make_certificate(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (and localhost): (certificate, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def main_config(prefix: Path, site: Path) -> str:
    """An nginx.conf for an unprivileged master in ``prefix``, including ``site``.

    What Debian's /etc/nginx/nginx.conf provides around a site (the http block, temporary
    paths), with every file in ``prefix`` and no ``user`` (the master is not root).
    """
    return f"""
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    default_type application/octet-stream;
    include {site};
}}
"""


@dataclass
class Nginx:
    """A running nginx (``worker_processes 1``): its prefix, and a reload with a new site
    (``nginx -s reload``: new workers with the new file; the old ones finish and leave)."""

    prefix: Path
    process: subprocess.Popen[bytes]

    def reload(self, site_text: str) -> None:
        (self.prefix / "authgraph.conf").write_text(site_text)
        log = self.prefix / "error.log"
        # Done once the old worker has exited: until then it still serves the requests of
        # connections it had, with the old file.
        before = log.read_text().count(": exiting")
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + _STARTUP_SECONDS
        while log.read_text().count(": exiting") == before:
            assert time.monotonic() < deadline, "nginx did not reload"
            time.sleep(0.05)


@contextmanager
def run_nginx(prefix: Path, site_text: str, https_port: int, ca: Path) -> Iterator[Nginx]:
    """Run nginx with ``site_text`` until the block ends; yield it once TLS answers."""
    site = prefix / "authgraph.conf"
    site.write_text(site_text)
    conf = prefix / "nginx.conf"
    conf.write_text(main_config(prefix, site))
    base = [NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    checked = subprocess.run([*base, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + _STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(prefix / 'error.log').read_text()}")
            try:
                httpx.get(
                    f"https://127.0.0.1:{https_port}/healthz",
                    verify=ssl.create_default_context(cafile=str(ca)),
                    timeout=1,
                )
                break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("nginx did not answer in time")
            time.sleep(0.1)
        yield Nginx(prefix, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def access_line(log: Path, request_id: str, timeout: float = 5.0) -> dict[str, str]:
    """The access-log line of one request (by the ``X-Request-ID`` nginx answered), as fields.

    nginx writes the line once the answer is sent, so it may lag the client by a moment.
    """
    deadline = time.monotonic() + timeout
    while True:
        for line in log.read_text().splitlines():
            found = _ACCESS_LINE.search(line)
            if found and found["request_id"] == request_id:
                return found.groupdict()
        if time.monotonic() > deadline:
            raise AssertionError(f"no access line for request {request_id} in {log}")
        time.sleep(0.05)
