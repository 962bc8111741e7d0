/* Report charts (Chart.js from static/vendor): every <canvas data-report-chart="key"> is drawn from
   the "key" entry of the {% json_script %} "report-charts". A chart says its kind (bar, line,
   doughnut), its unit (count, fen, percent, days), its labels and datasets; colours are CSS custom
   properties (the status colours) or the palette. Amounts arrive in fen and show as yuan. */
(function () {
  "use strict";

  const PALETTE = ["#2f6fde", "#15803d", "#b45309", "#7c3aed", "#0e7490", "#be185d", "#4d7c0f", "#475569"];

  function cssVar(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function colour(value, index) {
    const fallback = PALETTE[index % PALETTE.length];
    if (!value) return fallback;
    return value.indexOf("--") === 0 ? cssVar(value, fallback) : value;
  }

  function withAlpha(hex, alpha) {
    const m = /^#([0-9a-f]{6})$/i.exec(hex);
    if (!m) return hex;
    const n = parseInt(m[1], 16);
    return "rgba(" + ((n >> 16) & 255) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  function formatter(unit, lang) {
    return function (value) {
      if (value === null || value === undefined) return "—";
      const n = Number(value);
      if (unit === "fen") {
        return "¥" + (n / 100).toLocaleString(lang, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
      }
      if (unit === "percent") return n.toLocaleString(lang, { maximumFractionDigits: 2 }) + "%";
      return n.toLocaleString(lang, { maximumFractionDigits: 1 });
    };
  }

  function axisFormatter(unit, lang) {
    if (unit !== "fen") return formatter(unit, lang);
    return function (value) {
      return "¥" + (Number(value) / 100).toLocaleString(lang, { maximumFractionDigits: 0 });
    };
  }

  function draw(Chart, canvas, spec, lang) {
    const doughnut = spec.kind === "doughnut";
    const format = formatter(spec.unit, lang);
    const datasets = spec.datasets.map(function (ds, i) {
      if (doughnut) {
        return {
          label: ds.label,
          data: ds.data,
          backgroundColor: (ds.colours || []).map(colour),
          borderColor: "#fff",
          borderWidth: 2,
        };
      }
      const c = colour(ds.colour, i);
      const line = ds.type === "line";
      return {
        type: ds.type || undefined,
        label: ds.label,
        data: ds.data,
        backgroundColor: line ? c : withAlpha(c, 0.8),
        borderColor: c,
        borderRadius: line ? 0 : 3,
        maxBarThickness: 40,
        pointRadius: line ? 3 : undefined,
        spanGaps: true,
      };
    });
    const options = {
      maintainAspectRatio: false,
      plugins: {
        legend: { display: doughnut ? false : datasets.length > 1, position: "bottom", labels: { boxWidth: 12 } },
        tooltip: {
          callbacks: {
            label: function (c) {
              return " " + (c.dataset.label ? c.dataset.label + ": " : (doughnut ? c.label + ": " : "")) + format(c.raw);
            },
          },
        },
      },
    };
    if (doughnut) {
      options.cutout = "62%";
    } else {
      options.scales = {
        x: { stacked: !!spec.stacked, grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true } },
        y: {
          stacked: !!spec.stacked,
          beginAtZero: true,
          grid: { color: "#eef2f7" },
          ticks: { precision: spec.unit === "count" ? 0 : undefined, callback: axisFormatter(spec.unit, lang) },
        },
      };
    }
    return new Chart(canvas, { type: doughnut ? "doughnut" : spec.kind, data: { labels: spec.labels, datasets: datasets }, options: options });
  }

  function start() {
    const source = document.getElementById("report-charts");
    if (!source || !window.Chart) return;
    const charts = JSON.parse(source.textContent);
    const Chart = window.Chart;
    const lang = document.documentElement.lang || undefined;
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = "#475467";
    if (window.matchMedia("(prefers-reduced-motion: reduce)").matches) Chart.defaults.animation = false;
    document.querySelectorAll("canvas[data-report-chart]").forEach(function (canvas) {
      const spec = charts[canvas.dataset.reportChart];
      if (spec && spec.labels.length) draw(Chart, canvas, spec, lang);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
