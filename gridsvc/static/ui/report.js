// 上报事件: "使用我的位置" fills the point from the phone's position (WGS84). No inline script.
(function () {
  "use strict";
  var button = document.getElementById("use-my-position");
  if (!button) return;
  var where = document.getElementById("where");
  button.addEventListener("click", function () {
    if (!navigator.geolocation) { where.textContent = "此设备不能定位，请在网格地图上点选位置。"; return; }
    where.textContent = "正在定位……";
    navigator.geolocation.getCurrentPosition(function (pos) {
      var lon = pos.coords.longitude.toFixed(6), lat = pos.coords.latitude.toFixed(6);
      document.getElementById("lon").value = lon;
      document.getElementById("lat").value = lat;
      document.getElementById("datum").value = "wgs84";
      where.textContent = "位置（我的位置，精度约 " + Math.round(pos.coords.accuracy) + " 米）：经度 " + lon + "，纬度 " + lat;
    }, function (err) {
      where.textContent = "定位失败（" + (err.code === 1 ? "未允许定位" : "无法获取位置") + "），请在网格地图上点选位置。";
    }, { enableHighAccuracy: true, timeout: 15000 });
  });
})();
