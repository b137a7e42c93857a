/* altgrad-docs: sortable, filterable, scrollable tables. Written for this site (MIT, no dependencies).
 * Every table inside div.altgrad-table gets clickable headers (numeric-aware sort; NaN and
 * empty cells sort last); a div that also has class altgrad-filterable gets a filter box:
 * a row stays visible when it contains every word typed (case-insensitive).
 * Every table of the article that is wider than its place says so: the box that scrolls it
 * gets a hint above it (class altgrad-scrolls) and takes the keyboard focus (tabindex 0,
 * role region, a label: arrow keys scroll it); a long table (more than LONG rows) scrolls
 * in a box of its own height, so its header row and first column stay in view (CSS). */
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

  var LONG = 20;

  function scrolls(e, axis) {
    var o = getComputedStyle(e)[axis === "x" ? "overflowX" : "overflowY"];
    var over = axis === "x" ? e.scrollWidth > e.clientWidth + 1 : e.scrollHeight > e.clientHeight + 1;
    return (o === "auto" || o === "scroll") && over;
  }

  /* The nearest box (the table itself or above, inside the article) that scrolls it. */
  function scroller(table) {
    for (var e = table; e && e.tagName !== "ARTICLE"; e = e.parentElement) {
      if (scrolls(e, "x") || scrolls(e, "y")) return e;
    }
    return null;
  }

  /* A table's name: its caption (site tables), else the heading it stands under. */
  function tableName(table) {
    var wrap = table.closest(".altgrad-table");
    var cap = wrap && wrap.querySelector(".altgrad-caption strong");
    if (cap) return cap.textContent.trim().replace(/\.$/, "");
    for (var e = table; e && e.tagName !== "ARTICLE"; e = e.parentElement) {
      for (var s = e.previousElementSibling; s; s = s.previousElementSibling) {
        if (/^H[1-6]$/.test(s.tagName)) return "Table under \u201c" + s.textContent.replace("\u00b6", "").trim() + "\u201d";
        if (s.tagName === "SUMMARY") return "Table: " + s.textContent.trim();
      }
    }
    return "Table";
  }

  function markScroll(table) {
    var box = scroller(table);
    var old = table._altgradBox;
    if (old && old !== box) {
      old.classList.remove("altgrad-scrolls");
      old.removeAttribute("tabindex");
      old.removeAttribute("role");
      old.removeAttribute("aria-label");
      if (old._altgradHint) old._altgradHint.hidden = true;
    }
    table._altgradBox = box;
    if (!box) return;
    box.classList.add("altgrad-scrolls");
    box.tabIndex = 0;
    box.setAttribute("role", "region");
    var sideways = scrolls(box, "x");
    box.setAttribute("aria-label", tableName(table) + (sideways ? " (scrolls sideways)" : " (scrolls)"));
    if (!sideways) {
      if (box._altgradHint) box._altgradHint.hidden = true;
      return;
    }
    if (!box._altgradHint) {
      var hint = document.createElement("p");
      hint.className = "altgrad-scroll-hint";
      hint.setAttribute("aria-hidden", "true");
      hint.textContent = "\u2194 Wider than the page: scroll the table sideways (or click it and use the arrow keys).";
      box.parentNode.insertBefore(hint, box);
      box._altgradHint = hint;
    }
    box._altgradHint.hidden = false;
  }

  function markAll() {
    document.querySelectorAll("article table").forEach(function (table) {
      var wrap = table.parentElement && table.parentElement.closest(".md-typeset__scrollwrap");
      if (wrap && table.tBodies[0] && table.tBodies[0].rows.length > LONG) wrap.classList.add("altgrad-long");
      if (!table.closest("details:not([open])")) markScroll(table);
    });
  }

  var pending = null;
  function later() {
    if (pending) return;
    pending = window.requestAnimationFrame(function () { pending = null; markAll(); });
  }

  function init() {
    window.addEventListener("load", markAll);
    window.addEventListener("resize", later);
    document.addEventListener("toggle", later, true);  /* a table inside <details> opened */
    later();
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
