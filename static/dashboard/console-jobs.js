// The console's jobs page: "select every job on this page" and a count of the selection.
// The page works without it (each job has its own checkbox); no external assets.
(function () {
  "use strict";
  var form = document.getElementById("jobs-actions");
  if (!form) return;
  var all = document.getElementById("select-page");
  var scope = document.getElementById("scope-all");
  var count = document.getElementById("selected-count");
  function boxes() { return form.querySelectorAll('input[name="ids"]'); }
  function update() {
    var n = 0;
    boxes().forEach(function (b) { if (b.checked) n += 1; });
    if (count) count.textContent = scope && scope.checked ? "all that match the filter" : n + " selected";
  }
  if (all) all.addEventListener("change", function () {
    boxes().forEach(function (b) { b.checked = all.checked; });
    update();
  });
  form.addEventListener("change", update);
  update();
})();
