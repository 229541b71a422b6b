import "../jszip/jszip.min.js";
export default globalThis.JSZip;
