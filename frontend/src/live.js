// The live feed: snapshot, then every change in order; after a drop it resumes with `since`
// so nothing is lost or repeated.
export class LiveFeed {
  constructor(path, onMessage, onState = () => {}) {
    this.path = path;
    this.onMessage = onMessage;
    this.onState = onState;
    this.seq = null;
    this.connect();
  }

  connect() {
    const url = new URL(this.path, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (this.seq) url.searchParams.set("since", this.seq);
    const socket = new WebSocket(url);
    socket.onopen = () => this.onState("live");
    socket.onmessage = (event) => {
      const arrived = performance.now();
      const message = JSON.parse(event.data);
      this.seq = message.seq;
      this.onMessage(message, arrived);
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
