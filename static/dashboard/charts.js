// Draconic charts: draws the rollup series embedded in the page (#chart-data) with the
// vendored uPlot. No request of its own; resizes with the window.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var charts = [];
  var specs = [
    {id: "chart-counts", series: [["completed", "#16a34a"], ["failed", "#dc2626"]], bars: true},
    {id: "chart-wait", series: [["wait_p50", "#2563eb"], ["wait_p95", "#9333ea"]]},
    {id: "chart-run", series: [["run_p50", "#b45309"], ["run_p95", "#be123c"]]},
  ];

  function width(el) { return Math.max(260, el.clientWidth || 600); }

  function draw(spec) {
    var el = document.getElementById(spec.id);
    var series = [{}];
    var columns = [data.x];
    spec.series.forEach(function (s) {
      series.push({
        label: s[0].replace("_", " "), stroke: s[1], width: 2,
        fill: spec.bars ? s[1] + "33" : undefined,
        paths: spec.bars ? uPlot.paths.bars({size: [0.8, 40]}) : undefined,
        spanGaps: false, points: {show: data.x.length < 90},
      });
      columns.push(data[s[0]]);
    });
    var chart = new uPlot({
      width: width(el), height: 220, series: series,
      scales: {x: {time: true}},
      axes: [{stroke: "#1f2933"}, {stroke: "#1f2933", size: 60}],
      legend: {live: true},
    }, columns, el);
    el.dataset.points = String(data.x.length);
    charts.push([chart, el]);
  }

  specs.forEach(draw);
  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(function () {
      charts.forEach(function (c) { c[0].setSize({width: width(c[1]), height: 220}); });
    }, 100);
  });
  document.body.dataset.charts = "drawn";
})();
