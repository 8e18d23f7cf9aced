// The photo input of a form: say in Chinese how many photos are chosen (the native text of a
// file input follows the browser's language). No inline script: the CSP forbids it.
(function () {
  "use strict";
  document.querySelectorAll("input[type=file][name=photos]").forEach(function (input) {
    var count = document.getElementById("photo-count");
    if (!count) return;
    input.addEventListener("change", function () {
      var n = input.files ? input.files.length : 0;
      count.textContent = n ? "已选择 " + n + " 张照片" : "未选择照片";
    });
  });
})();
