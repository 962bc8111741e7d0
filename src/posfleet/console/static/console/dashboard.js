/* Dashboard charts (Chart.js from static/vendor). Data comes from {% json_script %}, colours from CSS. */
(function () {
  "use strict";

  function cssVar(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function withAlpha(hex, alpha) {
    const m = /^#([0-9a-f]{6})$/i.exec(hex);
    if (!m) return hex;
    const n = parseInt(m[1], 16);
    return "rgba(" + ((n >> 16) & 255) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  function draw() {
    const source = document.getElementById("dashboard-data");
    if (!source || !window.Chart) return;
    const data = JSON.parse(source.textContent);
    const Chart = window.Chart;
    const lang = document.documentElement.lang || undefined;
    const number = function (value) { return Number(value).toLocaleString(lang); };
    const accent = cssVar("--pf-accent", "#2f6fde");
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = "#475467";
    Chart.defaults.animation = window.matchMedia("(prefers-reduced-motion: reduce)").matches ? false : Chart.defaults.animation;

    const statusCanvas = document.querySelector("canvas[data-chart=status]");
    if (statusCanvas && data.status.values.length) {
      const colours = data.status.codes.map(function (code) { return cssVar("--pf-status-" + code, "#64748b"); });
      new Chart(statusCanvas, {
        type: "doughnut",
        data: {
          labels: data.status.labels,
          datasets: [{ data: data.status.values, backgroundColor: colours, borderColor: "#fff", borderWidth: 2 }],
        },
        options: {
          maintainAspectRatio: false,
          cutout: "62%",
          plugins: {
            legend: { display: false },
            tooltip: { callbacks: { label: function (c) { return " " + c.label + ": " + number(c.raw); } } },
          },
          onHover: function (event, elements) {
            event.native.target.style.cursor = elements.length ? "pointer" : "default";
          },
          onClick: function (_event, elements) {
            if (!elements.length) return;
            const code = data.status.codes[elements[0].index];
            window.location.href = data.status.url + "?status=" + encodeURIComponent(code);
          },
        },
      });
    }

    const modelCanvas = document.querySelector("canvas[data-chart=model]");
    if (modelCanvas && data.model.values.length) {
      const horizontal = data.model.labels.length > 6;
      new Chart(modelCanvas, {
        type: "bar",
        data: {
          labels: data.model.labels,
          datasets: [{ data: data.model.values, backgroundColor: withAlpha(accent, 0.8), borderRadius: 4, maxBarThickness: 36 }],
        },
        options: {
          maintainAspectRatio: false,
          indexAxis: horizontal ? "y" : "x",
          plugins: {
            legend: { display: false },
            tooltip: { callbacks: { label: function (c) { return " " + number(c.raw); } } },
          },
          scales: {
            x: { beginAtZero: true, grid: { display: horizontal, color: "#eef2f7" }, ticks: { precision: 0 } },
            y: { beginAtZero: true, grid: { display: !horizontal, color: "#eef2f7" }, ticks: { precision: 0 } },
          },
        },
      });
    }

    const activityCanvas = document.querySelector("canvas[data-chart=activity]");
    if (activityCanvas) {
      new Chart(activityCanvas, {
        type: "bar",
        data: {
          labels: data.activity.labels,
          datasets: [{ data: data.activity.values, backgroundColor: withAlpha(accent, 0.75), hoverBackgroundColor: accent, borderRadius: 3, maxBarThickness: 18 }],
        },
        options: {
          maintainAspectRatio: false,
          plugins: {
            legend: { display: false },
            tooltip: { callbacks: { label: function (c) { return " " + number(c.raw); } } },
          },
          scales: {
            x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } },
            y: { beginAtZero: true, grid: { color: "#eef2f7" }, ticks: { precision: 0 } },
          },
        },
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
