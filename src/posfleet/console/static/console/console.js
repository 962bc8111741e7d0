/* posfleet console behaviour. No inline handlers (the CSP forbids them): everything is delegated here. */
(function () {
  "use strict";

  const MODAL_ID = "action-modal";
  const MODAL_CONTENT_ID = "action-modal-content";

  function modal() {
    const element = document.getElementById(MODAL_ID);
    return element && window.bootstrap ? window.bootstrap.Modal.getOrCreateInstance(element) : null;
  }

  // ------------------------------------------------------------------ action dialog (Bootstrap modal)
  let loadingMarkup = "";

  document.addEventListener("DOMContentLoaded", function () {
    const content = document.getElementById(MODAL_CONTENT_ID);
    if (content) loadingMarkup = content.innerHTML;
    const element = document.getElementById(MODAL_ID);
    if (element) {
      element.addEventListener("hidden.bs.modal", function () {
        if (content) content.innerHTML = loadingMarkup;
      });
      element.addEventListener("shown.bs.modal", focusFirstField);
    }
    updateSelection();
    updateStatusSummary();
  });

  function targetsModal(event) {
    const target = event.detail && event.detail.target;
    return target && target.id === MODAL_CONTENT_ID;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (!targetsModal(event)) return;
    const element = document.getElementById(MODAL_ID);
    if (element && !element.classList.contains("show")) {
      document.getElementById(MODAL_CONTENT_ID).innerHTML = loadingMarkup;
      modal().show();
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (targetsModal(event)) {
      const element = document.getElementById(MODAL_ID);
      if (element && !element.classList.contains("show")) modal().show();
      focusFirstField();
    }
    if (event.detail.target && event.detail.target.id === "terminal-table") {
      updateSelection();
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    if (!targetsModal(event)) return;
    const element = document.getElementById(MODAL_ID);
    const message = (element && element.dataset.error) || "Error";
    const body = document.createElement("div");
    body.className = "modal-body";
    const alert = document.createElement("div");
    alert.className = "alert alert-danger mb-0";
    alert.textContent = message;
    body.appendChild(alert);
    const content = document.getElementById(MODAL_CONTENT_ID);
    content.replaceChildren(body);
  });

  function focusFirstField() {
    const content = document.getElementById(MODAL_CONTENT_ID);
    if (!content) return;
    const field = content.querySelector(".is-invalid, select, textarea, input:not([type=hidden])");
    if (field) field.focus();
  }

  // After a command ran, the page behind the dialog shows the new state.
  document.addEventListener("terminals-changed", function () {
    if (!window.htmx) return;
    const here = window.location.pathname + window.location.search;
    if (document.getElementById("terminal-table")) {
      window.htmx.ajax("GET", here, { target: "#terminal-table", swap: "innerHTML" });
    }
    if (document.getElementById("terminal-body")) {
      window.htmx.ajax("GET", here, { target: "#terminal-body", swap: "innerHTML" });
    }
  });

  // ------------------------------------------------------------------ selection and bulk toolbar
  // The selection lives on the server (ADR 0029): ticks on any page, pasted SNs, every match of a
  // filter. A tick posts to it and the toolbar comes back with the count; the bulk actions act on it.
  function rowChecks() {
    return Array.from(document.querySelectorAll("#terminal-table .row-check"));
  }

  function toolbar() {
    return document.getElementById("bulk-toolbar");
  }

  // Ticks are sent one after the other (the count shown is the last answer); while one is on its way
  // the bulk actions wait, so they never act on a selection that is about to change.
  let pending = 0;
  let queue = Promise.resolve();

  function holdBulkActions() {
    const bar = toolbar();
    if (!bar) return;
    bar.querySelectorAll(".bulk-action, .bulk-actions [data-action]").forEach(function (button) {
      button.disabled = true;
    });
  }

  function postSelection(op, sns) {
    const bar = toolbar();
    if (!bar || !window.htmx || sns.length === 0) return;
    pending += 1;
    holdBulkActions();
    queue = queue
      .then(function () {
        return window.htmx.ajax("POST", bar.dataset.selectionUrl, {
          source: bar,
          target: "#bulk-toolbar",
          swap: "innerHTML",
          values: { op: op, sns: sns.join("\n") },
        });
      })
      .catch(function () { /* htmx:responseError says so */ })
      .then(function () {
        pending -= 1;
      });
  }

  function updateSelection() {
    const bar = toolbar();
    if (!bar) return;
    const checks = rowChecks();
    const selected = checks.filter(function (c) { return c.checked; });
    checks.forEach(function (c) {
      const row = c.closest("tr");
      if (row) row.classList.toggle("selected", c.checked);
    });
    const all = document.querySelector("#terminal-table .select-all");
    if (all) {
      all.checked = checks.length > 0 && selected.length === checks.length;
      all.indeterminate = selected.length > 0 && selected.length < checks.length;
    }
    const state = bar.querySelector("[data-selected]");
    bar.classList.toggle("has-selection", Boolean(state && state.dataset.selected !== "0"));
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    const target = event.detail.target;
    if (target && target.id === "bulk-toolbar") {
      if (pending > 1) holdBulkActions(); // more ticks on their way
      updateSelection();
    }
  });

  // Pasted SNs, every match, a cleared selection: the rows' ticks follow.
  document.addEventListener("selection-changed", function () {
    if (!window.htmx || !document.getElementById("terminal-table")) return;
    const here = window.location.pathname + window.location.search;
    window.htmx.ajax("GET", here, { target: "#terminal-table", swap: "innerHTML" });
  });

  document.addEventListener("change", function (event) {
    const element = event.target;
    if (element.matches("#terminal-table .select-all")) {
      const checks = rowChecks();
      checks.forEach(function (c) { c.checked = element.checked; });
      updateSelection();
      postSelection(element.checked ? "add" : "remove", checks.map(function (c) { return c.value; }));
    } else if (element.matches("#terminal-table .row-check")) {
      updateSelection();
      postSelection(element.checked ? "add" : "remove", [element.value]);
    } else if (element.matches(".status-filter input[type=checkbox]")) {
      updateStatusSummary();
    }
  });

  document.addEventListener("click", function (event) {
    const copy = event.target.closest("[data-copy-target]");
    if (copy) copyFrom(copy);
  });

  function updateStatusSummary() {
    const summary = document.querySelector(".status-filter-summary");
    if (!summary) return;
    const n = document.querySelectorAll(".status-filter input[type=checkbox]:checked").length;
    // the number of statuses ticked, in the words the page wrote for it ("2 statuses selected")
    summary.textContent = (n && summary.dataset["n" + n]) || summary.dataset.all;
  }

  // ------------------------------------------------------------------ document previews
  // Chromium's PDF viewer takes the focus once it has opened (window.focus(), as in a tab of its own),
  // a moment after its frame loaded: what the reviewer typed into the note from then on went into the
  // PDF, and the decision was recorded without it. The first time a preview (iframe[data-preview])
  // takes the focus, unless Tab moved it there, the focus goes back where it was, once the switch is
  // over (a focus() in the blur handler is ignored). The page cannot see a click inside the frame:
  // where the viewer does not take the focus, a first click into a preview from a field comes back.
  const focusedPreviews = new WeakSet();
  let leaving = null; // the element the focus is leaving, until it lands somewhere in this page
  let tabbing = false;

  document.addEventListener("keydown", function (event) {
    tabbing = event.key === "Tab";
  });
  document.addEventListener("focusin", function () {
    leaving = null;
    tabbing = false;
  });
  document.addEventListener("focusout", function (event) {
    leaving = event.target;
  });

  window.addEventListener("blur", function () {
    const frame = document.activeElement;
    if (!frame || !frame.matches("iframe[data-preview]") || focusedPreviews.has(frame)) return;
    focusedPreviews.add(frame);
    const back = leaving;
    if (!back || tabbing || !back.isConnected) return;
    window.setTimeout(function () {
      if (document.activeElement === frame) back.focus();
    }, 0);
  });

  // ------------------------------------------------------------------ copy to clipboard
  function copyFrom(button) {
    const source = document.querySelector(button.dataset.copyTarget);
    if (!source) return;
    let text;
    if ("value" in source && source.tagName === "INPUT") {
      text = source.value;
    } else if (source.tagName === "OL" || source.tagName === "UL") {
      text = Array.from(source.querySelectorAll("li")).map(function (li) { return li.textContent.trim(); }).join("\n");
    } else {
      text = source.textContent.trim();
    }
    const done = function () {
      const original = button.innerHTML;
      button.textContent = button.dataset.copied || "✓";
      button.classList.add("active");
      window.setTimeout(function () { button.innerHTML = original; button.classList.remove("active"); }, 1600);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(source, text, done); });
    } else {
      fallbackCopy(source, text, done);
    }
  }

  function fallbackCopy(source, text, done) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "position-absolute opacity-0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); done(); } finally { area.remove(); }
  }
})();
