// The live feed: snapshot, then every change in order; after a drop it resumes with `since`
// so nothing is lost or repeated. With `{positions: "binary"}` positions updates come as binary
// frames, handed on as `{seq, type: "positions", frame}` (a decoded frame, position_frames.js)
// instead of `{seq, type, body}`.
//
// Each message's parse and handling is a performance measure, "yiwang:positions" for positions
// updates (detail: the seq; "yiwang:parse" is the parse alone) and "yiwang:message" for the
// rest, so the page's JavaScript cost per update can be read from outside (the screen bench
// does). Measures are cleared past MEASURES_MAX so a page left open does not accumulate them.
import { FrameDecoder } from "./position_frames.js";

const MEASURES_MAX = 2000;

export class LiveFeed {
  constructor(path, onMessage, onState = () => {}, { positions = "json" } = {}) {
    this.path = path;
    this.positions = positions;
    this.onMessage = onMessage;
    this.onState = onState;
    this.seq = null;
    this.connect();
  }

  connect() {
    const url = new URL(this.path, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (this.seq) url.searchParams.set("since", this.seq);
    if (this.positions !== "json") url.searchParams.set("positions", this.positions);
    const socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    // Frames refer to names sent earlier on the same connection: a new one starts empty.
    const frames = new FrameDecoder();
    socket.onopen = () => this.onState("live");
    socket.onmessage = (event) => {
      const arrived = performance.now();
      let message;
      if (event.data instanceof ArrayBuffer) {
        const frame = frames.decode(event.data);
        message = { seq: frame.seq, type: "positions", frame };
      } else {
        message = JSON.parse(event.data);
      }
      this.seq = message.seq;
      if (message.type === "positions") performance.measure("yiwang:parse", { start: arrived, detail: message.seq });
      this.onMessage(message, arrived);
      const name = message.type === "positions" ? "yiwang:positions" : "yiwang:message";
      if (performance.getEntriesByType("measure").length > MEASURES_MAX) performance.clearMeasures();
      performance.measure(name, { start: arrived, detail: message.seq });
    };
    socket.onclose = async () => {
      this.onState("reconnecting");
      // A refused or ended session comes back as a closed socket: ask whether we are still
      // signed in before trying again (the login page if not).
      const signedIn = await fetch("/api/me", { credentials: "same-origin" }).then((r) => r.status !== 401, () => true);
      if (!signedIn) {
        location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
        return;
      }
      setTimeout(() => this.connect(), 1000);
    };
  }
}
