"""Bodies of the tile routes: OGC API – Tiles (tile matrix sets, tilesets) and TileJSON 3.0."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Link(BaseModel):
    """A web link (OGC API style)."""

    href: str
    rel: str
    type: str | None = None
    title: str | None = None
    templated: bool | None = None


class TileMatrix(BaseModel):
    """One zoom level of a tile matrix set (OGC 2D Tile Matrix Set 2.0)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    scale_denominator: float = Field(alias="scaleDenominator")
    cell_size: float = Field(alias="cellSize")
    corner_of_origin: str = Field("topLeft", alias="cornerOfOrigin")
    point_of_origin: list[float] = Field(alias="pointOfOrigin")
    tile_width: int = Field(alias="tileWidth")
    tile_height: int = Field(alias="tileHeight")
    matrix_width: int = Field(alias="matrixWidth")
    matrix_height: int = Field(alias="matrixHeight")


class TileMatrixSet(BaseModel):
    """A tile matrix set definition (WebMercatorQuad)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    title: str
    uri: str
    crs: str
    ordered_axes: list[str] = Field(alias="orderedAxes")
    well_known_scale_set: str | None = Field(None, alias="wellKnownScaleSet")
    tile_matrices: list[TileMatrix] = Field(alias="tileMatrices")


class TileMatrixSetRef(BaseModel):
    """An entry of the tile matrix set list."""

    id: str
    title: str
    uri: str
    links: list[Link]


class TileMatrixSetList(BaseModel):
    """``/ogc/tileMatrixSets``."""

    model_config = ConfigDict(populate_by_name=True)

    tile_matrix_sets: list[TileMatrixSetRef] = Field(alias="tileMatrixSets")


class TileMatrixLimits(BaseModel):
    """The zooms (and there the whole matrix) a tileset serves."""

    model_config = ConfigDict(populate_by_name=True)

    tile_matrix: str = Field(alias="tileMatrix")
    min_tile_row: int = Field(alias="minTileRow")
    max_tile_row: int = Field(alias="maxTileRow")
    min_tile_col: int = Field(alias="minTileCol")
    max_tile_col: int = Field(alias="maxTileCol")


class GeospatialData(BaseModel):
    """A layer inside a tileset."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    title: str
    description: str
    data_type: str = Field("vector", alias="dataType")
    min_tile_matrix: str = Field(alias="minTileMatrix")
    max_tile_matrix: str = Field(alias="maxTileMatrix")
    properties_schema: dict[str, dict[str, str]] = Field(alias="propertiesSchema")


class TileSet(BaseModel):
    """A tileset of a collection in one tile matrix set (OGC API – Tiles, tileset metadata)."""

    model_config = ConfigDict(populate_by_name=True)

    title: str
    data_type: str = Field("vector", alias="dataType")
    crs: str
    tile_matrix_set_uri: str = Field(alias="tileMatrixSetURI")
    tile_matrix_set_limits: list[TileMatrixLimits] | None = Field(None, alias="tileMatrixSetLimits")
    layers: list[GeospatialData] | None = None
    links: list[Link]


class TileSetList(BaseModel):
    """``/ogc/collections/{layer}/tiles``."""

    tilesets: list[TileSet]


class VectorLayer(BaseModel):
    """A TileJSON vector layer: its id, fields (name → Number/String/Boolean) and zooms."""

    id: str
    description: str
    fields: dict[str, str]
    minzoom: int
    maxzoom: int


class TileJSON(BaseModel):
    """TileJSON 3.0.0 of a layer (what MapLibre, QGIS and Leaflet plugins read)."""

    tilejson: str = "3.0.0"
    name: str
    description: str
    version: str
    scheme: str = "xyz"
    tiles: list[str]
    minzoom: int
    maxzoom: int
    bounds: list[float] = [-180.0, -85.0511287798066, 180.0, 85.0511287798066]
    attribution: str
    vector_layers: list[VectorLayer]
