/* altgrad-docs: click a report figure to see it enlarged. Written for this site (MIT).
 * Every a.altgrad-lightbox (templates/partials/artifacts.md) opens its SVG in GLightbox, vendored in
 * assets/vendor/glightbox and loaded only on pages that have such a figure; nothing comes from
 * a CDN. Without JavaScript the link simply opens the SVG. Escape or the close button closes
 * it; the caption shows below the enlarged figure. */
(function () {
  "use strict";

  var SCRIPT = document.currentScript ? document.currentScript.src : "";

  function vendor(name) { return new URL("../vendor/glightbox/" + name, SCRIPT || document.baseURI).href; }

  function init() {
    if (!document.querySelector("a.altgrad-lightbox")) return;
    var css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = vendor("glightbox.min.css");
    document.head.appendChild(css);
    var s = document.createElement("script");
    s.src = vendor("glightbox.min.js");
    s.onload = function () {
      window.GLightbox({ selector: "a.altgrad-lightbox", touchNavigation: true, loop: false, zoomable: true,
                         descPosition: "bottom" });
    };
    s.onerror = function () { console.warn("altgrad: cannot load " + s.src + "; figures open as files"); };
    document.head.appendChild(s);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
