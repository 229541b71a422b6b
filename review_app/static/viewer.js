// Full-resolution viewer on dwv (vendored): window/level by drag or preset, zoom/pan, invert,
// magnifier. The thumbnails (hanging protocol) choose which image the viewer shows.
import {App, AppOptions, ViewConfig, ToolConfig, WindowLevel} from "/static/vendor/dwv/dwv.min.js";

const root = document.getElementById("viewer");
if (root) {
  const state = root.dataset;
  const app = new App();
  const options = new AppOptions({"*": [new ViewConfig("viewer-layers")]});
  options.tools = {WindowLevel: new ToolConfig(), ZoomAndPan: new ToolConfig()};
  app.init(options);
  let dataId = null;
  let inverted = false;
  const status = document.getElementById("viewer-status");

  function controller() {
    if (dataId === null) { return null; }
    const layers = app.getViewLayersByDataId(dataId);
    return layers.length ? layers[0].getViewController() : null;
  }
  function report() {
    const vc = controller();
    if (!vc) { return; }
    const wl = vc.getWindowLevel();
    state.center = Math.round(wl.center);
    state.width = Math.round(wl.width);
    if (status) { status.textContent = "window " + state.center + " / " + state.width + (inverted ? " · inverted" : ""); }
  }
  function setTool(name) {
    app.setTool(name);
    state.tool = name;
    document.querySelectorAll("[data-tool]").forEach(function (b) {
      b.classList.toggle("active", b.dataset.tool === name);
    });
  }
  function show(url, label) {
    state.ready = "0";
    const started = performance.now();
    app.reset();
    dataId = null;
    app.loadURLs([url]);
    state.url = url;
    const caption = document.getElementById("viewer-caption");
    if (caption) { caption.textContent = label || ""; }
    state.started = String(started);
  }
  // the thumbnails are requested once the viewer has drawn its image: on a cold server their
  // decoding would otherwise compete with the one image the annotator is waiting for
  let thumbsAsked = false;
  function loadThumbs() {
    if (thumbsAsked) { return; }
    thumbsAsked = true;
    document.querySelectorAll(".hanging img[data-src]").forEach(function (img) { img.src = img.dataset.src; });
  }
  app.addEventListener("error", loadThumbs);
  app.addEventListener("abort", loadThumbs);
  window.setTimeout(loadThumbs, 3000);  // a slow or failed viewer never hides the exam
  app.addEventListener("load", function (event) {
    dataId = event.dataid;
    setTool(state.tool || "WindowLevel");
    if (inverted) { controller().setColourMap("invPlain"); }
    report();
    state.loadMs = String(Math.round(performance.now() - Number(state.started || 0)));
    state.ready = "1";
    loadThumbs();
  });
  app.addEventListener("wlchange", report);
  window.addEventListener("resize", function () { app.fitToContainer(); });

  document.querySelectorAll("[data-tool]").forEach(function (b) {
    b.addEventListener("click", function () { setTool(b.dataset.tool); });
  });
  document.querySelectorAll("[data-preset]").forEach(function (b) {
    b.addEventListener("click", function () {
      const vc = controller();
      if (vc) { vc.setWindowLevel(new WindowLevel(Number(b.dataset.center), Number(b.dataset.width))); report(); }
    });
  });
  const invert = document.getElementById("viewer-invert");
  if (invert) {
    invert.addEventListener("click", function () {
      const vc = controller();
      if (!vc) { return; }
      inverted = !inverted;
      vc.setColourMap(inverted ? "invPlain" : "plain");
      invert.classList.toggle("active", inverted);
      report();
    });
  }
  const reset = document.getElementById("viewer-reset");
  if (reset) { reset.addEventListener("click", function () { app.resetZoomPan(); }); }

  // magnifier: a ×3 loupe under the pointer, drawn from the rendered layer canvas
  const loupe = document.getElementById("viewer-loupe");
  const magnify = document.getElementById("viewer-magnifier");
  let loupeOn = false;
  if (magnify && loupe) {
    magnify.addEventListener("click", function () {
      loupeOn = !loupeOn;
      magnify.classList.toggle("active", loupeOn);
      loupe.hidden = !loupeOn;
    });
    root.addEventListener("mousemove", function (event) {
      if (!loupeOn) { return; }
      const canvas = root.querySelector("#viewer-layers canvas");
      if (!canvas) { return; }
      const box = canvas.getBoundingClientRect();
      const sx = (event.clientX - box.left) * canvas.width / box.width;
      const sy = (event.clientY - box.top) * canvas.height / box.height;
      const size = loupe.width / 3;
      const ctx = loupe.getContext("2d");
      ctx.imageSmoothingEnabled = false;
      ctx.fillStyle = "#000";
      ctx.fillRect(0, 0, loupe.width, loupe.height);
      ctx.drawImage(canvas, sx - size / 2, sy - size / 2, size, size, 0, 0, loupe.width, loupe.height);
      const host = root.getBoundingClientRect();
      loupe.style.left = (event.clientX - host.left + 16) + "px";
      loupe.style.top = (event.clientY - host.top + 16) + "px";
    });
  }

  document.querySelectorAll("[data-view-url]").forEach(function (thumb) {
    thumb.addEventListener("click", function () {
      document.querySelectorAll("[data-view-url]").forEach(function (t) { t.classList.remove("shown"); });
      thumb.classList.add("shown");
      show(thumb.dataset.viewUrl, thumb.dataset.viewLabel);
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    const tag = (event.target && event.target.tagName) || "";
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") { return; }
    if (event.key === "w") { setTool("WindowLevel"); } else if (event.key === "p") { setTool("ZoomAndPan"); }
    else if (event.key === "i" && invert) { invert.click(); } else if (event.key === "m" && magnify) { magnify.click(); }
  });
  const first = document.querySelector("[data-view-url].target") || document.querySelector("[data-view-url]");
  if (first) { first.classList.add("shown"); show(first.dataset.viewUrl, first.dataset.viewLabel); } else { loadThumbs(); }
}
