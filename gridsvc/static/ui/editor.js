// gridsvc boundary editor (街道/社区 staff): split, reshape, merge, move buildings, adopt a
// proposal. Every action is previewed through the API first (nothing written), the impact is
// shown, and only then committed with a reason and the preview's ETag (If-Match).
/* global L */
(function () {
  "use strict";

  const root = document.getElementById("editor");
  const community = root.dataset.community;
  const api = root.dataset.api; // e.g. /api/v1
  const band = { min: Number(root.dataset.bandMin), max: Number(root.dataset.bandMax) };
  const $ = (id) => document.getElementById(id);
  // Data (names, codes, people) only ever becomes DOM text: never innerHTML, never a Leaflet
  // string content (bindTooltip/bindPopup with a string set innerHTML). el() builds elements;
  // strings among its children become text nodes.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    });
    children.flat().forEach((c) => {
      if (c === null || c === undefined || c === false) return;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    });
    return node;
  }
  // A tooltip of text lines, one below the other.
  const tip = (...lines) => el("div", null, lines.map((line, i) => (i ? [el("br"), line] : line)));

  const map = L.map("map", { doubleClickZoom: false, zoomControl: false });
  // Leaflet's and Geoman's own controls in Chinese.
  L.control.zoom({ zoomInTitle: "放大", zoomOutTitle: "缩小" }).addTo(map);
  L.control.scale({ metric: true, imperial: false }).addTo(map);
  if (map.pm && map.pm.setLang) map.pm.setLang("zh");
  map.attributionControl.addAttribution(root.dataset.attribution);

  const state = {
    tool: null, // "split" | "reshape" | "merge" | "move" | "proposal"
    selectedCells: new Set(),
    selectedBuildings: new Set(),
    body: null, // the last previewed request body (without reason)
    etag: null,
    cellsByCode: new Map(),
    buildingLayers: new Map(),
  };
  const cellsLayer = L.geoJSON(null, { style: cellStyle, onEachFeature: onCell }).addTo(map);
  const buildingsLayer = L.geoJSON(null, { style: buildingStyle, onEachFeature: onBuilding }).addTo(map);
  // Above a few thousand buildings (GRIDSVC_MAP_TILED_BUILDINGS_ABOVE) they come from vector
  // tiles instead, in a pane above the cells so that a click reaches them; "no-cache": after a
  // commit every tile is revalidated (its ETag answers 304 when nothing in it changed).
  const tileUrl = root.dataset.buildingTiles;
  let tiledBuildings = null;
  if (tileUrl) {
    map.createPane("buildingTiles").style.zIndex = 450;
    tiledBuildings = L.vectorGrid.protobuf(tileUrl, {
      pane: "buildingTiles",
      rendererFactory: L.svg.tile,
      interactive: true,
      minNativeZoom: Number(root.dataset.buildingTilesMinzoom),
      maxNativeZoom: 22,
      getFeatureId: (f) => f.properties.building_id,
      vectorTileLayerStyles: { buildings: (p) => buildingStyle({ properties: { id: p.building_id } }) },
      fetchOptions: { credentials: "same-origin", cache: "no-cache" },
    }).addTo(map);
    tiledBuildings.on("click", (e) => onTiledBuilding(e));
  }
  const problemsLayer = L.geoJSON(null, {
    style: { color: "#d7191c", weight: 3, fillOpacity: 0.35, dashArray: "4 3" },
    pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 6, color: "#d7191c" }),
    onEachFeature: (f, layer) => layer.bindTooltip(tip(f.properties.label || f.properties.kind)),
  }).addTo(map);
  const proposalLayer = L.geoJSON(null, {
    style: (f) => ({ color: "#7b3294", weight: 2, fillOpacity: 0.08, dashArray: "6 4" }),
    onEachFeature: (f, layer) =>
      layer.bindTooltip(tip(`方案网格：${f.properties.households ?? "?"} 户${f.properties.in_band ? "" : "（超出范围）"}`), { sticky: true }),
  });
  let drawnLine = null;
  let editedLayer = null;

  // ---- data -----------------------------------------------------------------------------
  async function call(method, path, body, headers) {
    const response = await fetch(api + path, {
      method,
      credentials: "same-origin",
      headers: Object.assign({ "Content-Type": "application/json", Accept: "application/json" }, csrfHeader(), headers || {}),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { ok: response.ok, status: response.status, data, etag: response.headers.get("ETag") };
  }

  // The session's CSRF token (gridsvc.api.csrf), rendered by the page into <meta name="csrf-token">.
  function csrfHeader() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? { "X-CSRF-Token": meta.content } : {};
  }

  async function allFeatures(path) {
    const features = [];
    let offset = 0;
    for (;;) {
      const sep = path.includes("?") ? "&" : "?";
      const r = await call("GET", `${path}${sep}limit=1000&offset=${offset}`);
      if (!r.ok) throw new Error(problemText(r));
      features.push(...r.data.features);
      offset += r.data.features.length;
      if (!r.data.features.length || offset >= (r.data.numberMatched ?? 0)) break;
    }
    return { type: "FeatureCollection", features };
  }

  async function load() {
    notice("正在加载网格和楼栋……");
    const [cells, buildings] = await Promise.all([
      allFeatures(`/communities/${community}/cells`),
      tiledBuildings ? { type: "FeatureCollection", features: [] } : allFeatures(`/communities/${community}/buildings`),
    ]);
    if (tiledBuildings) tiledBuildings.redraw();
    cellsLayer.clearLayers();
    buildingsLayer.clearLayers();
    state.cellsByCode.clear();
    state.buildingLayers.clear();
    cellsLayer.addData(cells);
    buildingsLayer.addData(buildings);
    if (cellsLayer.getLayers().length) map.fitBounds(cellsLayer.getBounds(), { padding: [10, 10] });
    fillTargetCells();
    const shown = tiledBuildings ? "楼栋（矢量瓦片）" : `${buildings.features.length} 栋楼`;
    notice(`已加载 ${cells.features.length} 个网格、${shown}。请选择一个操作。`);
    root.dataset.ready = "true";
  }

  // ---- styling and selection ---------------------------------------------------------------
  function cellStyle(feature) {
    const selected = state.selectedCells.has(feature.properties.code);
    return {
      color: selected ? "#e66101" : "#1d5fa8",
      weight: selected ? 4 : 2,
      fillColor: selected ? "#fdb863" : "#9ecae1",
      fillOpacity: selected ? 0.35 : 0.12,
    };
  }
  function buildingStyle(feature) {
    const selected = state.selectedBuildings.has(feature.properties.id);
    return {
      fill: true,
      color: selected ? "#b2182b" : "#555",
      weight: selected ? 2 : 0.6,
      fillColor: selected ? "#ef8a62" : "#bbb",
      fillOpacity: selected ? 0.9 : 0.6,
    };
  }
  function onCell(feature, layer) {
    const p = feature.properties;
    state.cellsByCode.set(p.code, layer);
    layer.bindTooltip(tip(`${p.name || p.code}（${p.code}）`, `${p.households ?? 0} 户 · 格长：${p.leader || "无"}`), { sticky: true });
    layer.on("click", () => selectCell(p.code));
  }
  function selectCell(code) {
    const layer = state.cellsByCode.get(code);
    if (!layer) return;
    if (state.tool === "split") {
      if (map.pm.globalDrawModeEnabled() || drawnLine) return; // clicks now add line vertices
      state.selectedCells = new Set([code]);
      startSplitLine();
    } else if (state.tool === "reshape") {
      state.selectedCells = new Set([code]);
      startReshape(layer);
    } else if (state.tool === "merge") {
      if (state.selectedCells.has(code)) state.selectedCells.delete(code);
      else state.selectedCells.add(code);
    } else {
      return;
    }
    cellsLayer.setStyle(cellStyle);
    describeSelection();
  }
  function onBuilding(feature, layer) {
    const p = feature.properties;
    state.buildingLayers.set(p.id, layer);
    layer.bindTooltip(tip(`${p.name || "楼栋 " + p.id}：${p.households ?? 0} 户（${p.cell || "未归属"}）`));
    layer.on("click", (e) => {
      if (state.tool !== "move") {
        // A building sits on top of its cell: a click on it selects the cell.
        if (p.cell && !(map.pm && map.pm.globalDrawModeEnabled())) selectCell(p.cell);
        return;
      }
      L.DomEvent.stopPropagation(e);
      if (state.selectedBuildings.has(p.id)) state.selectedBuildings.delete(p.id);
      else state.selectedBuildings.add(p.id);
      layer.setStyle(buildingStyle(feature));
      describeSelection();
    });
  }

  // A building drawn from a tile: the same choices as onBuilding, restyled through the tiles.
  function onTiledBuilding(e) {
    const p = e.layer.properties;
    if (state.tool !== "move") {
      if (p.cell_code && !(map.pm && map.pm.globalDrawModeEnabled())) selectCell(p.cell_code);
      return;
    }
    L.DomEvent.stopPropagation(e);
    const id = p.building_id;
    if (state.selectedBuildings.has(id)) {
      state.selectedBuildings.delete(id);
      tiledBuildings.resetFeatureStyle(id);
    } else {
      state.selectedBuildings.add(id);
      tiledBuildings.setFeatureStyle(id, buildingStyle({ properties: { id } }));
    }
    describeSelection();
  }

  // ---- tools -------------------------------------------------------------------------------
  function resetTool() {
    if (tiledBuildings) state.selectedBuildings.forEach((id) => tiledBuildings.resetFeatureStyle(id));
    state.selectedCells.clear();
    state.selectedBuildings.clear();
    state.body = null;
    state.etag = null;
    if (drawnLine) { map.removeLayer(drawnLine); drawnLine = null; }
    if (editedLayer) { editedLayer.pm.disable(); editedLayer = null; }
    if (map.pm) map.pm.disableDraw();
    map.removeLayer(proposalLayer);
    problemsLayer.clearLayers();
    cellsLayer.setStyle(cellStyle);
    buildingsLayer.setStyle(buildingStyle);
    $("impact").replaceChildren();
    $("commit-box").hidden = true;
  }

  const ROLE_LABELS = JSON.parse(root.dataset.roleLabels || "{}");

  const HELP = {
    split: "拆分：先点击要拆分的网格，再在地图上逐点画一条穿过它的线（再次点击最后一个点结束），然后点“预览”。",
    reshape: "调整边界：点击网格后拖动它的顶点，完成后点“预览”。相邻网格会被相应裁剪。",
    merge: "合并：依次点击两个或更多相邻网格，然后点“预览”。",
    move: "移动楼栋：点击要移动的楼栋（可多选），选择目标网格，然后点“预览”。",
    proposal: "自动划格：生成一个户数均衡的方案，查看后可预览并提交。",
  };

  function setTool(tool) {
    resetTool();
    state.tool = tool;
    document.querySelectorAll(".tools button[data-tool]").forEach((b) =>
      b.classList.toggle("active", b.dataset.tool === tool));
    $("move-target").hidden = tool !== "move";
    notice(HELP[tool]);
    if (tool === "proposal") loadProposal();
  }

  function startSplitLine() {
    if (drawnLine) { map.removeLayer(drawnLine); drawnLine = null; }
    // After the selecting click has finished, so it does not become the first vertex.
    setTimeout(() => map.pm.enableDraw("Line", { snappable: false }), 0);
  }
  map.on("pm:create", (e) => {
    if (state.tool !== "split") { map.removeLayer(e.layer); return; }
    drawnLine = e.layer;
    describeSelection();
  });

  function startReshape(layer) {
    if (editedLayer && editedLayer !== layer) editedLayer.pm.disable();
    editedLayer = layer;
    layer.pm.enable({ allowSelfIntersection: false });
  }

  function fillTargetCells() {
    const select = $("target-cell");
    select.replaceChildren();
    [...state.cellsByCode.keys()].sort().forEach((code) => {
      const option = document.createElement("option");
      option.value = code;
      option.textContent = code;
      select.appendChild(option);
    });
  }

  async function loadProposal() {
    notice("正在生成自动划格方案……");
    const r = await call("POST", `/communities/${community}/proposal`, {});
    if (!r.ok) { notice(problemText(r), "error"); return; }
    const cells = { type: "FeatureCollection", features: r.data.features };
    proposalLayer.clearLayers();
    proposalLayer.addData(cells);
    proposalLayer.addTo(map);
    state.proposal = cells;
    const n = cells.features.length;
    const inBand = cells.features.filter((f) => f.properties.in_band).length;
    notice(`方案：${n} 个网格，其中 ${inBand} 个户数在 ${band.min}–${band.max} 户之间。点“预览”查看影响。`);
  }

  function describeSelection() {
    const parts = [];
    if (state.selectedCells.size) parts.push(`已选网格：${[...state.selectedCells].join("、")}`);
    if (state.selectedBuildings.size) parts.push(`已选楼栋：${state.selectedBuildings.size} 栋`);
    if (drawnLine) parts.push("已画拆分线");
    $("selection").textContent = parts.join("；");
  }

  function requestBody() {
    const cells = [...state.selectedCells];
    switch (state.tool) {
      case "split":
        if (cells.length !== 1 || !drawnLine) throw new Error("请先点击一个网格并画出拆分线。");
        return { op: "split", cell: cells[0], line: drawnLine.toGeoJSON().geometry };
      case "reshape": {
        if (cells.length !== 1 || !editedLayer) throw new Error("请先点击要调整的网格并拖动顶点。");
        let geometry = editedLayer.toGeoJSON().geometry;
        if (geometry.type === "MultiPolygon" && geometry.coordinates.length === 1) {
          geometry = { type: "Polygon", coordinates: geometry.coordinates[0] };
        }
        return { op: "reshape", cell: cells[0], geometry, trim_neighbours: true };
      }
      case "merge":
        if (cells.length < 2) throw new Error("请至少选择两个相邻网格。");
        return { op: "merge", cells };
      case "move":
        if (!state.selectedBuildings.size) throw new Error("请先点击要移动的楼栋。");
        return { op: "move_buildings", buildings: [...state.selectedBuildings], to_cell: $("target-cell").value };
      case "proposal":
        if (!state.proposal) throw new Error("方案尚未生成。");
        return { op: "proposal", cells: state.proposal };
      default:
        throw new Error("请先选择一个操作。");
    }
  }

  // ---- preview and commit -------------------------------------------------------------------
  async function preview() {
    let body;
    try { body = requestBody(); } catch (e) { notice(e.message, "error"); return; }
    notice("正在预览（不会写入）……");
    const r = await call("POST", `/communities/${community}/redraw/preview`, Object.assign({ reason: "预览" }, body));
    if (!r.ok) { notice(problemText(r), "error"); return; }
    state.body = body;
    state.etag = r.etag || r.data.etag;
    showImpact(r.data.impact);
    $("commit-box").hidden = false;
    notice("预览完成：请核对影响，填写原因后提交。", "ok");
  }

  async function commit() {
    const reason = $("reason").value.trim();
    if (!reason) { notice("提交前请填写调整原因（写入审计记录）。", "error"); return; }
    if (!state.body || !state.etag) { notice("请先预览。", "error"); return; }
    const r = await call("POST", `/communities/${community}/redraw/commit`,
      Object.assign({}, state.body, { reason }), { "If-Match": state.etag });
    if (r.status === 409) {
      notice("提交失败：预览之后该社区的网格已被他人修改（版本冲突）。请重新加载，再预览一次。" +
        (r.data && r.data.detail ? `（${r.data.detail}）` : ""), "error");
      $("reload").hidden = false;
      return;
    }
    if (!r.ok) { notice(problemText(r), "error"); return; }
    const impact = r.data.impact;
    const done = `已提交：新增 ${impact.cells_created.length} 个网格，撤销 ${impact.cells_retired.length} 个，移动 ${impact.moved.buildings.length} 栋楼。`;
    resetTool();
    await load();
    notice(done, "ok");
    root.dataset.committed = String(Number(root.dataset.committed || 0) + 1);
  }

  function showImpact(impact) {
    problemsLayer.clearLayers();
    if (impact.validation_geojson) problemsLayer.addData(impact.validation_geojson);
    const list = (items) => items.join("、") || "无";
    const rows = impact.households_per_cell.map((c) => {
      const out = c.after !== null && (c.after < band.min || c.after > band.max);
      return el("tr", { class: out ? "warn" : "" },
        el("td", null, c.cell), el("td", null, c.before ?? "—"), el("td", null, c.after ?? "（撤销）"));
    });
    const m = impact.moved;
    const people = (impact.people || []).map((p) =>
      el("li", null, `${p.person}（${ROLE_LABELS[p.role] || p.role}）：${p.action === "moved" ? "随迁" : "离任"} ${p.from || ""}${p.to ? " → " + p.to : ""}`));
    const problems = impact.validation.problems || [];
    const drawn = impact.validation_geojson ? impact.validation_geojson.features.length : 0;
    $("impact").replaceChildren(
      el("h3", null, "影响预览"),
      el("p", null, `撤销网格：${list(impact.cells_retired)}；新增网格：${list(impact.cells_created)}`),
      el("p", { id: "moved-summary" }, "变动楼栋 ", el("b", null, m.buildings.length), " 栋，户数 ",
        el("b", null, m.households), `，居民 ${m.residents} 人，志愿者 ${m.volunteers} 人，` +
        `在册人员 ${m.assigned_people} 人；待办事件随点位调整 ${impact.open_incidents_moved} 件。`),
      el("table", { class: "data", id: "balance" },
        el("tr", null, el("th", null, "网格"), el("th", null, "调整前户数"), el("th", null, "调整后户数")), rows),
      el("p", null, `无格长的网格：${list(impact.cells_without_leader)}`),
      people.length ? [el("p", null, "人员变动："), el("ul", null, people)] : null,
      el("p", { id: "problems" }, `校验问题：${problems.length ? `${problems.length} 处（地图上红色标出 ${drawn} 处）` : "无"}`),
      problems.length ? el("ul", { id: "problem-list" }, problems.map((p) =>
        el("li", null, `${p.label}：${(p.cells || []).join("、")} ${p.detail || ""}`))) : null,
      el("details", null, el("summary", null, "人员随迁规则"), el("p", null, impact.people_rule)));
  }

  // ---- messages -----------------------------------------------------------------------------
  function problemText(r) {
    if (r.status === 401) return "登录已过期，请重新登录。";
    if (r.status === 403) return "没有权限执行此操作。" + (r.data && r.data.detail ? r.data.detail : "");
    if (r.data && (r.data.detail || r.data.title)) return `${r.data.title || "错误"}：${r.data.detail || ""}`;
    return `请求失败（HTTP ${r.status}）`;
  }
  function notice(text, kind) {
    const box = $("notice");
    box.textContent = text;
    box.className = "notice" + (kind ? " " + kind : "");
  }

  document.querySelectorAll(".tools button[data-tool]").forEach((b) =>
    b.addEventListener("click", () => setTool(b.dataset.tool)));
  $("preview").addEventListener("click", preview);
  $("commit").addEventListener("click", commit);
  $("cancel").addEventListener("click", () => { resetTool(); state.tool = null; notice("已取消。"); });
  $("reload").addEventListener("click", async () => { $("reload").hidden = true; resetTool(); await load(); });
  load().catch((e) => notice(e.message, "error"));
  window.gridsvcEditor = { map, state, cellsLayer, buildingsLayer, tiledBuildings, problemsLayer };
})();
