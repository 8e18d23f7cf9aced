"""Vector tiles of the city: which layers exist, who sees what in them, and their ETags.

A tile is scoped and masked like the GeoJSON routes (see :mod:`gridsvc.repositories.tiles`);
its ETag names what the caller may see and what the tile is made of, so a client that already
holds the tile gets 304:

- **cells**: the revision of every community meeting the tile (a redraw bumps it) and the
  newest current boundary version in the tile — checked *before* the tile is built, so a
  revalidation costs one small index query;
- **buildings, incidents, volunteers** and the combined tile: a hash of the tile's bytes.
  These tables have no change counter (a counter every write bumps would make each incident
  intake wait for the others, or race with commits); the tile costs a few milliseconds to
  build, and the 304 still saves sending it.

An empty tile is answered **204 No Content** (with the ETag): OGC API – Tiles allows it, it
costs no bytes, and Leaflet.VectorGrid, MapLibre and QGIS draw it as an empty tile.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from gridsvc.auth.masking import sees_personal_data
from gridsvc.auth.policy import require
from gridsvc.auth.principal import Principal
from gridsvc.db.engine import read_only
from gridsvc.errors import InvalidInput, NotFound
from gridsvc.repositories import tiles as repo


@dataclass(frozen=True)
class TileLayer:
    """A layer that can be tiled: its Chinese title and the zooms it is served at."""

    title: str
    description: str
    minzoom: int
    maxzoom: int = 22


#: The tiled layers. Points and footprints start at street zoom: a z10 tile of a city's
#: buildings would be megabytes (households are never tiled: a point per dwelling).
LAYERS: dict[str, TileLayer] = {
    "cells": TileLayer("网格", "现行网格边界（编码、名称、类型、版本）", minzoom=0),
    "buildings": TileLayer("楼栋", "楼栋轮廓与户数（特殊人群户数仅限可查看个人信息的角色）", 13),
    "incidents": TileLayer("未结事件", "未结事件（类别、状态、是否超期、上报时间）", 12),
    "volunteers": TileLayer("志愿者", "志愿者居住楼栋（队伍；姓名按角色脱敏）", 13),
}
#: The name of the tile holding every layer at once.
COMBINED = "all"
MAX_ZOOM = 22
#: Bump when the tile's content or format changes, so every cached tile is refetched.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Tile:
    """A tile answer: its bytes (empty: nothing to draw), its ETag, and whether the caller's
    copy is current (then ``data`` is empty and the route answers 304)."""

    data: bytes
    etag: str
    not_modified: bool = False


def layer_names(layer: str) -> list[str]:
    """The layers a tile URL names (``all``: every layer), or NotFound."""
    if layer == COMBINED:
        return list(LAYERS)
    if layer not in LAYERS:
        raise NotFound(f"没有图层 {layer!r}；可用图层：{', '.join([*LAYERS, COMBINED])}")
    return [layer]


def check_tile(z: int, x: int, y: int) -> None:
    """Refuse a tile outside WebMercatorQuad (zoom 0…22, column and row below 2^zoom)."""
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInput(f"缩放级别 {z} 超出范围（0–{MAX_ZOOM}）")
    size = 1 << z
    if not (0 <= x < size and 0 <= y < size):
        raise NotFound(f"瓦片 {z}/{x}/{y} 不存在：第 {z} 级的行列号应在 0–{size - 1} 之间")


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag.removeprefix("W/") in tags


def _view(principal: Principal) -> repo.TileView:
    return repo.TileView(principal=principal, personal=sees_personal_data(principal))


def get_tile(
    session: Session,
    principal: Principal,
    layer: str,
    z: int,
    x: int,
    y: int,
    if_none_match: str | None = None,
) -> Tile:
    """The tile z/x/y of a layer (or of ``all``) as the caller may see it. Plain reads, each
    on its own (no transaction): the cells revision is read before the tile, so a redraw
    committed in between gives a newer tile under the older ETag, which the next
    revalidation replaces — never an older tile under a newer ETag."""
    require(principal, "area.read")
    names = layer_names(layer)
    check_tile(z, x, y)
    read_only(session)
    view = _view(principal)
    shown = [name for name in names if LAYERS[name].minzoom <= z <= LAYERS[name].maxzoom]
    scope = repo.scope_key(principal, view.personal)
    if names == ["cells"]:
        made_of = repo.cells_revision(session, z, x, y)
        digest = hashlib.sha1(f"{FORMAT_VERSION}|cells|{scope}|{made_of}".encode()).hexdigest()
        etag = f'W/"cells-{digest[:24]}"'
        if _matches(if_none_match, etag):
            return Tile(b"", etag, not_modified=True)
        return Tile(repo.tile(session, shown, view, z, x, y) if shown else b"", etag)
    data = repo.tile(session, shown, view, z, x, y) if shown else b""
    digest = hashlib.sha1(f"{FORMAT_VERSION}|".encode() + data).hexdigest()
    etag = f'"{layer}-{digest[:24]}"'
    if _matches(if_none_match, etag):
        return Tile(b"", etag, not_modified=True)
    return Tile(data, etag)


#: MVT value types of the layers' columns, for TileJSON's ``fields``.
def _field_type(python_type: type) -> str:
    if python_type is bool:
        return "Boolean"
    if python_type in (int, float):
        return "Number"
    return "String"


def layer_fields(principal: Principal, layer: str) -> dict[str, str]:
    """The properties the caller's tiles of a layer carry, with their TileJSON types
    ("Number", "String", "Boolean") — read from the layer's query, so they cannot drift."""
    stmt = repo.LAYER_QUERIES[layer](_view(principal))
    fields: dict[str, str] = {}
    for column in stmt.selected_columns:
        if column.key in ("geom", "id"):
            continue
        try:
            python_type: Any = column.type.python_type
        except NotImplementedError:
            python_type = str
        fields[column.key] = _field_type(python_type)
    return fields
