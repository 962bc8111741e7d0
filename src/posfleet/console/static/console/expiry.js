/* The expiry calendar's weekly bar chart (Chart.js from static/vendor; data from {% json_script %}). */
(function () {
  "use strict";

  function draw() {
    const source = document.getElementById("expiry-data");
    const canvas = document.querySelector("canvas[data-chart=expiry]");
    if (!source || !canvas || !window.Chart) return;
    const data = JSON.parse(source.textContent);
    const lang = document.documentElement.lang || undefined;
    const accent = getComputedStyle(document.documentElement).getPropertyValue("--pf-accent").trim() || "#2f6fde";
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    new window.Chart(canvas, {
      type: "bar",
      data: { labels: data.labels, datasets: [{ label: data.label, data: data.values, backgroundColor: accent, borderRadius: 4 }] },
      options: {
        maintainAspectRatio: false,
        animation: window.matchMedia("(prefers-reduced-motion: reduce)").matches ? false : undefined,
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: function (c) { return " " + Number(c.raw).toLocaleString(lang); } } },
        },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
