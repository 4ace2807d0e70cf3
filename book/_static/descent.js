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
