"""Vendor the GraphiQL page's browser assets into graph/static/graphiql/.

Why this exists: Strawberry's built-in GraphiQL page loads React, GraphiQL and
friends from the unpkg CDN. We want GraphiQL to work with no network access
beyond our own server, so we serve pinned local copies instead (see
graph/graphiql.py, which rewrites the page's URLs to point at them).

What it does:
  1. Reads the installed Strawberry's static/graphiql.html and collects every
     external <script src> / <link href> together with its SRI `integrity`.
  2. Runs `npm pack NAME@VERSION` for each package in a temporary directory.
  3. Extracts the referenced files plus each package's licence, and checks
     that every asset's sha384 equals the pinned `integrity` value.
  4. Only if everything verified, rewrites graph/static/graphiql/ (assets,
     *.LICENSE files and MANIFEST.json).

Run it again after upgrading strawberry-graphql:

    python scripts/refresh_graphiql_assets.py

It is stdlib-only (it needs `npm` on PATH and registry access) and idempotent:
the same Strawberry version always produces byte-identical output.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEST_DIR = REPO_ROOT / "graph" / "static" / "graphiql"
MANIFEST_NAME = "MANIFEST.json"

# Matches https://unpkg.com/<name>@<version>/<path>, <name> possibly scoped.
CDN_URL_RE = re.compile(
    r"^https://unpkg\.com/(?P<package>(?:@[^/@]+/)?[^/@]+)@(?P<version>[^/]+)/(?P<path>.+)$"
)
MIT_TERMS = """MIT License

Copyright (c) {holder}

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""
LICENSE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "license", "license.md")


class RefreshError(Exception):
    """A problem that should stop the refresh with a readable message."""


@dataclass(frozen=True)
class Asset:
    url: str
    integrity: str
    package: str
    version: str
    path: str  # path inside the npm package

    @property
    def local_name(self) -> str:
        # Keep the file's own name when it already says which package it is
        # (react.production.min.js); otherwise prefix it (graphiql-plugin-explorer.style.css).
        base = self.path.rsplit("/", 1)[-1]
        slug = package_slug(self.package)
        return base if base.startswith(slug + ".") else f"{slug}.{base}"


def package_slug(package: str) -> str:
    """'@graphiql/plugin-explorer' -> 'graphiql-plugin-explorer'."""
    return package.lstrip("@").replace("/", "-")


def sri_sha384(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


class _ExternalRefParser(HTMLParser):
    """Collects (url, integrity) for <script src> and <link href> tags."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        url = attr.get("src") if tag == "script" else attr.get("href") if tag == "link" else None
        if url and re.match(r"^(https?:)?//", url):
            self.refs.append((url, attr.get("integrity")))


def strawberry_graphiql_html() -> tuple[Path, str]:
    # find_spec locates the package without importing it (keeps this stdlib-only).
    spec = importlib.util.find_spec("strawberry")
    if spec is None or spec.origin is None:
        raise RefreshError(
            "strawberry is not installed in this interpreter; run this script "
            "with the project's venv python (e.g. .venv/bin/python)."
        )
    html_path = Path(spec.origin).parent / "static" / "graphiql.html"
    if not html_path.is_file():
        raise RefreshError(f"Strawberry's GraphiQL page not found at {html_path}")
    return html_path, html_path.read_text(encoding="utf-8")


def parse_assets(html: str, html_path: Path) -> list[Asset]:
    parser = _ExternalRefParser()
    parser.feed(html)
    assets: list[Asset] = []
    for url, integrity in parser.refs:
        match = CDN_URL_RE.match(url)
        if match is None:
            raise RefreshError(
                f"{html_path}: external URL {url!r} is not an unpkg package URL; "
                "this script does not know how to vendor it."
            )
        if not integrity or not integrity.startswith("sha384-") or " " in integrity:
            raise RefreshError(
                f"{html_path}: {url} needs exactly one sha384 integrity, got {integrity!r}"
            )
        assets.append(Asset(url=url, integrity=integrity, **match.groupdict()))
    if not assets:
        raise RefreshError(f"{html_path}: no external assets found; nothing to vendor.")
    names = [a.local_name for a in assets]
    if len(set(names)) != len(names):
        raise RefreshError(f"local file names collide: {sorted(names)}")
    return assets


def npm_pack(package: str, version: str, workdir: Path) -> Path:
    spec = f"{package}@{version}"
    npm = shutil.which("npm")
    if npm is None:
        raise RefreshError(
            "`npm` was not found on PATH; install Node.js/npm to refresh the assets."
        )
    result = subprocess.run(
        [npm, "pack", spec, "--json", "--ignore-scripts", "--pack-destination", str(workdir)],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RefreshError(
            f"`npm pack {spec}` failed (exit {result.returncode}):\n{result.stderr.strip()}"
        )
    try:
        filename = str(json.loads(result.stdout)[0]["filename"])
    except (ValueError, LookupError, TypeError) as exc:
        raise RefreshError(
            f"could not read `npm pack {spec} --json` output: {result.stdout!r}"
        ) from exc
    return workdir / filename


def read_tarball(tarball: Path) -> dict[str, bytes]:
    """Regular files of an npm tarball, keyed by path with the top dir ('package/') stripped."""
    files: dict[str, bytes] = {}
    # Members are read into memory, never extracted, so odd paths cannot escape the temp dir.
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar.getmembers():
            fileobj = tar.extractfile(member) if member.isfile() else None
            if fileobj is not None and "/" in member.name:
                files[member.name.split("/", 1)[1]] = fileobj.read()
    return files


def license_text(package: str, version: str, files: dict[str, bytes]) -> tuple[str | None, bytes]:
    """Return (path in package or None, licence bytes)."""
    for name in LICENSE_NAMES:
        if name in files:
            return name, files[name]
    # Some packages (e.g. @graphiql/plugin-explorer 1.0.2) ship no licence file;
    # record what package.json declares instead of silently skipping it.
    meta = json.loads(files.get("package.json", b"{}"))
    declared = meta.get("license")
    if not declared:
        raise RefreshError(
            f"{package}@{version} has neither a licence file nor a package.json `license`."
        )
    repo = meta.get("repository")
    repo_url = repo.get("url") if isinstance(repo, dict) else repo
    note = (
        f"{package}@{version} ships no licence file in its npm tarball.\n"
        f"Its package.json declares: license = {declared}\n"
        f"Repository: {repo_url or 'unknown'}\n"
        "(Generated by scripts/refresh_graphiql_assets.py.)\n"
    )
    if declared == "MIT":
        # The licence obliges us to ship its text with the copy; the MIT terms are fixed.
        note += "\n" + MIT_TERMS.format(holder=f"the {package} contributors")
    return None, note.encode("utf-8")


def build(assets: list[Asset], workdir: Path) -> tuple[dict[str, bytes], dict[str, object]]:
    """Fetch and verify everything; return {local_name: bytes} and the manifest."""
    out: dict[str, bytes] = {}
    asset_entries: list[dict[str, str]] = []
    license_entries: list[dict[str, str | None]] = []
    packages = sorted({(a.package, a.version) for a in assets})
    for package, version in packages:
        print(f"npm pack {package}@{version}", file=sys.stderr)
        files = read_tarball(npm_pack(package, version, workdir))
        for asset in (a for a in assets if (a.package, a.version) == (package, version)):
            if asset.path not in files:
                raise RefreshError(
                    f"{package}@{version} has no file {asset.path!r} (needed by {asset.url})"
                )
            data = files[asset.path]
            actual = sri_sha384(data)
            if actual != asset.integrity:
                raise RefreshError(
                    f"SRI mismatch for {asset.url}:\n"
                    f"  pinned in graphiql.html: {asset.integrity}\n"
                    f"  npm package file:        {actual}"
                )
            out[asset.local_name] = data
            asset_entries.append(
                {
                    "package": package,
                    "version": version,
                    "path": asset.path,
                    "local_name": asset.local_name,
                    "url": asset.url,
                    "integrity": actual,
                }
            )
        lic_path, lic_data = license_text(package, version, files)
        lic_name = f"{package_slug(package)}.LICENSE"
        out[lic_name] = lic_data
        license_entries.append(
            {
                "package": package,
                "version": version,
                "path": lic_path,
                "local_name": lic_name,
                "integrity": sri_sha384(lic_data),
            }
        )
    manifest: dict[str, object] = {
        "generated_by": "scripts/refresh_graphiql_assets.py",
        "strawberry_graphql": importlib.metadata.version("strawberry-graphql"),
        "assets": sorted(asset_entries, key=lambda e: e["local_name"]),
        "licenses": sorted(license_entries, key=lambda e: str(e["local_name"])),
    }
    return out, manifest


def write_output(files: dict[str, bytes], manifest: dict[str, object]) -> None:
    DEST_DIR.mkdir(parents=True, exist_ok=True)
    manifest_json = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    files = {**files, MANIFEST_NAME: manifest_json.encode()}
    # The directory is owned by this script: drop files a previous Strawberry version needed.
    for stale in DEST_DIR.iterdir():
        if stale.is_file() and stale.name not in files:
            stale.unlink()
            print(f"removed stale {stale.name}", file=sys.stderr)
    for name, data in sorted(files.items()):
        target = DEST_DIR / name
        if not target.is_file() or target.read_bytes() != data:
            target.write_bytes(data)
            print(f"wrote {target.relative_to(REPO_ROOT)} ({len(data)} bytes)", file=sys.stderr)


def main() -> int:
    try:
        html_path, html = strawberry_graphiql_html()
        assets = parse_assets(html, html_path)
        with tempfile.TemporaryDirectory(prefix="graphiql-assets-") as tmp:
            files, manifest = build(assets, Path(tmp))
        write_output(files, manifest)
    except RefreshError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"OK: {len(assets)} assets verified against {html_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
