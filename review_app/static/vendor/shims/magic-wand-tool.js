import "../magic-wand-tool/magic-wand.min.js";
export default globalThis.MagicWand;
