"""The 责任网络图 drawing: PNG decodes to the expected size and is not blank, SVG keeps the
names as text, and every Chinese glyph is found in the font (no tofu boxes)."""

from __future__ import annotations

import io
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from maps.charts import cjk_font, responsibility_chart


def _tree(cells: int = 3) -> dict:
    def person(role: str, label: str, name: str) -> dict:
        return {"role": role, "role_label": label, "name": name, "employment": None}

    return {
        "level": "street",
        "level_label": "街道",
        "code": "320102001",
        "name": "示范街道",
        "as_of": "2026-11-01",
        "people": [],
        "duties": None,
        "children": [
            {
                "level": "community",
                "level_label": "一级网格(社区)",
                "code": "320102001001",
                "name": "象山社区",
                "duties": "统筹协调辖区重大事项",
                "people": [person("community_head", "社区书记", "李书记")],
                "children": [
                    {
                        "level": "sector",
                        "level_label": "二级网格(片区)",
                        "code": "P01",
                        "name": "东片",
                        "duties": "指导片区",
                        "people": [person("sector_head", "片长", "王片长")],
                        "children": [
                            {
                                "level": "cell",
                                "level_label": "四级网格",
                                "code": f"320102001001{i:03d}",
                                "name": f"第{i}网格",
                                "duties": "倾听民意",
                                "people": [
                                    person("leader", "格长", f"格长{i}号"),
                                    person("grid_worker", "网格员", f"赵网格员{i}"),
                                ],
                                "building_captains": i,
                                "children": [],
                            }
                            for i in range(1, cells + 1)
                        ],
                    }
                ],
            }
        ],
    }


def test_png_decodes_to_the_figure_size_and_is_not_blank() -> None:
    import matplotlib.image as mpimg

    small = responsibility_chart(_tree(2), fmt="png", dpi=100)
    large = responsibility_chart(_tree(12), fmt="png", dpi=100)
    assert small.startswith(b"\x89PNG")
    pixels = mpimg.imread(io.BytesIO(small), format="png")
    height, width = pixels.shape[:2]
    # Four levels of 2.5 in columns (+0.4 in margin) at 100 dpi.
    assert width == round((4 * 2.5 + 0.4) * 100)
    assert pixels.std() > 0.05 and len(np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)) > 20
    # More cells make a taller chart of the same width.
    big = mpimg.imread(io.BytesIO(large), format="png")
    assert big.shape[1] == width and big.shape[0] > 2 * height


def test_svg_keeps_every_name_as_text() -> None:
    svg = responsibility_chart(_tree(3), fmt="svg").decode("utf-8")
    root = ET.fromstring(svg)
    texts = "".join(el.text or "" for el in root.iter() if el.tag.endswith("text"))
    for name in (
        "示范街道责任网络图",
        "象山社区",
        "李书记",
        "东片",
        "王片长",
        "格长3号",
        "赵网格员1",
    ):
        assert name in texts, name
    assert "楼栋长 ×2" in texts and "统筹协调辖区重大事项" in texts
    assert cjk_font()[0] in svg  # the font family is named for viewers


def test_chinese_glyphs_are_all_in_the_font() -> None:
    from matplotlib.ft2font import FT2Font

    _family, path = cjk_font()
    font = FT2Font(str(path))
    for char in "责任网络图格长网格员楼栋长社区书记":
        assert font.get_char_index(ord(char)) != 0, char
    # Rendering raises no "Glyph … missing from font" warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        responsibility_chart(_tree(2), fmt="png")


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="svg"):
        responsibility_chart(_tree(1), fmt="docx")  # type: ignore[arg-type]
