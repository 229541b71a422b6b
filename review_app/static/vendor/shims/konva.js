// dwv imports "konva" as an ES module; the vendored konva.min.js is UMD and sets globalThis.Konva.
import "../konva/konva.min.js";
export default globalThis.Konva;
