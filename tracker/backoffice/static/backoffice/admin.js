// Small helpers for the deal forms: repeatable rows and type-to-filter select boxes.
(function () {
  "use strict";

  function nextIndex(rows) {
    let highest = -1;
    rows.querySelectorAll(".dt-row").forEach(function (row) {
      const match = /\.(\d+)$/.exec(row.id.replace(/-/g, "."));
      if (match) { highest = Math.max(highest, parseInt(match[1], 10)); }
    });
    return highest + 1;
  }

  function addRow(container) {
    const list = container.querySelector(".dt-row-list");
    const template = container.querySelector("template.dt-row-template");
    const index = String(nextIndex(list));
    const html = template.innerHTML.replace(/__prefix__/g, index);
    const holder = document.createElement("div");
    holder.innerHTML = html.trim();
    const row = holder.firstElementChild;
    list.appendChild(row);
    wire(row);
    const first = row.querySelector("input:not([type=search]), select, textarea");
    if (first) { first.focus(); }
  }

  function filterSelect(input) {
    const select = document.getElementById(input.dataset.for);
    if (!select) { return; }
    const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    let visible = [];
    Array.from(select.options).forEach(function (option) {
      if (!option.value) { return; }
      const text = option.text.toLowerCase();
      const show = words.every(function (w) { return text.indexOf(w) !== -1; });
      option.hidden = !show;
      if (show) { visible.push(option); }
    });
    if (visible.length === 1) { select.value = visible[0].value; }
  }

  function wire(root) {
    root.querySelectorAll(".dt-filter").forEach(function (input) {
      input.addEventListener("input", function () { filterSelect(input); });
    });
    root.querySelectorAll(".dt-remove-row").forEach(function (button) {
      button.addEventListener("click", function () {
        const row = button.closest(".dt-row");
        // Clearing instead of removing keeps the numbering simple: blank rows are ignored.
        row.querySelectorAll("input, select, textarea").forEach(function (el) { el.value = ""; });
        row.hidden = true;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".dt-rows").forEach(function (container) {
      const button = container.querySelector(".dt-add-row");
      if (button) { button.addEventListener("click", function () { addRow(container); }); }
    });
    wire(document);
  });
})();
