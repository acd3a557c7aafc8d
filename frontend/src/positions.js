// The officers' live positions, as the live feed delivers them: one entry per device, kept in
// columns so the map can hand them to deck.gl as binary attributes without an object per
// officer, and a short trail per device for the tracks drawn behind moving officers.
//
//   store.applyRows(rows)       rows of the snapshot or of a `positions` message:
//                               [device, lon, lat, fix_at, acc_m, cog_deg, received_at]
//   store.applyColumns(frame)   a decoded positions frame (position_frames.js): the same
//                               update read straight from its typed arrays
//   store.size, store.devices   how many devices, and their keys in column order
//   store.get(dev)              {dev, officer, lon, lat, fix_at, heard_at, heading, acc_m} or undefined
//   store.trail(dev)            [[lon, lat, fix_at], …] of the last `trailSeconds`
//   store.columns()             {length, positions: Float32Array(2n), heardAt: Float64Array(n)}
import { SCALE, STATUS_ACC, STATUS_COG, STATUS_RECEIVED } from "./position_frames.js";

export class PositionStore {
  constructor({ trailSeconds = 300, capacity = 1024 } = {}) {
    this.trailSeconds = trailSeconds;
    this.devices = [];
    this.index = new Map();
    this.trails = new Map();
    this.grow(capacity);
  }

  get size() {
    return this.devices.length;
  }

  grow(capacity) {
    const old = this.cols;
    this.capacity = capacity;
    this.cols = {
      positions: new Float32Array(capacity * 2),
      lon: new Float64Array(capacity),
      lat: new Float64Array(capacity),
      fixAt: new Float64Array(capacity),
      heardAt: new Float64Array(capacity),
      heading: new Float32Array(capacity).fill(NaN),
      acc: new Float32Array(capacity).fill(NaN),
    };
    if (old) for (const [name, column] of Object.entries(old)) this.cols[name].set(column);
  }

  slot(dev) {
    let n = this.index.get(dev);
    if (n === undefined) {
      n = this.devices.length;
      if (n === this.capacity) this.grow(this.capacity * 2);
      this.devices.push(dev);
      this.index.set(dev, n);
      this.cols.lon[n] = NaN;
    }
    return n;
  }

  applyRows(rows) {
    for (const [dev, lon, lat, fixAt, acc, cog, receivedAt] of rows) this.move(dev, lon, lat, fixAt, acc, cog, receivedAt);
  }

  applyColumns({ length, names, device, lon, lat, fixAt, acc, cog, receivedAt, status }) {
    for (let k = 0; k < length; k++) {
      const s = status[k];
      this.move(
        names[device[k]], lon[k] / SCALE, lat[k] / SCALE, fixAt[k], s & STATUS_ACC ? acc[k] : null,
        s & STATUS_COG ? cog[k] : null, s & STATUS_RECEIVED ? receivedAt[k] : null,
      );
    }
  }

  move(dev, lon, lat, fixAt, acc, cog, receivedAt) {
    const n = this.slot(dev);
    const c = this.cols;
    if (cog != null) {
      c.heading[n] = cog; // the device's own course, where it reports one
    } else if (!Number.isNaN(c.lon[n]) && (c.lon[n] !== lon || c.lat[n] !== lat)) {
      const east = (lon - c.lon[n]) * Math.cos((lat * Math.PI) / 180);
      c.heading[n] = ((Math.atan2(east, lat - c.lat[n]) * 180) / Math.PI + 360) % 360;
    }
    c.lon[n] = lon;
    c.lat[n] = lat;
    c.positions[2 * n] = lon;
    c.positions[2 * n + 1] = lat;
    c.fixAt[n] = fixAt;
    c.heardAt[n] = receivedAt ?? fixAt;
    c.acc[n] = acc ?? NaN;
    let trail = this.trails.get(dev);
    if (!trail) this.trails.set(dev, (trail = []));
    trail.push([lon, lat, fixAt]);
    while (trail.length && trail[0][2] < fixAt - this.trailSeconds) trail.shift();
  }

  get(dev) {
    const n = this.index.get(dev);
    if (n === undefined) return undefined;
    const c = this.cols;
    const heading = c.heading[n];
    const acc = c.acc[n];
    return {
      dev, officer: dev.split("/")[0], lon: c.lon[n], lat: c.lat[n], fix_at: c.fixAt[n], heard_at: c.heardAt[n],
      heading: Number.isNaN(heading) ? null : heading, acc_m: Number.isNaN(acc) ? null : acc,
    };
  }

  trail(dev) {
    return this.trails.get(dev) || [];
  }

  columns() {
    const n = this.devices.length;
    return { length: n, positions: this.cols.positions.subarray(0, 2 * n), heardAt: this.cols.heardAt.subarray(0, n) };
  }
}
