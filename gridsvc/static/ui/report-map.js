// The cell map: tap a point (or open a building's or household's popup) to 上报事件 there.
// The point is sent in the map's display datum (data-datum); the server converts it to WGS84.
(function () {
  "use strict";
  function findMap() {
    for (var key in window) {
      try { if (window[key] instanceof L.Map) return window[key]; } catch (e) { /* cross-origin */ }
    }
    return null;
  }
  function reportLink(base, latlng, datum) {
    var a = document.createElement("a");
    a.className = "gs-report";
    a.href = base + "?lon=" + latlng.lng.toFixed(6) + "&lat=" + latlng.lat.toFixed(6) + "&datum=" + datum;
    a.textContent = "在此上报事件";
    return a;
  }
  window.addEventListener("load", function () {
    var bar = document.querySelector(".gs-bar[data-report]");
    if (!bar || typeof L === "undefined") return;
    var map = findMap();
    if (!map) return;
    var base = bar.dataset.report, datum = bar.dataset.datum || "wgs84";
    map.on("click", function (e) {
      var target = e.originalEvent && e.originalEvent.target;
      if (target && target.classList && target.classList.contains("leaflet-interactive")) return;
      var box = document.createElement("div");
      box.append("所选位置");
      box.appendChild(document.createElement("br"));
      box.appendChild(reportLink(base, e.latlng, datum));
      L.popup().setLatLng(e.latlng).setContent(box).openOn(map);
    });
    map.on("popupopen", function (e) {
      var content = e.popup.getElement().querySelector(".leaflet-popup-content");
      if (!content || content.querySelector(".gs-report")) return;
      var p = document.createElement("p");
      p.appendChild(reportLink(base, e.popup.getLatLng(), datum));
      content.appendChild(p);
    });
    map.on("locationfound", function (e) {
      L.popup().setLatLng(e.latlng).setContent(reportLink(base, e.latlng, "wgs84")).openOn(map);
    });
    document.body.dataset.reportReady = "1";
  });
})();
