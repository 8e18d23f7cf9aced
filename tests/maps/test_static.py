"""Static coverage maps and 三图: right page size, not blank, Chinese glyphs embedded, furniture."""

from __future__ import annotations

import io
import re
import subprocess
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from matplotlib import font_manager
from PIL import Image

from maps import static
from maps.reports import area_plan, building_plan
from maps.static import FontMissingError, coverage_map, page_size_inches, to_pdf, to_png
from tests.maps.fixtures import CellLayers, RealLayers

MM_PER_PT = 25.4 / 72


def _distinct_colours(png: bytes) -> int:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return len(np.unique(np.asarray(image).reshape(-1, 3), axis=0))


def _pdf_tool(tool: str, pdf: Path, *args: str) -> str:
    return subprocess.run(
        [tool, *args, str(pdf)], check=True, capture_output=True, text=True
    ).stdout


def _pdf_text(pdf: Path) -> str:
    """The PDF's text in drawing order, without whitespace (Chinese needs none)."""
    raw = subprocess.run(
        ["pdftotext", "-raw", "-enc", "UTF-8", str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return re.sub(r"\s+", "", raw)


def _pdf_page_mm(pdf: Path) -> tuple[float, float]:
    info = _pdf_tool("pdfinfo", pdf)
    w, h = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info).groups())
    return w * MM_PER_PT, h * MM_PER_PT


def _rendered(pdf: Path, tmp_path: Path) -> Image.Image:
    out = tmp_path / "page"
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-singlefile", str(pdf), str(out)], check=True)
    return Image.open(out.with_suffix(".png")).convert("RGB")


@pytest.mark.parametrize("paper", ["A4", "A3"])
@pytest.mark.parametrize("orientation", ["portrait", "landscape"])
def test_coverage_map_png_and_pdf_pages(
    street: CellLayers, tmp_path: Path, paper: str, orientation: str
) -> None:
    fig = coverage_map(
        street.cells,
        title="示范街道网格覆盖图",
        metric="households",
        metric_label="户数",
        area=street.communities,
        buildings=street.all_buildings,
        paper=paper,
        orientation=orientation,
        footer="内部使用",
        on=date(2026, 11, 23),
    )
    dpi = 60
    png = to_png(fig, dpi=dpi)
    image = Image.open(io.BytesIO(png))
    w_mm, h_mm = static.PAPER_MM[paper]
    if orientation == "landscape":
        w_mm, h_mm = h_mm, w_mm
    assert abs(image.width - w_mm / 25.4 * dpi) <= 1 and abs(image.height - h_mm / 25.4 * dpi) <= 1
    assert _distinct_colours(png) > 50

    pdf = tmp_path / "map.pdf"
    pdf.write_bytes(to_pdf(fig, title="覆盖图"))
    pw, ph = _pdf_page_mm(pdf)
    assert abs(pw - w_mm) < 0.5 and abs(ph - h_mm) < 0.5
    pixels = np.asarray(_rendered(pdf, tmp_path))
    assert (pixels.reshape(-1, 3) != 255).any(
        axis=1
    ).mean() > 0.05  # ink on at least 5 % of the page
    assert "NotoSansCJK" in _pdf_tool("pdffonts", pdf)


def test_pdf_text_has_the_chinese_furniture(street: CellLayers, tmp_path: Path) -> None:
    fig = coverage_map(
        street.cells,
        title="示范街道网格覆盖图",
        subtitle="示范街道",
        metric="households",
        metric_label="户数",
        footer="审图号：宁S(2026)001号",
        on=date(2026, 11, 23),
    )
    pdf = tmp_path / "map.pdf"
    pdf.write_bytes(to_pdf(fig))
    text = _pdf_text(pdf)
    for needed in (
        "示范街道网格覆盖图",
        "2026年11月23日",
        "审图号：宁S(2026)001号",
        "图例",
        "北",
        "比例尺1:",
        "©OpenStreetMapcontributors",
    ):
        assert needed in text, needed
    leaders = street.cells["leader"].dropna()
    assert sum(name in text for name in leaders) >= len(leaders) * 0.9


def test_scale_bar_states_the_true_scale(street: CellLayers) -> None:
    fig = coverage_map(
        street.cells, title="比例尺", metric=None, paper="A4", orientation="landscape"
    )
    ax = fig.axes[0]
    x0, x1 = ax.get_xlim()
    width_m_on_paper = ax.get_position().width * fig.get_figwidth() * 0.0254
    expected = (x1 - x0) / width_m_on_paper  # map metres per paper metre, from the UTM axes
    printed = next(t.get_text() for t in ax.texts if t.get_text().startswith("比例尺"))
    scale = int(printed.split(":")[1].replace(",", ""))
    assert abs(scale - expected) / expected < 0.06
    # and the bar's label is a round length in metres
    label = next(t.get_text() for t in ax.texts if t.get_text().endswith(("米", "公里")))
    assert re.fullmatch(r"(1|2|5)0* 米|(1|2|5)0* 公里|[125](\.\d)? 公里", label)


def test_missing_cjk_font_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, street: CellLayers
) -> None:
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [])
    with pytest.raises(FontMissingError, match="fonts-noto-cjk"):
        coverage_map(street.cells, title="无字体")


def test_bad_page_options_are_refused() -> None:
    with pytest.raises(ValueError):
        page_size_inches("B5", "portrait")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        page_size_inches("A4", "sideways")  # type: ignore[arg-type]


def test_real_nanjing_coverage_map(nanjing_layers: RealLayers, tmp_path: Path) -> None:
    fig = coverage_map(
        nanjing_layers.cells,
        title="新街口网格覆盖图",
        metric="buildings",
        metric_label="楼栋数",
        area=nanjing_layers.area,
        buildings=nanjing_layers.buildings,
        roads=nanjing_layers.roads,
        paper="A3",
        orientation="portrait",
    )
    png = to_png(fig, dpi=50)
    assert _distinct_colours(png) > 50
    pdf = tmp_path / "nanjing.pdf"
    pdf.write_bytes(to_pdf(fig))
    assert "NotoSansCJK" in _pdf_tool("pdffonts", pdf)
    assert "新街口网格覆盖图" in _pdf_text(pdf)


def test_area_plan_lists_each_cell_and_leader(street: CellLayers, tmp_path: Path) -> None:
    community = street.communities.iloc[[0]]
    cells = street.cells[street.cells.community_code == community.code.iloc[0]]
    fig = area_plan(
        community, cells, buildings=street.all_buildings, footer="内部使用", on=date(2026, 11, 23)
    )
    pdf = tmp_path / "area.pdf"
    pdf.write_bytes(to_pdf(fig))
    text = _pdf_text(pdf)
    assert f"{community.name.iloc[0]}区域平面图" in text
    for _, row in cells.iterrows():
        assert row["name"] in text and row["leader"] in text
    assert _distinct_colours(to_png(fig, dpi=40)) > 20


def test_building_plan_numbers_captains_and_gaps(
    nanjing_layers: RealLayers, tmp_path: Path
) -> None:
    buildings = nanjing_layers.buildings.copy()
    named = buildings["name"].notna()
    buildings["captain"] = None
    pick = buildings.index[named][:5]
    buildings.loc[pick, "captain"] = [f"楼栋长{i}" for i in range(5)]
    fig = building_plan(
        nanjing_layers.area, buildings, cells=nanjing_layers.cells, roads=nanjing_layers.roads
    )
    pdf = tmp_path / "buildings.pdf"
    pdf.write_bytes(to_pdf(fig))
    text = _pdf_text(pdf)
    assert "新街口示例社区楼房平面图" in text
    assert "已有楼栋长，5栋" in text and f"未落实楼栋长，{len(buildings) - 5}栋" in text
    for i in range(5):
        assert f"楼栋长{i}" in text
    assert _distinct_colours(to_png(fig, dpi=40)) > 20
