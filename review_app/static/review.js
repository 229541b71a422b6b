// Keyboard shortcuts: every key maps to a visible button or link carrying data-key / id,
// so the shortcut does exactly what a click does (same form, same CSRF token, same version).
(function () {
  "use strict";
  function typing(target) {
    var tag = (target && target.tagName) || "";
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }
  var submitted = false;
  document.addEventListener("submit", function (event) {
    // a second submit while the first is in flight would only meet the server's replay guard
    if (event.target && event.target.id === "decision-form") {
      if (submitted) { event.preventDefault(); return; }
      submitted = true;
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    var button = document.querySelector('#decision-form button[data-key="' + key + '"]:not([disabled])');
    if (button) { event.preventDefault(); button.click(); return; }
    if (key === "?") {
      var help = document.getElementById("shortcuts");
      if (help) { event.preventDefault(); help.hidden = !help.hidden; }
      return;
    }
    if (key === "Escape") { var h = document.getElementById("shortcuts"); if (h) { h.hidden = true; } return; }
    if (key === "z") {
      var undo = document.querySelector("#saved-undo button");
      if (undo) { event.preventDefault(); undo.click(); }
      return;
    }
    if (key === "b") {
      var prev = document.getElementById("nav-previous");
      if (prev) { event.preventDefault(); window.location.assign(prev.getAttribute("href")); }
      return;
    }
    if (key === "n") {
      var next = document.getElementById("nav-next");
      if (next) { event.preventDefault(); window.location.assign(next.getAttribute("href")); }
    } else if (key === "q") {
      event.preventDefault(); window.location.assign("/queue");
    }
  });
})();
