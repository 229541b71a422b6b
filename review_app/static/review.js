// Keyboard shortcuts: every key maps to a visible button or link carrying data-key / id,
// so the shortcut does exactly what a click does (same form, same CSRF token, same version).
// A target's page holds one card per flagged task; the decision keys act on the highlighted
// (focused) card, j / k or a click move the highlight, and the report shows that task's evidence.
(function () {
  "use strict";
  function typing(target) {
    var tag = (target && target.tagName) || "";
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }
  function cards() { return Array.prototype.slice.call(document.querySelectorAll(".task[data-item]")); }
  function focused() { return document.querySelector(".task.focused"); }
  function focus(card) {
    if (!card) { return; }
    cards().forEach(function (c) { c.classList.toggle("focused", c === card); });
    document.querySelectorAll(".evidence-of").forEach(function (e) {
      e.hidden = e.getAttribute("data-item") !== card.getAttribute("data-item");
    });
    var note = document.getElementById("report-task");
    var title = card.querySelector(".task-title");
    if (note && title) { note.textContent = "· evidence of " + title.firstChild.textContent.trim(); }
    // a reload (or a 409 after it) comes back to this task
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", "/items/" + card.getAttribute("data-item"));
    }
    var previous = document.getElementById("nav-previous");
    if (previous) { previous.setAttribute("href", "/previous?current=" + card.getAttribute("data-item")); }
    card.scrollIntoView({block: "nearest"});
  }
  function step(by) {
    var all = cards(), at = all.indexOf(focused());
    if (all.length) { focus(all[(at + by + all.length) % all.length]); }
  }
  document.addEventListener("DOMContentLoaded", function () {
    cards().forEach(function (card) {
      card.addEventListener("click", function () { if (card !== focused()) { focus(card); } });
    });
    if (focused()) { focus(focused()); }
    document.documentElement.setAttribute("data-keys-ready", "1");  // keys now act (tests wait for it)
    window.setTimeout(function () {  // the viewer (viewer.js) asks for the thumbnails; if it never ran, ask here
      document.querySelectorAll(".hanging img[data-src]:not([src])").forEach(function (img) { img.src = img.dataset.src; });
    }, 5000);
  });
  var submitted = false;
  document.addEventListener("submit", function (event) {
    // a second submit while the first is in flight would only meet the server's replay guard
    if (event.target && event.target.classList && event.target.classList.contains("decision-form")) {
      if (submitted) { event.preventDefault(); return; }
      submitted = true;
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    var card = focused();
    var button = card && card.querySelector('form.decision-form button[data-key="' + key + '"]:not([disabled])');
    if (button) { event.preventDefault(); button.click(); return; }
    if (key === "j" || key === "k") { if (card) { event.preventDefault(); step(key === "j" ? 1 : -1); } return; }
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
