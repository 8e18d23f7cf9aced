"""Offline browser assets: Leaflet and its plugins, pinned, fetched once, served or inlined.

Every asset is declared once in :data:`ASSETS` (npm package, exact version, the registry's
``integrity`` hash and the files we use). ``python -m maps.assets fetch`` downloads each tarball
from the npm registry (``https://registry.npmjs.org``, or ``GRIDSVC_NPM_REGISTRY``), checks its
sha512 integrity, and extracts only the declared files into the asset folder
(``GRIDSVC_ASSET_DIR``, default ``<repo>/var/assets``) as ``<package>@<version>/<file>``.
Run again, it re-checks what is there and skips it.

folium and its plugins name CDN URLs; :data:`CDN_MAP` maps each of them to one of our files (or
to nothing, for folium defaults our maps do not use: jQuery, Bootstrap, awesome-markers, Font
Awesome). :func:`localize_html` rewrites a rendered page either to ``<prefix><package>@<version>/
<file>`` URLs served by gridsvc ("server" mode) or embeds every script, stylesheet and image
("inline" mode: one file that opens with no server and no internet). :func:`external_assets`
lists any asset a page would still fetch from the internet.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import logging
import mimetypes
import os
import re
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "ASSETS",
    "CDN_MAP",
    "DEFAULT_PREFIX",
    "DEFAULT_REGISTRY",
    "Asset",
    "AssetError",
    "FetchResult",
    "asset_dir",
    "asset_path",
    "asset_url",
    "external_assets",
    "fetch",
    "localize_html",
    "missing_assets",
    "script_tags",
]

logger = logging.getLogger(__name__)

DEFAULT_REGISTRY = "https://registry.npmjs.org"
DEFAULT_PREFIX = "/static/vendor/"
_MANIFEST = ".gridsvc-manifest.json"
Mode = Literal["server", "inline"]


class AssetError(RuntimeError):
    """An asset is missing, fails its integrity check, or a page needs an unknown external one."""


@dataclass(frozen=True)
class Asset:
    """One npm package, pinned by version and the registry's sha512 integrity, and the files we use."""

    package: str
    version: str
    integrity: str
    files: tuple[str, ...]
    license: str

    @property
    def folder(self) -> str:
        """Folder (and URL path) of the package below the asset root: ``<package>@<version>``."""
        return f"{self.package}@{self.version}"

    def tarball_url(self, registry: str = DEFAULT_REGISTRY) -> str:
        """The tarball's URL on an npm registry (scoped names keep their scope in the path)."""
        base = self.package.rsplit("/", 1)[-1]
        return f"{registry.rstrip('/')}/{self.package}/-/{base}-{self.version}.tgz"


#: Every browser asset gridsvc uses, declared once.
ASSETS: dict[str, Asset] = {
    "leaflet": Asset(
        "leaflet",
        "1.9.4",
        "sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA==",
        (
            "dist/leaflet.js",
            "dist/leaflet.css",
            "dist/images/layers.png",
            "dist/images/layers-2x.png",
            "dist/images/marker-icon.png",
            "dist/images/marker-icon-2x.png",
            "dist/images/marker-shadow.png",
            "LICENSE",
        ),
        "BSD-2-Clause",
    ),
    "markercluster": Asset(
        "leaflet.markercluster",
        "1.5.3",
        "sha512-vPTw/Bndq7eQHjLBVlWpnGeLa3t+3zGiuM7fJwCkiMFq+nmRuG3RI3f7f4N4TDX7T4NpbAXpR2+NTRSEGfCSeA==",
        (
            "dist/leaflet.markercluster.js",
            "dist/MarkerCluster.css",
            "dist/MarkerCluster.Default.css",
            "MIT-LICENCE.txt",
        ),
        "MIT",
    ),
    "heat": Asset(
        "leaflet.heat",
        "0.2.0",
        "sha512-Cd5PbAA/rX3X3XKxfDoUGi9qp78FyhWYurFg3nsfhntcM/MCNK08pRkf4iEenO1KNqwVPKCmkyktjW3UD+h9bQ==",
        ("dist/leaflet-heat.js", "LICENSE"),
        "BSD-2-Clause",
    ),
    "fullscreen": Asset(
        "leaflet.fullscreen",
        "3.0.2",
        "sha512-m27waFVmwdrLGXjZw2L8b7w/W28EY+u7IGzK2x8K99XaPuzKbjI+/H1j0OMawLcRPZyDRh+39XpyLsvDwHUEoA==",
        ("Control.FullScreen.js", "Control.FullScreen.css", "icon-fullscreen.svg", "LICENSE"),
        "MIT",
    ),
    "locatecontrol": Asset(
        "leaflet.locatecontrol",
        "0.90.1",
        "sha512-i8HsspXuYsjOTyDKQKyAgXKxIRjYeW/9FynXgYiVnVKH5mWojlJ1bF/S1S9Z++Qkl5cEKtba+kQdRLBP+HhPnQ==",
        ("dist/L.Control.Locate.min.js", "dist/L.Control.Locate.min.css", "LICENSE.md"),
        "MIT",
    ),
    "geoman": Asset(
        "@geoman-io/leaflet-geoman-free",
        "2.20.2",
        "sha512-KQpSe0VKyuVCudq/08rMjJW1vvIwFldTwBny2wZ7ABcyyUAP7/eoFo967hCu9yRqAAHb4QOxC6gY5dGqttY68g==",
        ("dist/leaflet-geoman.min.js", "dist/leaflet-geoman.css", "LICENSE"),
        "MIT",
    ),
    # Draws vector tiles (MVT) in Leaflet: a street's buildings come from /api/v1/tiles.
    # The bundle includes its protobuf decoders; the licence (Beerware) is in the README.
    "vectorgrid": Asset(
        "leaflet.vectorgrid",
        "1.3.0",
        "sha512-kWmj1pKM+MVdo/7Mg5zsB3YrGZvo/uIuiANV9MvWUFOG+Y2xAJzrteDhoIcCgTjHSSRJ36xdeGdIQVhuWjnCZw==",
        ("dist/Leaflet.VectorGrid.bundled.min.js", "README.md"),
        "Beerware",
    ),
}

# folium 0.20 and the plugins we use name these URLs. None: not needed by our maps, dropped.
_FOLIUM_CDN = "https://cdn.jsdelivr.net/gh/python-visualization/folium"
#: CDN URL (as folium writes it) → (asset key, file), or None for a default we leave out.
CDN_MAP: dict[str, tuple[str, str] | None] = {
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js": ("leaflet", "dist/leaflet.js"),
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css": ("leaflet", "dist/leaflet.css"),
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/leaflet.markercluster.js": (
        "markercluster",
        "dist/leaflet.markercluster.js",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.css": (
        "markercluster",
        "dist/MarkerCluster.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.Default.css": (
        "markercluster",
        "dist/MarkerCluster.Default.css",
    ),
    f"{_FOLIUM_CDN}@main/folium/templates/leaflet_heat.min.js": ("heat", "dist/leaflet-heat.js"),
    "https://cdn.jsdelivr.net/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.min.js": (
        "fullscreen",
        "Control.FullScreen.js",
    ),
    "https://cdn.jsdelivr.net/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.css": (
        "fullscreen",
        "Control.FullScreen.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet-locatecontrol/0.66.2/L.Control.Locate.min.js": (
        "locatecontrol",
        "dist/L.Control.Locate.min.js",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet-locatecontrol/0.66.2/L.Control.Locate.min.css": (
        "locatecontrol",
        "dist/L.Control.Locate.min.css",
    ),
    "https://unpkg.com/@geoman-io/leaflet-geoman-free@latest/dist/leaflet-geoman.js": (
        "geoman",
        "dist/leaflet-geoman.min.js",
    ),
    "https://unpkg.com/@geoman-io/leaflet-geoman-free@latest/dist/leaflet-geoman.css": (
        "geoman",
        "dist/leaflet-geoman.css",
    ),
    # maps.layers.VectorTiles names the package's unpkg URL; it is served from our copy.
    "https://unpkg.com/leaflet.vectorgrid@1.3.0/dist/Leaflet.VectorGrid.bundled.min.js": (
        "vectorgrid",
        "dist/Leaflet.VectorGrid.bundled.min.js",
    ),
    # folium's defaults for Icon markers and Bootstrap popups; our maps use neither.
    "https://code.jquery.com/jquery-3.7.1.min.js": None,
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js": None,
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.js": None,
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/css/bootstrap.min.css": None,
    "https://netdna.bootstrapcdn.com/bootstrap/3.0.0/css/bootstrap-glyphicons.css": None,
    "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@6.2.0/css/all.min.css": None,
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.css": None,
    f"{_FOLIUM_CDN}/folium/templates/leaflet.awesome.rotate.min.css": None,
}


# ---------------------------------------------------------------------------- locations ----


def asset_dir() -> Path:
    """The asset folder: ``GRIDSVC_ASSET_DIR`` or ``<repo>/var/assets``."""
    env = os.environ.get("GRIDSVC_ASSET_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "var" / "assets"


def _asset(key: str) -> Asset:
    try:
        return ASSETS[key]
    except KeyError:
        raise AssetError(f"unknown asset {key!r}; known: {', '.join(ASSETS)}") from None


def asset_path(key: str, file: str, root: Path | None = None) -> Path:
    """Where a declared file of an asset lives on disk."""
    asset = _asset(key)
    if file not in asset.files:
        raise AssetError(f"{file!r} is not a declared file of {asset.folder}")
    return (root or asset_dir()) / asset.folder / file


def asset_url(key: str, file: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The URL of a declared file below ``prefix`` (where gridsvc mounts the asset folder)."""
    asset = _asset(key)
    if file not in asset.files:
        raise AssetError(f"{file!r} is not a declared file of {asset.folder}")
    return f"{prefix.rstrip('/')}/{asset.folder}/{file}"


def script_tags(keys: Sequence[str], prefix: str = DEFAULT_PREFIX) -> str:
    """``<link>`` and ``<script>`` tags for whole assets (CSS first), for hand-written pages."""
    css: list[str] = []
    js: list[str] = []
    for key in keys:
        for file in _asset(key).files:
            if file.endswith(".css"):
                css.append(f'<link rel="stylesheet" href="{asset_url(key, file, prefix)}"/>')
            elif file.endswith(".js"):
                js.append(f'<script src="{asset_url(key, file, prefix)}"></script>')
    return "\n".join(css + js)


# ------------------------------------------------------------------------------- fetch -----


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch` did with one asset: ``fetched`` or ``present`` (verified, skipped)."""

    key: str
    folder: Path
    status: Literal["fetched", "present"]


def _sri_digest(integrity: str) -> tuple[str, bytes]:
    algo, _, b64 = integrity.partition("-")
    if algo not in ("sha512", "sha384", "sha256") or not b64:
        raise AssetError(f"unsupported integrity string {integrity!r}")
    return algo, base64.b64decode(b64)


def _verify_tarball(asset: Asset, data: bytes) -> None:
    algo, want = _sri_digest(asset.integrity)
    got = hashlib.new(algo, data).digest()
    if got != want:
        raise AssetError(
            f"{asset.folder}: integrity mismatch (expected {asset.integrity}, "
            f"got {algo}-{base64.b64encode(got).decode()}); refusing to install it"
        )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _present(asset: Asset, folder: Path) -> bool:
    """The asset was extracted from a verified tarball and no file changed since."""
    manifest = folder / _MANIFEST
    try:
        recorded = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False
    if recorded.get("integrity") != asset.integrity:
        return False
    files = recorded.get("files", {})
    for file in asset.files:
        path = folder / file
        if file not in files or not path.is_file() or _sha256(path) != files[file]:
            return False
    return True


def _download(url: str, timeout: float) -> bytes:
    if not url.startswith(("https://", "http://", "file://")):
        raise AssetError(f"refusing to download from {url!r}")
    request = urllib.request.Request(url, headers={"User-Agent": "gridsvc-assets"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read()
            return body
    except OSError as exc:
        raise AssetError(f"cannot download {url}: {exc}") from exc


def _extract(asset: Asset, data: bytes, folder: Path) -> None:
    wanted = {f"package/{file}": file for file in asset.files}
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            if member.name in wanted and member.isfile():
                handle = tar.extractfile(member)
                if handle is not None:
                    found[wanted[member.name]] = handle.read()
    missing = sorted(set(asset.files) - set(found))
    if missing:
        raise AssetError(f"{asset.folder}: tarball lacks {', '.join(missing)}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Write into a temporary sibling, then swap it in: a failed run never leaves half a package.
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    for file, content in found.items():
        target = tmp / file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    manifest = {
        "package": asset.package,
        "version": asset.version,
        "integrity": asset.integrity,
        "files": {file: hashlib.sha256(content).hexdigest() for file, content in found.items()},
    }
    (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)


def fetch(
    dest: Path | str | None = None,
    *,
    registry: str | None = None,
    keys: Iterable[str] | None = None,
    force: bool = False,
    timeout: float = 60.0,
) -> list[FetchResult]:
    """Download, verify and extract the declared assets (skipping those present and intact)."""
    root = Path(dest) if dest is not None else asset_dir()
    registry = registry or os.environ.get("GRIDSVC_NPM_REGISTRY") or DEFAULT_REGISTRY
    results: list[FetchResult] = []
    for key in keys or ASSETS:
        asset = _asset(key)
        folder = root / asset.folder
        if not force and _present(asset, folder):
            results.append(FetchResult(key, folder, "present"))
            continue
        url = asset.tarball_url(registry)
        logger.info("fetching %s", url)
        data = _download(url, timeout)
        _verify_tarball(asset, data)
        _extract(asset, data, folder)
        results.append(FetchResult(key, folder, "fetched"))
    return results


def missing_assets(root: Path | None = None) -> list[str]:
    """Keys of declared assets that are absent or changed in the asset folder."""
    root = root or asset_dir()
    return [key for key, asset in ASSETS.items() if not _present(asset, root / asset.folder)]


# ------------------------------------------------------------------------- page rewriting --

_SCRIPT_SRC = re.compile(r'<script src="([^"]+)"></script>')
_LINK_CSS = re.compile(r'<link rel="stylesheet" href="([^"]+)"\s*/?>')
_CSS_URL = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)""", re.S)
_EXTERNAL = ("http://", "https://", "//")


def _lookup(url: str) -> tuple[str, str] | None:
    if url in CDN_MAP:
        return CDN_MAP[url]
    raise AssetError(
        f"page needs {url}, which has no offline copy: add it to maps.assets.ASSETS and CDN_MAP "
        "(or do not use the folium feature that loads it)"
    )


def _read(key: str, file: str, root: Path) -> bytes:
    path = asset_path(key, file, root)
    if not path.is_file():
        raise AssetError(
            f"{path} is missing: run `python -m maps.assets fetch` (scripts/dev setup)"
        )
    return path.read_bytes()


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".svg":
        mime = "image/svg+xml"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _inline_css(css: str, base: Path, root: Path) -> str:
    """Replace relative ``url(...)`` references of a stylesheet by data: URIs."""

    def repl(match: re.Match[str]) -> str:
        ref = match.group(2)
        if ref.startswith(("data:", "#")) or ref.lower().startswith(_EXTERNAL):
            return match.group(0)
        target = (base / ref.split("?", 1)[0].split("#", 1)[0]).resolve()
        if not target.is_relative_to(root.resolve()) or not target.is_file():
            raise AssetError(
                f"stylesheet {base} references {ref}, which is not in the asset folder"
            )
        return f'url("{_data_uri(target)}")'

    return _CSS_URL.sub(repl, css)


def _script_block(js: str) -> str:
    # "</script" inside the code would end the element early.
    return "<script>" + re.sub(r"</(script)", r"<\\/\1", js, flags=re.I) + "</script>"


def _default_icon_script(root: Path) -> str:
    """Leaflet finds its marker icon through the stylesheet's URL; inline, give it data: URIs."""
    urls = {
        name: _data_uri(asset_path("leaflet", f"dist/images/{file}", root))
        for name, file in (
            ("iconUrl", "marker-icon.png"),
            ("iconRetinaUrl", "marker-icon-2x.png"),
            ("shadowUrl", "marker-shadow.png"),
        )
    }
    assign = "".join(
        f"L.Icon.Default.prototype.options.{k}={json.dumps(v)};" for k, v in urls.items()
    )
    return f"<script>L.Icon.Default.imagePath='';{assign}</script>"


def localize_html(
    html: str,
    mode: Mode = "server",
    *,
    prefix: str = DEFAULT_PREFIX,
    root: Path | None = None,
) -> str:
    """Point every CDN ``<script>``/``<link>`` of a page at our copies, or embed them.

    "server": URLs below ``prefix``; "inline": scripts, stylesheets and the images they use
    embedded (data: URIs), so the page opens from a file with no server and no internet.
    Raises :class:`AssetError` for an external asset without an offline copy, or when an
    embedded file is missing from the asset folder.
    """
    if mode not in ("server", "inline"):
        raise AssetError(f"mode must be 'server' or 'inline', not {mode!r}")
    root = root or asset_dir()

    def script(match: re.Match[str]) -> str:
        url = match.group(1)
        if not url.lower().startswith(_EXTERNAL):
            return match.group(0)
        target = _lookup(url)
        if target is None:
            return ""
        key, file = target
        if mode == "server":
            return f'<script src="{asset_url(key, file, prefix)}"></script>'
        block = _script_block(_read(key, file, root).decode("utf-8"))
        if key == "leaflet":
            block += _default_icon_script(root)
        return block

    def link(match: re.Match[str]) -> str:
        url = match.group(1)
        if not url.lower().startswith(_EXTERNAL):
            return match.group(0)
        target = _lookup(url)
        if target is None:
            return ""
        key, file = target
        if mode == "server":
            return f'<link rel="stylesheet" href="{asset_url(key, file, prefix)}"/>'
        path = asset_path(key, file, root)
        css = _inline_css(_read(key, file, root).decode("utf-8"), path.parent, root)
        return "<style>" + css.replace("</style", "<\\/style") + "</style>"

    html = _SCRIPT_SRC.sub(script, html)
    return _LINK_CSS.sub(link, html)


# ------------------------------------------------------------------------ offline check ----

_TAG = re.compile(r"<(script|link|img|iframe|source|embed|object|video|audio)\b([^>]*)>", re.I)
_ATTR = re.compile(r"""\b(src|href|data|poster|srcset)\s*=\s*(["'])(.*?)\2""", re.I | re.S)
_STYLE_BLOCK = re.compile(r"<style\b[^>]*>(.*?)</style>", re.I | re.S)
_STYLE_ATTR = re.compile(r"""\bstyle\s*=\s*(["'])(.*?)\1""", re.I | re.S)
_IMPORT = re.compile(r"""@import\s+(?:url\()?\s*(['"]?)([^'")\s;]+)""", re.I)


def _css_external(css: str) -> list[str]:
    found = [m.group(2) for m in _CSS_URL.finditer(css)]
    found += [m.group(2) for m in _IMPORT.finditer(css)]
    return [u for u in found if u.strip().lower().startswith(_EXTERNAL)]


def external_assets(html: str) -> list[str]:
    """Every asset (once) a page would load from the network: script/img/iframe ``src``, stylesheet
    ``href``, ``url(...)`` and ``@import`` in CSS. Links in text (``<a href>``) are not loads."""
    found: list[str] = []
    for tag in _TAG.finditer(html):
        name, attrs = tag.group(1).lower(), tag.group(2)
        if name == "link" and not re.search(
            r"""rel\s*=\s*["']?[^"'>]*(stylesheet|icon|preload|modulepreload|manifest)""",
            attrs,
            re.I,
        ):
            continue
        for attr in _ATTR.finditer(attrs):
            for value in attr.group(3).split(","):
                url = value.strip().split(" ")[0]
                if url.lower().startswith(_EXTERNAL):
                    found.append(url)
    for block in _STYLE_BLOCK.finditer(html):
        found += _css_external(block.group(1))
    for attr in _STYLE_ATTR.finditer(html):
        found += _css_external(attr.group(2))
    return list(dict.fromkeys(found))


# ------------------------------------------------------------------------------- CLI -------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m maps.assets fetch|check|list``."""
    parser = argparse.ArgumentParser(
        prog="python -m maps.assets", description="Offline Leaflet assets for gridsvc maps."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fetch_p = sub.add_parser("fetch", help="download, verify and extract the pinned npm packages")
    fetch_p.add_argument(
        "--dest", type=Path, default=None, help="asset folder (default: var/assets)"
    )
    fetch_p.add_argument(
        "--registry", default=None, help=f"npm registry (default {DEFAULT_REGISTRY})"
    )
    fetch_p.add_argument("--force", action="store_true", help="fetch even when present")
    check_p = sub.add_parser("check", help="exit 1 when an asset is missing or changed")
    check_p.add_argument("--dest", type=Path, default=None)
    sub.add_parser("list", help="print the pinned packages")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "list":
        for key, asset in ASSETS.items():
            print(f"{key:14} {asset.folder:42} {asset.license:13} {asset.integrity}")
        return 0
    if args.command == "check":
        missing = missing_assets(args.dest)
        for key in missing:
            print(f"missing or changed: {ASSETS[key].folder}", file=sys.stderr)
        return 1 if missing else 0
    try:
        results = fetch(args.dest, registry=args.registry, force=args.force)
    except AssetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for r in results:
        print(f"{r.status:8} {r.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
