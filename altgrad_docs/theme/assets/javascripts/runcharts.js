/* altgrad-docs: a run page's interactive history chart. Written for this site (MIT).
 * Every figure.altgrad-runchart[data-src] gets one uPlot chart per panel of its JSON file
 * (altgrad_docs/site/runchart.py writes it): hover shows the values at a step in the legend
 * (a sparse series, e.g. val_loss, shows its last logged value and that value's step), drag
 * zooms (double-click resets), a legend entry hides its line (click, or Tab to it and press
 * Enter or Space), the loss panel switches between log and linear scale, the canvases are
 * labelled for screen readers, and the panels share one x-axis (cursor and zoom move together). uPlot is vendored in assets/vendor/uplot and loaded
 * only on pages that have a chart; nothing comes from a CDN. Until a chart is drawn the static
 * SVG stays visible (also when JavaScript is off or the data cannot be fetched). */
(function () {
  "use strict";

  var SCRIPT = document.currentScript ? document.currentScript.src : "";
  /* at least 3:1 against white and against the dark scheme's background (#1e2129) */
  var COLORS = ["#3a7fc1", "#c85a00", "#0a8f6a"];
  var loading = null;

  function vendor(name) { return new URL("../vendor/uplot/" + name, SCRIPT || document.baseURI).href; }

  function loadUPlot() {
    if (window.uPlot) return Promise.resolve(window.uPlot);
    if (loading) return loading;
    var css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = vendor("uPlot.min.css");
    document.head.appendChild(css);
    loading = new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = vendor("uPlot.iife.min.js");
      s.onload = function () { resolve(window.uPlot); };
      s.onerror = function () { reject(new Error("cannot load " + s.src)); };
      document.head.appendChild(s);
    });
    return loading;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "--";
    var a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : String(+v.toPrecision(5));
  }

  /* Axis ticks: short enough for the axis (5.8e9, not 5.845e+9, which the axis cut). */
  function tick(v) {
    if (v === null || v === undefined) return "";
    var a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(1).replace("e+", "e") : String(+v.toPrecision(4));
  }

  /* Log axes: label the powers of ten only (uPlot ticks every 1..9 of each decade). */
  function decades(u, vals) {
    return vals.map(function (v) {
      var e = Math.log10(v);
      return Math.abs(e - Math.round(e)) < 1e-9 ? tick(v) : "";
    });
  }

  /* A dotted vertical line at the collapse step (loss first NaN/Inf). */
  function collapsePlugin(step) {
    return { hooks: { draw: function (u) {
      if (step === null || step === undefined) return;
      var x = u.valToPos(step, "x", true);
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
      var ctx = u.ctx;
      ctx.save();
      ctx.strokeStyle = "crimson";
      ctx.setLineDash([4, 3]);
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
      ctx.restore();
    } } };
  }

  /* The value of series ``si`` at data index ``di``, or, where it logged nothing there (a
   * sparse series such as val_loss), its last logged value before, with that value's step. */
  function lastValue(u, si, di) {
    if (di === null || di === undefined) return "--";
    var ys = u.data[si];
    for (var i = di; i >= 0; i--) {
      if (ys[i] !== null && ys[i] !== undefined) {
        return i === di ? fmt(ys[i]) : fmt(ys[i]) + " (step " + u.data[0][i] + ")";
      }
    }
    return "--";
  }

  /* Legend entries that the keyboard reaches: Tab to one, Enter or Space shows/hides its line. */
  function keyboardLegend(u) {
    var rows = u.root.querySelectorAll(".u-legend .u-series");
    Array.prototype.forEach.call(rows, function (row, i) {
      if (i === 0) return;  // the step column
      row.setAttribute("tabindex", "0");
      row.setAttribute("role", "switch");
      row.setAttribute("aria-label", "show " + u.series[i].label);
      row.setAttribute("aria-checked", String(u.series[i].show !== false));
      row.addEventListener("keydown", function (e) {
        if (e.key !== "Enter" && e.key !== " ") return;
        e.preventDefault();
        u.setSeries(i, { show: !u.series[i].show });
      });
    });
  }

  function syncLegend(u, i) {
    var row = u.root.querySelectorAll(".u-legend .u-series")[i];
    if (row && i > 0) row.setAttribute("aria-checked", String(u.series[i].show !== false));
  }

  function label(u, panel, log) {
    var names = panel.series.map(function (s) { return s.name; }).join(", ");
    var text = panel.label + (log ? " (log scale)" : "") + " against step " + panel.x[0] + " to " +
               panel.x[panel.x.length - 1] + ": " + names + ". The values are in the legend below (hover) " +
               "and in the CSV download.";
    u.root.setAttribute("role", "group");
    u.root.setAttribute("aria-label", panel.label);
    Array.prototype.forEach.call(u.root.querySelectorAll("canvas"), function (c) {
      c.setAttribute("role", "img");
      c.setAttribute("aria-label", text);
    });
  }

  /* Log axes show only values > 0. */
  function positive(ys) { return ys.map(function (v) { return v !== null && v > 0 ? v : null; }); }

  function draw(fig, data) {
    var holder = document.createElement("div");
    holder.className = "altgrad-runchart-panels";
    fig.insertBefore(holder, fig.firstChild);
    var syncKey = "altgrad-" + (fig.id || "run");
    var charts = [];
    var width = Math.max(260, Math.min(holder.clientWidth || 600, 900));
    function syncX(u, key) {
      if (key !== "x" || u._altgradSyncing) return;
      var min = u.scales.x.min, max = u.scales.x.max;
      charts.forEach(function (other) {
        if (other === u) return;
        other._altgradSyncing = true;
        other.setScale("x", { min: min, max: max });
        other._altgradSyncing = false;
      });
    }
    function chart(panel, box, log) {
      var series = [{ label: "step", value: function (u, v) { return v === null ? "--" : String(v); } }];
      panel.series.forEach(function (s, i) {
        series.push({ label: s.name, stroke: COLORS[i % COLORS.length], width: 1.2, spanGaps: true,
                      points: { show: false },
                      value: function (u, v, si, di) { return v === null ? lastValue(u, si, di) : fmt(v); } });
      });
      var opts = {
        title: panel.label + (log && !panel.log ? " (log)" : ""), width: width, height: 200, series: series,
        scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
        axes: [{ label: "step" }, { size: 64, values: log ? decades : function (u, vals) { return vals.map(tick); } }],
        cursor: { sync: { key: syncKey, setSeries: false } },
        legend: { live: true },
        hooks: { setScale: [syncX], setSeries: [syncLegend] },
        plugins: [collapsePlugin(data.collapse)]
      };
      var columns = [panel.x].concat(panel.series.map(function (s) { return log ? positive(s.y) : s.y; }));
      var u = new window.uPlot(opts, columns, box);
      keyboardLegend(u);
      label(u, panel, log);
      return u;
    }
    data.panels.forEach(function (panel) {
      var box = document.createElement("div");
      box.className = "altgrad-runchart-panel";
      box.setAttribute("data-panel", panel.id);
      holder.appendChild(box);
      if (!panel.x.length || !panel.series.length) {
        box.textContent = panel.label + ": not logged";
        return;
      }
      var log = panel.log || panel.id === "loss";  // loss: log by default, as in the report figures
      var u = chart(panel, box, log);
      charts.push(u);
      if (panel.log) return;
      var toggle = document.createElement("button");
      toggle.type = "button";
      toggle.className = "altgrad-scale-toggle md-button";
      toggle.setAttribute("aria-pressed", String(log));
      toggle.textContent = "log scale";
      toggle.addEventListener("click", function () {
        log = !log;
        toggle.setAttribute("aria-pressed", String(log));
        var at = charts.indexOf(u);
        u.destroy();
        u = chart(panel, box, log);
        charts[at] = u;
      });
      box.insertBefore(toggle, box.firstChild);
    });
    fig.classList.add("altgrad-live");
  }

  function setup(fig) {
    if (fig.dataset.altgradReady) return;
    fig.dataset.altgradReady = "1";
    var url = new URL(fig.getAttribute("data-src"), document.baseURI).href;
    Promise.all([loadUPlot(), fetch(url).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status + " for " + url);
      return r.json();
    })]).then(function (got) { draw(fig, got[1]); }).catch(function (err) {
      console.warn("altgrad: history chart not drawn, the static figure stays:", err);
    });
  }

  function init() {
    document.querySelectorAll("figure.altgrad-runchart[data-src]").forEach(setup);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
