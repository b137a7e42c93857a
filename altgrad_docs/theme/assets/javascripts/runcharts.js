/* altgrad-docs: a run page's interactive history chart. Written for this site (MIT).
 * Every figure.altgrad-runchart[data-src] gets one uPlot chart per panel of its JSON file
 * (altgrad_docs/site/runchart.py writes it): hover shows the values at a step in the legend,
 * drag zooms (double-click resets), a legend click hides a line, and the panels share one
 * x-axis (cursor and zoom move together). uPlot is vendored in assets/vendor/uplot and loaded
 * only on pages that have a chart; nothing comes from a CDN. Until a chart is drawn the static
 * SVG stays visible (also when JavaScript is off or the data cannot be fetched). */
(function () {
  "use strict";

  var SCRIPT = document.currentScript ? document.currentScript.src : "";
  var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c"];
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

  /* Log axes: label the powers of ten only (uPlot ticks every 1..9 of each decade). */
  function decades(u, vals) {
    return vals.map(function (v) {
      var e = Math.log10(v);
      return Math.abs(e - Math.round(e)) < 1e-9 ? fmt(v) : "";
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
    data.panels.forEach(function (panel) {
      var box = document.createElement("div");
      box.className = "altgrad-runchart-panel";
      box.setAttribute("data-panel", panel.id);
      holder.appendChild(box);
      if (!panel.x.length || !panel.series.length) {
        box.textContent = panel.label + ": not logged";
        return;
      }
      var series = [{ label: "step", value: function (u, v) { return v === null ? "--" : String(v); } }];
      panel.series.forEach(function (s, i) {
        series.push({ label: s.name, stroke: COLORS[i % COLORS.length], width: 1.2, spanGaps: true,
                      points: { show: false }, value: function (u, v) { return fmt(v); } });
      });
      var opts = {
        title: panel.label, width: width, height: 200, series: series,
        scales: { x: { time: false }, y: panel.log ? { distr: 3 } : {} },
        axes: [{ label: "step" }, { size: 64, values: panel.log ? decades : function (u, vals) { return vals.map(fmt); } }],
        cursor: { sync: { key: syncKey, setSeries: false } },
        legend: { live: true },
        hooks: { setScale: [syncX] },
        plugins: [collapsePlugin(data.collapse)]
      };
      var columns = [panel.x].concat(panel.series.map(function (s) { return s.y; }));
      charts.push(new window.uPlot(opts, columns, box));
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
