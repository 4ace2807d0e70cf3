// The ipywidgets HTML manager typesets widget labels with MathJax 2's
// `MathJax.Hub.Queue`; the site runs MathJax 3, which has no Hub. Every object
// assigned to window.MathJax (Sphinx's config, then MathJax's own global) gets a
// Hub whose Queue forwards to MathJax 3's typesetPromise once that exists.
(function () {
  var current = window.MathJax;
  var hub = {
    Queue: function (job) {
      var element = job && job[2];
      if (current && typeof current.typesetPromise === "function") {
        current.typesetPromise(element ? [element] : undefined).catch(function () {});
      }
    },
  };
  function withHub(value) {
    if (value && typeof value === "object" && !value.Hub) value.Hub = hub;
    return value;
  }
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get: function () { return current; },
    set: function (value) { current = withHub(value); },
  });
  withHub(current);
})();

// RequireJS resolves the widget manager's icon fonts against its baseUrl, which
// defaults to the page's folder. Point it at the copy the site serves; Sphinx
// writes the relative path to the site root into <html data-content_root>.
(function () {
  var root = document.documentElement.getAttribute("data-content_root") || "./";
  window.require = { baseUrl: root + "_static/widgets/" };
})();

// Slider figures (descent.sliders, static mode): the page holds the default frame as a plain
// <img> and range inputs, hidden until this script wires them. A move shows the frame file for
// the sliders' values (row-major index over their product); the figure's alt texts
// (frames.json) are fetched on the first interaction, never with the page. The neighbouring
// frames are fetched ahead so the next move is instant.
(function () {
  function wire(figure) {
    var controls = figure.querySelector(".descent-controls");
    var img = figure.querySelector("img.descent-frame");
    if (!controls || !img) return;
    var base = figure.getAttribute("data-frames");
    var format = figure.getAttribute("data-format") || "webp";
    var shape = figure.getAttribute("data-shape").split(",").map(Number);
    var inputs = Array.prototype.slice.call(controls.querySelectorAll("input[type=range]"));
    var labels = inputs.map(function (input) { return JSON.parse(input.getAttribute("data-values")); });
    var alts = null, pending = null, wanted = -1, fetched = {};
    function loadAlts() {
      if (!pending) {
        pending = fetch(base + "frames.json")
          .then(function (r) { return r.json(); })
          .then(function (meta) { alts = meta.alts; })
          .catch(function () { alts = null; });
      }
      return pending;
    }
    function url(index) { return base + index + "." + format; }
    function indexOf(values) {
      return values.reduce(function (flat, v, k) { return flat * shape[k] + v; }, 0);
    }
    function prefetch(values) {
      values.forEach(function (v, k) {
        [-1, 1].forEach(function (d) {
          if (v + d < 0 || v + d >= shape[k]) return;
          var next = values.slice(); next[k] = v + d;
          var i = indexOf(next);
          if (!fetched[i]) { fetched[i] = new Image(); fetched[i].src = url(i); }
        });
      });
    }
    function show() {
      var values = inputs.map(function (input) { return Number(input.value); });
      inputs.forEach(function (input, k) {
        var text = labels[k][values[k]];
        input.setAttribute("aria-valuetext", text);
        var out = input.parentNode.querySelector("output");
        if (out) out.textContent = text;
      });
      var index = indexOf(values);
      wanted = index;
      var frame = fetched[index] || new Image();
      fetched[index] = frame;
      var ready = new Promise(function (resolve) {
        if (frame.complete && frame.naturalWidth) resolve();
        else { frame.addEventListener("load", resolve, { once: true }); frame.addEventListener("error", resolve, { once: true }); }
      });
      if (!frame.src) frame.src = url(index);
      Promise.all([ready, loadAlts()]).then(function () {
        if (wanted !== index) return;          // the reader has moved on
        img.src = frame.src;
        if (alts) img.alt = alts[index];
        figure.setAttribute("data-shown", String(index));
        prefetch(values);
      });
    }
    inputs.forEach(function (input) {
      input.addEventListener("input", show);
      ["pointerdown", "focus", "keydown", "touchstart"].forEach(function (type) {
        input.addEventListener(type, loadAlts, { once: true, passive: true });
      });
    });
    controls.hidden = false;
    figure.classList.add("descent-live");
  }
  function wireAll() {
    var figures = document.querySelectorAll(".descent-slider");
    for (var i = 0; i < figures.length; i++) wire(figures[i]);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wireAll);
  else wireAll();
})();

// Search results as plain text: page text carries maths as TeX (\(\eta\)), which MathJax
// typesets on the page but not in a snippet. Delimiters go, common symbols become Unicode.
(function () {
  var SYMBOLS = {
    alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", varepsilon: "ε", eta: "η",
    theta: "θ", lambda: "λ", mu: "μ", nu: "ν", rho: "ρ", sigma: "σ", tau: "τ", phi: "φ",
    omega: "ω", Delta: "Δ", Sigma: "Σ", nabla: "∇", cdot: "·", times: "×", odot: "⊙",
    le: "≤", leq: "≤", ge: "≥", geq: "≥", approx: "≈", infty: "∞", sqrt: "√", sum: "Σ",
    to: "→", leftarrow: "←", gets: "←", ldots: "…", dots: "…", quad: " ", qquad: " ", lVert: "‖",
    rVert: "‖", Vert: "‖", mid: "|", in: "∈", partial: "∂", top: "ᵀ", min: "min", max: "max"
  };
  function plain(text) {
    if (!/[\\$]/.test(text)) return text;
    return text
      .replace(/\\[()[\]]|\$\$?/g, "")
      .replace(/\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}/g, "($1)/($2)")
      .replace(/\\(?:mathrm|mathbf|mathcal|text|operatorname|hat|bar|tilde|boldsymbol|left|right|big|Big)\b/g, "")
      .replace(/\\([A-Za-z]+)/g, function (m, name) { return SYMBOLS[name] !== undefined ? SYMBOLS[name] : name; })
      .replace(/\\[,;:! ]/g, " ")
      .replace(/[{}]/g, "");
  }
  function clean(root) {
    var walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    var node;
    while ((node = walker.nextNode())) {
      var text = plain(node.nodeValue);
      if (text !== node.nodeValue) node.nodeValue = text;
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var results = document.getElementById("search-results");
    if (!results) return;
    clean(results);
    new MutationObserver(function () { clean(results); }).observe(results, { childList: true, subtree: true, characterData: true });
  });
})();

// The side table of contents follows the reader: the current section is the last one whose
// heading has passed a line a third of the way down the window (under the sticky header).
// Computed from the headings' positions after every scroll, so it holds however the page's
// height changes after load (figures, maths) and however fast the reader scrolls; the theme's
// own observer only reacts to headings crossing a band and missed sections on some chapters.
(function () {
  function setup() {
    var nav = document.getElementById("pst-page-toc-nav");
    if (!nav) return;
    var links = Array.prototype.slice.call(nav.querySelectorAll("a[href^='#']"));
    var entries = links.map(function (a) {
      var target = document.getElementById(decodeURIComponent(a.hash.slice(1)));
      var heading = target && (target.querySelector("h1,h2,h3,h4,h5,h6") || target);
      return heading ? { link: a, heading: heading } : null;
    }).filter(Boolean);
    if (!entries.length) return;
    var items = Array.prototype.slice.call(nav.querySelectorAll(".toc-entry"));
    var header = document.getElementById("pst-header");
    var current = null, timer = null;
    function mark(link) {
      if (link === current) return;
      current = link;
      links.forEach(function (a) {
        if (a === link) { a.classList.add("active"); a.setAttribute("aria-current", "true"); }
        else { a.classList.remove("active"); a.removeAttribute("aria-current"); }
      });
      items.forEach(function (li) { li.classList.toggle("active", !!link && li.contains(link)); });
    }
    function update() {
      var top = header ? header.getBoundingClientRect().height : 0;
      var line = top + (window.innerHeight - top) / 3;
      var chosen = null;
      for (var i = 0; i < entries.length; i++) {
        if (entries[i].heading.getBoundingClientRect().top <= line) chosen = entries[i].link;
        else break;
      }
      // At the very bottom the last headings can never reach the line: the last one wins.
      if (window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 2) {
        chosen = entries[entries.length - 1].link;
      }
      current = undefined;   // the theme may have moved the mark meanwhile: set it again
      mark(chosen);
    }
    var queued = false;
    window.addEventListener("scroll", function () {
      if (!queued) { queued = true; requestAnimationFrame(function () { queued = false; update(); }); }
      clearTimeout(timer);
      timer = setTimeout(update, 80);   // after the theme's observer, when scrolling stops
    }, { passive: true });
    window.addEventListener("resize", function () { clearTimeout(timer); timer = setTimeout(update, 80); });
    setTimeout(update, 0);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();

// Accessibility touches the theme leaves out: a control's accessible name contains its visible
// text (the search button reads "Search Ctrl+K" but was named "Search"), and a box that scrolls
// sideways (a wide table, long code, a long equation) can be reached and scrolled by keyboard.
(function () {
  function names() {
    // Such a control is named by its own text (which may change: "Show/Hide code cell source").
    var controls = document.querySelectorAll("button[aria-label], a[aria-label], summary[aria-label]");
    for (var i = 0; i < controls.length; i++) {
      var el = controls[i], text = (el.innerText || "").replace(/\s+/g, " ").trim();
      if (text && el.getAttribute("aria-label").toLowerCase().indexOf(text.toLowerCase()) < 0) {
        el.removeAttribute("aria-label");
      }
    }
  }
  function scrollers() {
    var boxes = document.querySelectorAll(
      "article pre, article table, article div.math, article mjx-container[display='true'], article .cell_output .output");
    for (var i = 0; i < boxes.length; i++) {
      var box = boxes[i];
      if (box.scrollWidth > box.clientWidth + 1 && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        if (!box.getAttribute("role")) box.setAttribute("role", "region");
        if (!box.getAttribute("aria-label")) box.setAttribute("aria-label", box.tagName === "TABLE" ? "table, scrolls sideways" : "scrolls sideways");
      }
    }
  }
  // Docutils writes a bibliography as a <div role="list"> of role="doc-biblioentry" entries,
  // which a list may not hold (axe: critical); the container keeps no list role.
  function bibliography() {
    var lists = document.querySelectorAll(".citation-list[role='list']");
    for (var i = 0; i < lists.length; i++) lists[i].removeAttribute("role");
  }
  function all() { names(); scrollers(); bibliography(); }
  document.addEventListener("DOMContentLoaded", function () {
    all();
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) MathJax.startup.promise.then(scrollers);
    window.addEventListener("load", all);
    var t = null;
    window.addEventListener("resize", function () { clearTimeout(t); t = setTimeout(scrollers, 200); });
  });
})();
