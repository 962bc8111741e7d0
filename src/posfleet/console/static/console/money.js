/* Money pages: the takings-and-fees chart, the plan comparison chart (Chart.js from static/vendor),
   and a reload after a deposit was released in the dialog. Amounts arrive as integer fen with their
   formatted text ({% json_script %}); the axes show yuan, the tooltips the server's own text. */
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

  const PALETTE = ["#2f6fde", "#15803d", "#b45309", "#7c3aed", "#0e7490", "#be185d", "#4d7c0f", "#475569"];

  function yuanTick(lang) {
    return function (value) {
      return "¥" + (Number(value) / 100).toLocaleString(lang, { maximumFractionDigits: 0 });
    };
  }

  function setDefaults(Chart) {
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = "#475467";
    if (window.matchMedia("(prefers-reduced-motion: reduce)").matches) Chart.defaults.animation = false;
  }

  function drawTakings(Chart, data, lang) {
    const canvas = document.querySelector("canvas[data-chart=takings]");
    if (!canvas) return;
    const accent = cssVar("--pf-accent", "#2f6fde");
    const warn = cssVar("--pf-status-suspended", "#b45309");
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          {
            type: "bar", label: canvas.dataset.takings || "Takings", data: data.takings, yAxisID: "y",
            backgroundColor: withAlpha(accent, 0.75), hoverBackgroundColor: accent, borderRadius: 3, maxBarThickness: 34,
            texts: data.takings_text,
          },
          {
            type: "line", label: canvas.dataset.fees || "Fees", data: data.fees, yAxisID: "y1",
            borderColor: warn, backgroundColor: warn, pointRadius: 3, cubicInterpolationMode: "monotone", texts: data.fees_text,
          },
        ],
      },
      options: {
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: { callbacks: { label: function (c) { return " " + c.dataset.label + ": " + c.dataset.texts[c.dataIndex]; } } },
        },
        scales: {
          x: { grid: { display: false } },
          y: { beginAtZero: true, grid: { color: "#eef2f7" }, ticks: { callback: yuanTick(lang) } },
          y1: { beginAtZero: true, position: "right", grid: { display: false }, ticks: { callback: yuanTick(lang), color: warn } },
        },
      },
    });
  }

  function drawComparison(Chart, data, lang) {
    const canvas = document.querySelector("canvas[data-chart=comparison]");
    if (!canvas) return;
    const datasets = data.plans.map(function (plan, i) {
      const colour = plan.current ? cssVar("--pf-navy", "#0f2744") : PALETTE[i % PALETTE.length];
      return {
        label: plan.name + (plan.current ? " ★" : "") + (plan.complete ? "" : " *"),
        data: plan.values,
        texts: plan.texts,
        backgroundColor: withAlpha(colour, plan.current ? 0.95 : 0.7),
        hoverBackgroundColor: colour,
        borderColor: colour,
        borderWidth: plan.competitor ? 1 : 0,
        borderDash: plan.competitor ? [4, 2] : [],
        borderRadius: 3,
        maxBarThickness: 26,
      };
    });
    new Chart(canvas, {
      type: "bar",
      data: { labels: data.labels, datasets: datasets },
      options: {
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: { callbacks: { label: function (c) { return " " + c.dataset.label + ": " + c.dataset.texts[c.dataIndex]; } } },
        },
        scales: {
          x: { grid: { display: false } },
          y: { beginAtZero: true, grid: { color: "#eef2f7" }, ticks: { callback: yuanTick(lang) } },
        },
      },
    });
  }

  function draw() {
    if (!window.Chart) return;
    const lang = document.documentElement.lang || undefined;
    setDefaults(window.Chart);
    const money = document.getElementById("money-data");
    if (money) drawTakings(window.Chart, JSON.parse(money.textContent), lang);
    const comparison = document.getElementById("comparison-data");
    if (comparison) drawComparison(window.Chart, JSON.parse(comparison.textContent), lang);
  }

  // A deposit released in the dialog: show the new balances once the dialog closes.
  let changed = false;
  document.addEventListener("money-changed", function () { changed = true; });
  document.addEventListener("DOMContentLoaded", function () {
    const modal = document.getElementById("action-modal");
    if (modal) modal.addEventListener("hidden.bs.modal", function () { if (changed) window.location.reload(); });
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
