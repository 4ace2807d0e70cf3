// Stands in for the theme's FontAwesome (1.5 MB of script for the fourteen icons the theme's
// buttons use). Same contract: each <i class="fa-... fa-NAME"> becomes an inline <svg> with the
// same classes and attributes, drawn here in a few lines each.
(function () {
  var D = {
    "angle-left": '<path d="M15 5l-7 7 7 7"/>',
    "angle-right": '<path d="M9 5l7 7-7 7"/>',
    "arrow-up": '<path d="M12 20V5M5 11l7-7 7 7"/>',
    "bars": '<path d="M4 6h16M4 12h16M4 18h16"/>',
    "circle-half-stroke": '<circle cx="12" cy="12" r="9"/><path d="M12 3a9 9 0 0 1 0 18z" fill="currentColor"/>',
    "download": '<path d="M12 4v11M7 10l5 5 5-5M5 20h14"/>',
    "expand": '<path d="M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5"/>',
    "file": '<path d="M6 3h8l4 4v14H6zM14 3v4h4"/>',
    "file-pdf": '<path d="M6 3h8l4 4v14H6zM14 3v4h4M9 13h6M9 17h6"/>',
    "list": '<path d="M9 6h11M9 12h11M9 18h11M4 6h.01M4 12h.01M4 18h.01"/>',
    "magnifying-glass": '<circle cx="11" cy="11" r="7"/><path d="M16.5 16.5L21 21"/>',
    "moon": '<path d="M20 14.5A8 8 0 1 1 9.5 4a6.5 6.5 0 0 0 10.5 10.5z"/>',
    "outdent": '<path d="M4 6h16M11 12h9M4 18h16M8 9l-3 3 3 3"/>',
    "sun": '<circle cx="12" cy="12" r="4"/><path d="M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4"/>'
  };
  var NS = "http://www.w3.org/2000/svg";
  function swap(root) {
    var icons = (root || document).querySelectorAll("i[class*='fa-'], span[class*='fa-']");
    for (var n = 0; n < icons.length; n++) {
      var i = icons[n], name = null;
      for (var c = 0; c < i.classList.length; c++) {
        var cls = i.classList[c].replace(/^fa-/, "");
        if (D[cls]) name = cls;
      }
      if (!name) continue;
      var svg = document.createElementNS(NS, "svg");
      for (var a = 0; a < i.attributes.length; a++) svg.setAttribute(i.attributes[a].name, i.attributes[a].value);
      // FontAwesome's font classes go (the theme's CSS would fetch its 150 KB font for them);
      // the theme's own classes (theme-switch, ...) and the size class stay.
      var kept = (i.getAttribute("class") || "").split(/\s+/).filter(function (c) {
        return c && (c === "fa-lg" || !/^fa-|^fa$|^fas$|^far$/.test(c));
      });
      svg.setAttribute("class", kept.concat(["svg-inline--fa", "fa-" + name]).join(" "));
      svg.setAttribute("viewBox", "0 0 24 24");
      svg.setAttribute("fill", "none");
      svg.setAttribute("stroke", "currentColor");
      svg.setAttribute("stroke-width", "2");
      svg.setAttribute("stroke-linecap", "round");
      svg.setAttribute("stroke-linejoin", "round");
      svg.setAttribute("aria-hidden", "true");
      svg.setAttribute("focusable", "false");
      svg.innerHTML = D[name];
      i.parentNode.replaceChild(svg, i);
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { swap(); });
  else swap();
})();
