"""Building blocks of the interactive maps: input preparation, GeoJSON, popups, custom layers.

Inputs are GeoDataFrames in EPSG:4326 (another CRS is reprojected, none is taken as 4326).
:func:`prepare` drops empty geometries, shifts to the basemap's datum and rounds coordinates to
1e-5° (about a metre), which keeps pages small. Popups, tooltips and labels are built here in
Python and carried in each feature's ``_popup``, ``_tip`` and ``_label`` properties; :data:`BIND_JS`
binds them in the browser, where Leaflet writes them with innerHTML. So every piece of text that
reaches such HTML goes through :func:`escape` (the one rule): :func:`popup_html` and
:func:`tooltip_html` build escaped markup, and :func:`feature_collection` escapes any of those
properties that is plain text rather than markup they built.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, TypeGuard

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.elements import JSCSSMixin
from folium.map import Layer
from folium.template import Template
from folium.utilities import JsCode
from markupsafe import Markup

from maps.basemaps import Basemap

__all__ = [
    "BIND_JS",
    "LABEL_JS",
    "HouseholdCluster",
    "Legend",
    "MapTitle",
    "escape",
    "feature_collection",
    "popup_html",
    "prepare",
    "present",
    "round_coordinates",
    "tooltip_html",
]

#: Feature properties that Leaflet shows as HTML (popup, hover tooltip, permanent label).
HTML_PROPERTIES = ("_popup", "_tip", "_label")


def escape(value: Any) -> Markup:
    """Text (a name, a code, anything from the data) made safe to place in HTML; markup built
    by this module's helpers passes unchanged."""
    return Markup.escape("" if value is None else value)


def tooltip_html(*lines: Any) -> Markup:
    """An escaped tooltip or label: the present lines, one below the other."""
    return Markup("<br>").join(escape(line) for line in lines if line is not None and line != "")


#: onEachFeature: bind the feature's ``_popup`` and ``_tip`` properties (escaped HTML).
BIND_JS = JsCode(
    "function(feature, layer) { var p = feature.properties || {};"
    " if (p._popup) { layer.bindPopup(p._popup, {maxWidth: 300}); }"
    " if (p._tip) { layer.bindTooltip(p._tip, {sticky: true}); } }"
)
#: onEachFeature for labelled areas: a permanent centred label from ``_label`` plus the popup.
LABEL_JS = JsCode(
    "function(feature, layer) { var p = feature.properties || {};"
    " if (p._popup) { layer.bindPopup(p._popup, {maxWidth: 300}); }"
    " if (p._label) { layer.bindTooltip(p._label, {permanent: true, direction: 'center',"
    " className: 'gridsvc-label'}); } }"
)


def present(gdf: gpd.GeoDataFrame | None) -> TypeGuard[gpd.GeoDataFrame]:
    """Whether an optional layer was given and has at least one feature."""
    return gdf is not None and len(gdf) > 0


def round_coordinates(geoms: Any, precision: int = 5) -> Any:
    """Round every coordinate to ``precision`` decimals (1e-5° ≈ 1 m)."""
    return shapely.transform(geoms, lambda xy: np.round(xy, precision))


def prepare(
    gdf: gpd.GeoDataFrame | None, basemap: Basemap | None = None, precision: int = 5
) -> gpd.GeoDataFrame | None:
    """A display copy: EPSG:4326, no empty geometry, in the basemap's datum, rounded."""
    if gdf is None:
        return None
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise TypeError(f"expected a GeoDataFrame, got {type(gdf).__name__}")
    out = gdf if gdf.crs is not None else gdf.set_crs(4326)
    if out.crs is not None and out.crs.to_epsg() != 4326:
        out = out.to_crs(4326)
    geom = out.geometry
    out = out[geom.notna() & ~geom.is_empty].copy()
    if basemap is not None:
        out = basemap.to_display(out)
    out[out.geometry.name] = round_coordinates(out.geometry.to_numpy(), precision)
    return out


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, dict | list):
        return value
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def feature_collection(
    gdf: gpd.GeoDataFrame, properties: dict[str, Sequence[Any]] | None = None
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of the geometries with only the given property columns."""
    geoms = shapely.to_geojson(gdf.geometry.to_numpy())
    props = properties or {}
    keys = list(props)
    columns = [
        # Text becomes escaped markup; numbers and missing values (NaN: no tooltip) stay as they are.
        [
            _json_value(escape(v) if k in HTML_PROPERTIES and isinstance(v, str) else v)
            for v in props[k]
        ]
        for k in keys
    ]
    features = []
    for i, g in enumerate(geoms):
        features.append(
            {
                "type": "Feature",
                "geometry": json.loads(g),
                "properties": {k: col[i] for k, col in zip(keys, columns, strict=True)},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _fmt(value: Any) -> str | None:
    v = _json_value(value)
    if v is None or v == "":
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def popup_html(
    title: Any, rows: Iterable[tuple[str, Any]], link: tuple[str, str] | None = None
) -> Markup:
    """An escaped Chinese popup: a bold title, a two-column table of present values, a link."""
    parts = [Markup('<div class="gridsvc-popup"><b>{}</b><table>').format(str(title))]
    for label, value in rows:
        text = _fmt(value)
        if text is not None:
            parts.append(Markup("<tr><th>{}</th><td>{}</td></tr>").format(label, text))
    parts.append(Markup("</table>"))
    if link is not None:
        parts.append(Markup('<a href="{}">{}</a>').format(link[0], link[1]))
    parts.append(Markup("</div>"))
    return Markup("").join(parts)


# ----------------------------------------------------------------------- custom layers -----

_CSS = """
.gridsvc-legend, .gridsvc-filter, .gridsvc-title {background: rgba(255,255,255,.92);
  padding: 6px 8px; border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,.3);
  font: 13px/1.4 "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; max-width: 70vw;}
.gridsvc-legend i {display: inline-block; width: 14px; height: 10px; margin-right: 5px;
  border: 1px solid #555; vertical-align: middle;}
.gridsvc-legend i.dot {border-radius: 50%; width: 10px;}
.gridsvc-legend h4, .gridsvc-filter h4 {margin: 2px 0 4px; font-size: 13px;}
.gridsvc-filter label {display: block; white-space: nowrap;}
.gridsvc-title {font-weight: bold; font-size: 14px;}
.gridsvc-popup table {border-collapse: collapse; margin-top: 4px;}
.gridsvc-popup th {text-align: left; padding-right: 8px; font-weight: normal; color: #555;}
.gridsvc-label {background: rgba(255,255,255,.8); border: 0; box-shadow: none; padding: 1px 3px;
  font-size: 11px; text-align: center;}
.gridsvc-hh {border-radius: 50%; background: #2c7fb8; border: 1px solid #fff;}
.gridsvc-hh.flag {background: #e6550d;}
@media (max-width: 600px) {.gridsvc-legend {font-size: 11px; max-height: 40vh; overflow: auto;}}
/* On a phone the legend and the filter fold to one thumb-size button each (tap to open). */
.gridsvc-toggle {display: none;}
@media (max-width: 600px) {
  .gridsvc-collapsible .gridsvc-toggle {display: block; min-width: 44px; min-height: 40px;
    border: 0; background: none; font: bold 13px "Noto Sans CJK SC", sans-serif; color: #1d5fa8;
    padding: 0 4px; cursor: pointer;}
  .gridsvc-collapsible:not(.open) > :not(.gridsvc-toggle) {display: none;}
  .gridsvc-collapsible:not(.open) {padding: 0 4px;}
}
"""

#: Script shared by the folding controls: a toggle button opens and closes its control.
_FOLD_JS = """
function gridsvcFoldable(div, label) {
    var button = L.DomUtil.create('button', 'gridsvc-toggle');
    button.type = 'button';
    button.textContent = label;
    button.setAttribute('aria-expanded', 'false');
    div.classList.add('gridsvc-collapsible');
    div.insertBefore(button, div.firstChild);
    button.addEventListener('click', function () {
        var open = div.classList.toggle('open');
        button.setAttribute('aria-expanded', open ? 'true' : 'false');
    });
}
"""


class _Control(folium.MacroElement):
    """A Leaflet control holding fixed HTML (legend, title)."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}<style>{{ this.css }}</style>{% endmacro %}
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
        {{ this.get_name() }}.onAdd = function () {
            var div = L.DomUtil.create('div', {{ this.css_class|tojson }});
            div.innerHTML = {{ this.html|tojson }};
            {% if this.fold_label %}{{ this.fold_js }}
            gridsvcFoldable(div, {{ this.fold_label|tojson }});{% endif %}
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(
        self, html_text: str, position: str, css_class: str, fold_label: str | None = None
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # (branca is untyped)
        self.html = str(escape(html_text))
        self.position = position
        self.css_class = css_class
        self.css = _CSS
        #: On a phone the control folds to a button with this label (None: never folds).
        self.fold_label = fold_label
        self.fold_js = _FOLD_JS


class Legend(_Control):
    """A legend: sections of (colour, label, shape) entries, shape "box" or "dot"."""

    def __init__(
        self,
        sections: Sequence[tuple[str, Sequence[tuple[str, str, str]]]],
        position: str = "bottomright",
        fold_label: str = "图例",
    ) -> None:
        parts = []
        for heading, entries in sections:
            if not entries:
                continue
            parts.append(Markup("<h4>{}</h4>").format(heading))
            for colour, label, shape in entries:
                cls = Markup(' class="dot"') if shape == "dot" else ""
                parts.append(
                    Markup('<div><i{} style="background:{}"></i>{}</div>').format(
                        cls, colour, label
                    )
                )
        super().__init__(Markup("").join(parts), position, "gridsvc-legend", fold_label)


class MapTitle(_Control):
    """A title box (e.g. the cell's name) in a corner of the map."""

    def __init__(self, text: str, position: str = "topright") -> None:
        super().__init__(text, position, "gridsvc-title")


class HouseholdCluster(JSCSSMixin, Layer):
    """Household points clustered (Leaflet.markercluster), with a flag filter control.

    ``points`` rows are ``[lat, lon, flag_bits, popup_html]``; bit ``i`` is ``flags[i]``.
    Ticking flags shows only households having any ticked flag; none ticked shows all.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.markerClusterGroup({{ this.options|tojavascript }});
        (function (group) {
            var rows = {{ this.points|tojson }};
            var markers = rows.map(function (r) {
                var m = L.marker([r[0], r[1]], {icon: L.divIcon({
                    className: 'gridsvc-hh' + (r[2] ? ' flag' : ''), iconSize: [12, 12]})});
                m.bindPopup(r[3]);
                m.gridsvcFlags = r[2];
                return m;
            });
            group.addLayers(markers);
            group.gridsvcFilter = function (mask) {
                group.clearLayers();
                group.addLayers(mask ? markers.filter(function (m) { return m.gridsvcFlags & mask; }) : markers);
                return group.getLayers().length;
            };
            var flags = {{ this.flags|tojson }};
            if (!flags.length) { return; }
            var control = L.control({position: 'bottomleft'});
            control.onAdd = function () {
                var div = L.DomUtil.create('div', 'gridsvc-filter');
                var html = '<h4>{{ this.filter_title }}</h4>';
                flags.forEach(function (f, i) {
                    html += '<label><input type="checkbox" data-bit="' + (1 << f[2]) + '"> ' + f[1] + '</label>';
                });
                div.innerHTML = html;
                {{ this.fold_js }}
                gridsvcFoldable(div, {{ this.filter_title|tojson }});
                L.DomEvent.disableClickPropagation(div);
                div.addEventListener('change', function () {
                    var mask = 0;
                    div.querySelectorAll('input:checked').forEach(function (box) { mask |= +box.dataset.bit; });
                    group.gridsvcFilter(mask);
                });
                return div;
            };
            control.addTo({{ this._parent.get_name() }});
        })({{ this.get_name() }});
        {% endmacro %}
        """
    )

    # folium declares these as instance attributes: plain class values, as folium does.
    default_js = [  # noqa: RUF012
        (
            "markerclusterjs",
            "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/leaflet.markercluster.js",
        )
    ]
    default_css = [  # noqa: RUF012
        (
            "markerclustercss",
            "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.css",
        ),
        (
            "markerclusterdefaultcss",
            "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.Default.css",
        ),
    ]

    def __init__(
        self,
        points: list[list[Any]],
        flags: Sequence[tuple[str, str, int]],
        name: str = "住户",
        show: bool = True,
        filter_title: str = "住户筛选",
    ) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "HouseholdCluster"
        self.points = points
        self.flags = [[key, str(escape(label)), bit] for key, label, bit in flags]
        self.filter_title = str(escape(filter_title))
        self.fold_js = _FOLD_JS
        self.options = {
            "maxClusterRadius": 40,
            "showCoverageOnHover": False,
            "chunkedLoading": True,
        }


class ChineseControls(folium.MacroElement):
    """Leaflet's own controls in Chinese: zoom buttons 放大/缩小, the layer switcher 图层, and
    a metric-only scale bar (the map is made with ``zoom_control=False, control_scale=False``)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # (branca is untyped)
        self._name = "ChineseControls"

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        L.control.zoom({position: 'topleft', zoomInTitle: '放大', zoomOutTitle: '缩小'})
            .addTo({{ this._parent.get_name() }});
        L.control.scale({metric: true, imperial: false}).addTo({{ this._parent.get_name() }});
        // Leaflet names the layer switcher "Layers" itself; the control is added after this
        // script (folium puts it last), so rename it once the page's scripts have run.
        setTimeout(function () {
            document.querySelectorAll('.leaflet-control-layers-toggle').forEach(function (a) {
                a.title = '图层';
                a.setAttribute('aria-label', '图层');
            });
        }, 0);
        {% endmacro %}
        """
    )


class VectorTiles(JSCSSMixin, Layer):
    """A layer drawn from vector tiles (MVT) by Leaflet.VectorGrid: ``url`` is a
    ``{z}/{x}/{y}`` template (fetched with the page's cookies), ``styles`` maps each tile
    layer name to a Leaflet path style. Tiles exist from ``native_minzoom``; below it the
    tiles of that zoom are drawn scaled down, down to ``minzoom`` (so a whole street's
    buildings show when zoomed out, at a bounded number of requests)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.vectorGrid.protobuf(
            {{ this.url|tojson }}, {{ this.options|tojson }}
        ).addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    default_js = [  # noqa: RUF012  (folium's instance attribute, set as folium does)
        (
            "vectorgridjs",
            "https://unpkg.com/leaflet.vectorgrid@1.3.0/dist/Leaflet.VectorGrid.bundled.min.js",
        )
    ]

    def __init__(
        self,
        url: str,
        *,
        name: str,
        styles: dict[str, dict[str, Any]],
        native_minzoom: int,
        minzoom: int,
        attribution: str = "",
    ) -> None:
        super().__init__(name=name, overlay=True, control=True, show=True)
        self._name = "VectorTiles"
        self.url = url
        self.options = {
            "vectorTileLayerStyles": styles,
            "interactive": False,
            "minNativeZoom": native_minzoom,
            "minZoom": minzoom,
            "maxNativeZoom": 22,
            "attribution": attribution,
        }
