"""`gridsvc export` as a report writer runs it: files written, read back, clear errors."""

# ruff: noqa: F811  (the cli_db fixture is imported from test_cli)
from __future__ import annotations

import io
from pathlib import Path

import pyogrio
from PIL import Image
from typer.testing import CliRunner

from gridsvc.cli import app
from tests.gridsvc.test_cli import cli_db  # noqa: F401  (fixture)

runner = CliRunner()


def test_export_street_files(cli_db: str, tmp_path: Path) -> None:
    loaded = runner.invoke(app, ["demo", "load", "--communities", "2"])
    assert loaded.exit_code == 0, loaded.output

    gpkg = tmp_path / "street.gpkg"
    result = runner.invoke(app, ["export", "street", "320102001", "-f", "gpkg", "-o", str(gpkg)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    cells = pyogrio.read_dataframe(gpkg, layer="cells")
    households = pyogrio.read_dataframe(gpkg, layer="households")
    assert cells["community_code"].nunique() == 2
    assert len(households) == cells["households"].sum() > 0

    png = tmp_path / "community.png"
    community = sorted(cells["community_code"])[0]
    result = runner.invoke(
        app,
        ["export", "community", community, "-f", "png", "--map", "area", "-o", str(png)],
    )
    assert result.exit_code == 0, result.output
    image = Image.open(io.BytesIO(png.read_bytes()))
    assert image.size[0] > image.size[1] > 500

    # Errors are one clear line and exit code 2, and no file is written.
    missing = tmp_path / "missing.pdf"
    result = runner.invoke(app, ["export", "community", "999", "-o", str(missing)])
    assert result.exit_code == 2 and "no community with code '999'" in result.output
    assert not missing.exists()
    result = runner.invoke(app, ["export", "street", "320102001", "-f", "docx"])
    assert result.exit_code == 2 and "unknown format" in result.output
