/* altgrad-docs: sortable, filterable tables. Written for this site (MIT, no dependencies).
 * Every table inside div.altgrad-table gets clickable headers (numeric-aware sort; NaN and
 * empty cells sort last); a div that also has class altgrad-filterable gets a filter box:
 * a row stays visible when it contains every word typed (case-insensitive). */
(function () {
  "use strict";

  function cellValue(row, index) {
    var cell = row.cells[index];
    var text = cell ? cell.textContent.trim() : "";
    var num = Number(text);
    return { text: text.toLowerCase(), num: text !== "" && !isNaN(num) ? num : null };
  }

  function compare(a, b) {
    if (a.num !== null && b.num !== null) return a.num - b.num;
    if (a.num !== null) return -1;
    if (b.num !== null) return 1;
    if (a.text === "" || a.text === "nan") return (b.text === "" || b.text === "nan") ? 0 : 1;
    if (b.text === "" || b.text === "nan") return -1;
    return a.text < b.text ? -1 : a.text > b.text ? 1 : 0;
  }

  function makeSortable(table) {
    var head = table.tHead;
    var body = table.tBodies[0];
    if (!head || !body) return;
    Array.prototype.forEach.call(head.rows[0].cells, function (th, index) {
      th.classList.add("altgrad-sortable");
      th.setAttribute("tabindex", "0");
      th.setAttribute("title", "Sort by this column");
      function sort() {
        var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
        Array.prototype.forEach.call(head.rows[0].cells, function (c) { c.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir);
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var order = compare(cellValue(r1, index), cellValue(r2, index));
          return dir === "ascending" ? order : -order;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
    });
  }

  function makeFilterable(wrapper, table) {
    var body = table.tBodies[0];
    if (!body) return;
    var input = document.createElement("input");
    input.type = "search";
    input.className = "altgrad-filter";
    input.placeholder = "Filter rows, e.g. E4M3 failed";
    input.setAttribute("aria-label", "Filter table rows");
    var count = document.createElement("span");
    count.className = "altgrad-count";
    function apply() {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      Array.prototype.forEach.call(body.rows, function (row) {
        var text = row.textContent.toLowerCase();
        var keep = words.every(function (w) { return text.indexOf(w) !== -1; });
        row.hidden = !keep;
        if (keep) shown += 1;
      });
      count.textContent = " " + shown + " of " + body.rows.length + " rows";
    }
    input.addEventListener("input", apply);
    table.parentNode.insertBefore(input, table);
    table.parentNode.insertBefore(count, table);
    apply();
  }

  function init() {
    document.querySelectorAll("div.altgrad-table").forEach(function (wrapper) {
      var table = wrapper.querySelector("table");
      if (!table || table.dataset.altgradReady) return;
      table.dataset.altgradReady = "1";
      makeSortable(table);
      if (wrapper.classList.contains("altgrad-filterable")) makeFilterable(wrapper, table);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
