"""责任网络图 (responsibility chart): the tree street → community → sector → cell → people drawn
as SVG or PNG with matplotlib, Chinese text in Noto Sans CJK (Debian ``fonts-noto-cjk``).

Pure: takes the tree as plain data (nested dicts with ``level_label``, ``name``, ``code``,
``people``, ``duties``, ``children``) and returns image bytes. No database, no HTTP.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

#: Font families tried in order for Chinese text.
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Noto Serif CJK SC",
    "WenQuanYi Zen Hei",
    "Source Han Sans SC",
)

_COLUMN_WIDTH = 2.5  # inches per tree level
_LINE = 0.2  # inches per text line
_PAD = 0.12
_MAX_PIXELS = 30_000  # tallest PNG side
_FILL = {
    "street": "#c6dbef",
    "community": "#d9f0d3",
    "sector": "#fdd0a2",
    "branch": "#fde0ef",
    "cell": "#f0f0f0",
}


class FontNotFound(RuntimeError):
    """No font with Chinese glyphs is installed."""


@lru_cache
def cjk_font() -> tuple[str, Path]:
    """(family name, file) of an installed CJK font; raises FontNotFound with the fix."""
    from matplotlib import font_manager

    by_name = {f.name: Path(f.fname) for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in by_name:
            return family, by_name[family]
    for path in font_manager.findSystemFonts():
        if "NotoSansCJK" in Path(path).name or "NotoSansSC" in Path(path).name:
            font_manager.fontManager.addfont(path)
            return font_manager.FontProperties(fname=path).get_name(), Path(path)
    raise FontNotFound(
        "no CJK font found for Chinese text; install Debian's fonts-noto-cjk "
        "(apt-get install fonts-noto-cjk)"
    )


@dataclass
class _Box:
    node: dict[str, Any]
    depth: int
    lines: list[str]
    y: float = 0.0
    children: list[_Box] = field(default_factory=list)


def _lines(node: dict[str, Any], max_people: int) -> list[str]:
    second = f"[{node.get('level_label', '')}]"
    if node.get("code") and node.get("level") != "street":
        second += f" {node['code']}"
    lines = [f"{node.get('name') or ''}", second]
    people = node.get("people") or []
    for p in people[:max_people]:
        extra = f"({p['employment']})" if p.get("employment") else ""
        lines.append(f"{p.get('role_label', p.get('role', ''))}{extra}: {p['name']}")
    if len(people) > max_people:
        lines.append(f"… 另有 {len(people) - max_people} 人")
    if node.get("building_captains"):
        lines.append(f"楼栋长 ×{node['building_captains']}")
    return lines


def _build(node: dict[str, Any], depth: int, max_people: int) -> _Box:
    box = _Box(node, depth, _lines(node, max_people))
    box.children = [_build(c, depth + 1, max_people) for c in node.get("children") or []]
    return box


def _height(box: _Box) -> float:
    return len(box.lines) * _LINE + 2 * _PAD


def _layout(box: _Box, top: float) -> float:
    """Place boxes top-down; leaves stack, parents centre on their children. Returns the
    bottom of the subtree."""
    own = _height(box) + 0.15
    if not box.children:
        box.y = top - own / 2
        return top - own
    bottom = top
    for child in box.children:
        bottom = _layout(child, bottom)
    first, last = box.children[0].y, box.children[-1].y
    box.y = (first + last) / 2
    if top - box.y < own / 2:  # a tall parent over few children: push the subtree down
        shift = own / 2 - (top - box.y)
        _shift(box, -shift)
        bottom -= shift
    return min(bottom, box.y - own / 2)


def _shift(box: _Box, dy: float) -> None:
    box.y += dy
    for child in box.children:
        _shift(child, dy)


def _walk(box: _Box) -> list[_Box]:
    out = [box]
    for child in box.children:
        out.extend(_walk(child))
    return out


def _duty_notes(boxes: list[_Box]) -> list[str]:
    seen: dict[str, str] = {}
    for b in boxes:
        label, duties = b.node.get("level_label"), b.node.get("duties")
        if label and duties and label not in seen:
            seen[label] = duties
    return [f"{label}：{text}" for label, text in seen.items()]


def responsibility_chart(
    tree: dict[str, Any],
    *,
    fmt: Literal["svg", "png", "pdf"] = "png",
    title: str | None = None,
    dpi: int = 120,
    max_people: int = 6,
) -> bytes:
    """Draw the tree; returns SVG (text kept as text, so names are searchable), PNG or PDF bytes."""
    if fmt not in ("svg", "png", "pdf"):
        raise ValueError(f"fmt must be 'svg', 'png' or 'pdf', not {fmt!r}")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    family, _ = cjk_font()
    root = _build(tree, 0, max_people)
    boxes = _walk(root)
    depth = max(b.depth for b in boxes) + 1
    title = title or f"{tree.get('name', '')}责任网络图" + (
        f"（{tree['as_of']}）" if tree.get("as_of") else ""
    )
    notes = _duty_notes(boxes)
    header, footer = 0.6, 0.3 + _LINE * 1.3 * len(notes)
    bottom = _layout(root, 0.0)
    body = -bottom
    width = depth * _COLUMN_WIDTH + 0.4
    height = header + body + footer
    # Very tall charts (hundreds of cells) keep their layout at a lower resolution.
    dpi = max(30, min(dpi, int(_MAX_PIXELS / height)))
    rc = {
        "font.family": [family, "DejaVu Sans"],
        "svg.fonttype": "none",
        "font.size": 8,
        # Names are data: "$…$" in one is text, never mathtext.
        "text.parse_math": False,
    }
    with matplotlib.rc_context(rc):  # type: ignore[arg-type]  # (stubs want literal keys)
        fig = plt.figure(figsize=(width, height), dpi=dpi)
        try:
            ax = fig.add_axes((0, 0, 1, 1))
            ax.set_xlim(0, width)
            ax.set_ylim(-(body + footer), header)
            ax.axis("off")
            ax.text(width / 2, header / 2, title, ha="center", va="center", fontsize=14)
            box_w = _COLUMN_WIDTH - 0.35
            for b in boxes:
                x = 0.2 + b.depth * _COLUMN_WIDTH
                h = _height(b)
                ax.add_patch(
                    FancyBboxPatch(
                        (x, b.y - h / 2),
                        box_w,
                        h,
                        boxstyle="round,pad=0.02,rounding_size=0.06",
                        facecolor=_FILL.get(str(b.node.get("level")), "#ffffff"),
                        edgecolor="#555555",
                        linewidth=0.6,
                    )
                )
                top = b.y + h / 2 - _PAD - _LINE / 2
                for i, line in enumerate(b.lines):
                    ax.text(
                        x + 0.08,
                        top - i * _LINE,
                        line,
                        va="center",
                        ha="left",
                        fontsize=9 if i == 0 else 7.5,
                        fontweight="bold" if i == 0 else "normal",
                        clip_on=True,
                    )
                for child in b.children:
                    cx = 0.2 + child.depth * _COLUMN_WIDTH
                    mid = x + box_w + (cx - x - box_w) / 2
                    ax.plot(
                        [x + box_w, mid, mid, cx],
                        [b.y, b.y, child.y, child.y],
                        color="#777777",
                        linewidth=0.6,
                    )
            for i, note in enumerate(notes):
                ax.text(
                    0.2, -body - 0.25 - i * _LINE * 1.3, note, va="center", ha="left", fontsize=8
                )
            out = io.BytesIO()
            fig.savefig(out, format=fmt, dpi=dpi)
        finally:
            plt.close(fig)
    return out.getvalue()
