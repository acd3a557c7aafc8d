// Text from reports, devices and the server goes into HTML only through `esc`: a title such as
// `<img src=x onerror=…>` must show as text, never run.
const ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ENTITIES[c]);
}
