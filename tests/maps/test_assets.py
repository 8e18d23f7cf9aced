"""Offline assets: pinned, integrity-checked fetch; CDN → local mapping; the external-asset check."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from maps import assets
from maps.assets import Asset, AssetError


def _tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


@pytest.fixture
def local_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Asset, bytes]:
    """A file:// npm registry holding one small package, declared as the only asset."""
    data = _tarball(
        {"dist/demo.js": b"window.demo = 1;", "dist/demo.css": b".x{}", "README.md": b"not wanted"}
    )
    registry = tmp_path / "registry"
    (registry / "demo" / "-").mkdir(parents=True)
    (registry / "demo" / "-" / "demo-1.0.0.tgz").write_bytes(data)
    asset = Asset("demo", "1.0.0", _sri(data), ("dist/demo.js", "dist/demo.css"), "MIT")
    monkeypatch.setattr(assets, "ASSETS", {"demo": asset})
    return registry.as_uri(), asset, data


def test_fetch_verifies_extracts_only_declared_files_and_is_idempotent(
    local_registry, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    registry, _, _ = local_registry
    dest = tmp_path / "assets"
    first = assets.fetch(dest, registry=registry)
    assert [r.status for r in first] == ["fetched"]
    folder = dest / "demo@1.0.0"
    assert (folder / "dist" / "demo.js").read_bytes() == b"window.demo = 1;"
    assert not (folder / "README.md").exists()
    assert [r.status for r in assets.fetch(dest, registry=registry)] == ["present"]
    # A file changed on disk is noticed and replaced by the verified original.
    (folder / "dist" / "demo.js").write_text("tampered")
    assert assets.missing_assets(dest) == ["demo"]
    assert [r.status for r in assets.fetch(dest, registry=registry)] == ["fetched"]
    assert (folder / "dist" / "demo.js").read_bytes() == b"window.demo = 1;"


def test_fetch_refuses_a_tarball_that_fails_its_integrity(
    local_registry, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    registry, asset, data = local_registry
    wrong = Asset(asset.package, asset.version, _sri(data + b"x"), asset.files, asset.license)
    monkeypatch.setattr(assets, "ASSETS", {"demo": wrong})
    with pytest.raises(AssetError, match="integrity mismatch"):
        assets.fetch(tmp_path / "assets", registry=registry)
    assert not (tmp_path / "assets" / "demo@1.0.0").exists()


def test_fetch_uses_the_registry_from_the_environment(
    local_registry, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    registry, _, _ = local_registry
    monkeypatch.setenv("GRIDSVC_NPM_REGISTRY", registry)
    assert [r.status for r in assets.fetch(tmp_path / "a")] == ["fetched"]
    monkeypatch.setenv("GRIDSVC_NPM_REGISTRY", (tmp_path / "nowhere").as_uri())
    with pytest.raises(AssetError, match="cannot download"):
        assets.fetch(tmp_path / "b")


def test_cli_fetch_and_check(local_registry, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    registry, _, _ = local_registry
    dest = tmp_path / "cli"
    assert assets.main(["check", "--dest", str(dest)]) == 1
    assert assets.main(["fetch", "--dest", str(dest), "--registry", registry]) == 0
    assert assets.main(["check", "--dest", str(dest)]) == 0
    assert "fetched" in capsys.readouterr().out
    assert assets.main(["fetch", "--dest", str(dest), "--registry", registry]) == 0
    assert "present" in capsys.readouterr().out


def test_every_pinned_asset_is_installed_with_its_manifest(asset_root: Path) -> None:
    for asset in assets.ASSETS.values():
        folder = asset_root / asset.folder
        manifest = json.loads((folder / ".gridsvc-manifest.json").read_text())
        assert manifest["integrity"] == asset.integrity
        assert manifest["version"] == asset.version
        for file in asset.files:
            assert (
                hashlib.sha256((folder / file).read_bytes()).hexdigest() == manifest["files"][file]
            )
    assert assets.ASSETS["leaflet"].version == "1.9.4"


def test_every_cdn_url_maps_to_a_file_we_have(asset_root: Path) -> None:
    for url, target in assets.CDN_MAP.items():
        assert url.startswith("https://")
        if target is not None:
            assert assets.asset_path(*target, root=asset_root).is_file(), url


def test_server_mode_points_at_the_prefix_and_inline_mode_embeds(asset_root: Path) -> None:
    page = (
        '<head><script src="https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"></script>'
        '<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css"/>'
        '<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script></head>'
    )
    server = assets.localize_html(page, "server", prefix="/vendor/", root=asset_root)
    assert '<script src="/vendor/leaflet@1.9.4/dist/leaflet.js"></script>' in server
    assert '<link rel="stylesheet" href="/vendor/leaflet@1.9.4/dist/leaflet.css"/>' in server
    assert "jquery" not in server
    inline = assets.localize_html(page, "inline", root=asset_root)
    assert "<script src=" not in inline and "<link" not in inline
    leaflet_js = (asset_root / "leaflet@1.9.4/dist/leaflet.js").read_text()
    assert leaflet_js[:200] in inline
    # The stylesheet's images (layer control icon) became data: URIs.
    assert "url(images/layers.png)" not in inline
    assert "data:image/png;base64," in inline
    assert assets.external_assets(server) == [] and assets.external_assets(inline) == []


def test_an_unknown_cdn_asset_is_refused(asset_root: Path) -> None:
    page = '<script src="https://unpkg.com/some-plugin@1/dist/x.js"></script>'
    with pytest.raises(AssetError, match="no offline copy"):
        assets.localize_html(page, "server", root=asset_root)


def test_external_assets_finds_loads_but_not_links_or_data_uris() -> None:
    page = """
    <script src="https://a.example/x.js"></script>
    <link rel="stylesheet" href="//b.example/y.css">
    <link rel="icon" href="http://c.example/favicon.ico">
    <img src="https://d.example/logo.png">
    <style>@import url("https://e.example/z.css"); .a {background: url('https://f.example/bg.png')}
      .b {background: url("data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'></svg>")}</style>
    <div style="background-image: url(https://g.example/h.png)"></div>
    <a href="https://www.openstreetmap.org/copyright">© OpenStreetMap contributors</a>
    <script>var ns = "http://www.w3.org/2000/svg";</script>
    """
    assert sorted(assets.external_assets(page)) == sorted(
        [
            "https://a.example/x.js",
            "//b.example/y.css",
            "http://c.example/favicon.ico",
            "https://d.example/logo.png",
            "https://e.example/z.css",
            "https://f.example/bg.png",
            "https://g.example/h.png",
        ]
    )


def test_script_tags_for_hand_written_pages(asset_root: Path) -> None:
    tags = assets.script_tags(["leaflet", "geoman"], prefix="/static/vendor/")
    assert (
        tags.index("leaflet.css") < tags.index("leaflet.js") < tags.index("leaflet-geoman.min.js")
    )
    assert assets.external_assets(tags) == []
    for url in [t.split('"')[-2] for t in tags.splitlines()]:
        assert (asset_root / url.removeprefix("/static/vendor/")).is_file()


def test_module_entry_point_lists_and_checks(asset_root: Path, tmp_path: Path) -> None:
    run = functools.partial(
        subprocess.run, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2]
    )
    listed = run([sys.executable, "-m", "maps.assets", "list"])
    assert listed.returncode == 0
    for asset in assets.ASSETS.values():
        assert (
            f"{asset.package}@{asset.version}" in listed.stdout and asset.integrity in listed.stdout
        )
    assert (
        run([sys.executable, "-m", "maps.assets", "check", "--dest", str(asset_root)]).returncode
        == 0
    )
    empty = run([sys.executable, "-m", "maps.assets", "check", "--dest", str(tmp_path)])
    assert empty.returncode == 1 and "leaflet@1.9.4" in empty.stderr
