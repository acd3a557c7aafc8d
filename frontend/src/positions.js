// The officers' live positions, as the live feed delivers them: one entry per device, kept in
// columns so the map can hand them to deck.gl as binary attributes without an object per
// officer, and a short trail per device for the tracks drawn behind moving officers. An
// update allocates nothing per device: a city of 10,000 officers at 1 Hz leaves the garbage
// collector idle.
//
//   store.applyRows(rows)       rows of the snapshot or of a `positions` message:
//                               [device, lon, lat, fix_at, acc_m, cog_deg, received_at]
//   store.applyColumns(frame)   a decoded positions frame (position_frames.js): the same
//                               update read straight from its typed arrays
//   store.size, store.devices   how many devices, and their keys in column order
//   store.officers              the officer of each device, in the same order
//   store.get(dev)              {dev, officer, lon, lat, fix_at, heard_at, heading, acc_m} or undefined
//   store.trailLength(n)        points in the trail of the device at column n (its position last)
//   store.copyTrail(n, out, at) writes them into `out` (Float32Array) as lon, lat from `at` on
//   store.columns()             {length, positions: Float32Array(2n), heardAt: Float64Array(n)}
import { SCALE, STATUS_ACC, STATUS_COG, STATUS_RECEIVED } from "./position_frames.js";

// A trail keeps at most this many points per device, one every trailSeconds / TRAIL_POINTS:
// at 1 Hz a 5-minute trail is a point every ~5 s, which a street-zoom trail cannot tell apart
// from every fix, in a fixed 1 KB per device.
export const TRAIL_POINTS = 64;

export const officerOf = (dev) => dev.split("/")[0];

export class PositionStore {
  constructor({ trailSeconds = 300, capacity = 1024 } = {}) {
    this.trailSeconds = trailSeconds;
    this.trailStep = trailSeconds / TRAIL_POINTS;
    this.devices = [];
    this.officers = [];
    this.index = new Map();
    // Column of each name a positions frame refers to, for the names array it came with (one
    // per connection): a frame's rows then find their device without a string lookup.
    this.frameNames = null;
    this.frameSlots = new Int32Array(0);
    this.grow(Math.max(1, capacity));
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
      // Each device's ring of kept trail points: its slice of TRAIL_POINTS, where the oldest is
      // and how many are kept.
      trailLonLat: new Float32Array(capacity * TRAIL_POINTS * 2),
      trailAt: new Float64Array(capacity * TRAIL_POINTS),
      trailFirst: new Uint16Array(capacity),
      trailKept: new Uint16Array(capacity),
    };
    if (old) for (const [name, column] of Object.entries(old)) this.cols[name].set(column);
  }

  slot(dev) {
    let n = this.index.get(dev);
    if (n === undefined) {
      n = this.devices.length;
      if (n === this.capacity) this.grow(this.capacity * 2);
      this.devices.push(dev);
      this.officers.push(officerOf(dev));
      this.index.set(dev, n);
      this.cols.lon[n] = NaN;
    }
    return n;
  }

  applyRows(rows) {
    for (const [dev, lon, lat, fixAt, acc, cog, receivedAt] of rows) {
      this.move(this.slot(dev), lon, lat, fixAt, acc ?? NaN, cog ?? NaN, receivedAt ?? fixAt);
    }
  }

  applyColumns({ length, names, device, lon, lat, fixAt, acc, cog, receivedAt, status }) {
    if (names !== this.frameNames || names.length < this.frameSlots.length) {
      this.frameNames = names;
      this.frameSlots = new Int32Array(0);
    }
    if (this.frameSlots.length < names.length) {
      const slots = new Int32Array(names.length).fill(-1);
      slots.set(this.frameSlots);
      this.frameSlots = slots;
    }
    const slots = this.frameSlots;
    for (let k = 0; k < length; k++) {
      const name = device[k];
      let n = slots[name];
      if (n < 0) n = slots[name] = this.slot(names[name]);
      const s = status[k];
      this.move(
        n, lon[k] / SCALE, lat[k] / SCALE, fixAt[k], s & STATUS_ACC ? acc[k] : NaN,
        s & STATUS_COG ? cog[k] : NaN, s & STATUS_RECEIVED ? receivedAt[k] : fixAt[k],
      );
    }
  }

  // A new position of the device at column n; NaN for an accuracy or course it did not report.
  move(n, lon, lat, fixAt, acc, cog, heardAt) {
    const c = this.cols;
    if (!Number.isNaN(cog)) {
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
    c.heardAt[n] = heardAt;
    c.acc[n] = acc;
    this.keepTrailPoint(n, lon, lat, fixAt);
  }

  keepTrailPoint(n, lon, lat, fixAt) {
    const c = this.cols;
    const kept = c.trailKept[n];
    const base = n * TRAIL_POINTS;
    if (kept) {
      const last = base + ((c.trailFirst[n] + kept - 1) % TRAIL_POINTS);
      if (fixAt - c.trailAt[last] < this.trailStep) return;
    }
    const at = base + ((c.trailFirst[n] + kept) % TRAIL_POINTS);
    c.trailLonLat[2 * at] = lon;
    c.trailLonLat[2 * at + 1] = lat;
    c.trailAt[at] = fixAt;
    if (kept < TRAIL_POINTS) c.trailKept[n] = kept + 1;
    else c.trailFirst[n] = (c.trailFirst[n] + 1) % TRAIL_POINTS;
  }

  // The kept points of the last trailSeconds before the device's newest fix, oldest first:
  // [first ring index, how many].
  trailWindow(n) {
    const c = this.cols;
    const kept = c.trailKept[n];
    const since = c.fixAt[n] - this.trailSeconds;
    let skip = 0;
    while (skip < kept && c.trailAt[n * TRAIL_POINTS + ((c.trailFirst[n] + skip) % TRAIL_POINTS)] < since) skip += 1;
    return [c.trailFirst[n] + skip, kept - skip];
  }

  // Whether the device's position now must be added after its kept points to end the trail
  // where the dot is (it is not kept when it came too soon after the last kept point).
  needsTip(n, first, count) {
    if (!count) return true;
    const c = this.cols;
    const last = n * TRAIL_POINTS + ((first + count - 1) % TRAIL_POINTS);
    return c.trailLonLat[2 * last] !== Math.fround(c.lon[n]) || c.trailLonLat[2 * last + 1] !== Math.fround(c.lat[n]);
  }

  trailLength(n) {
    const [first, count] = this.trailWindow(n);
    return count + (this.needsTip(n, first, count) ? 1 : 0);
  }

  copyTrail(n, out, at) {
    const c = this.cols;
    const [first, count] = this.trailWindow(n);
    let k = at;
    for (let j = 0; j < count; j++) {
      const p = n * TRAIL_POINTS + ((first + j) % TRAIL_POINTS);
      out[2 * k] = c.trailLonLat[2 * p];
      out[2 * k + 1] = c.trailLonLat[2 * p + 1];
      k += 1;
    }
    if (this.needsTip(n, first, count)) {
      out[2 * k] = c.lon[n];
      out[2 * k + 1] = c.lat[n];
      k += 1;
    }
    return k - at;
  }

  get(dev) {
    const n = this.index.get(dev);
    if (n === undefined) return undefined;
    const c = this.cols;
    const heading = c.heading[n];
    const acc = c.acc[n];
    return {
      dev, officer: this.officers[n], lon: c.lon[n], lat: c.lat[n], fix_at: c.fixAt[n], heard_at: c.heardAt[n],
      heading: Number.isNaN(heading) ? null : heading, acc_m: Number.isNaN(acc) ? null : acc,
    };
  }

  columns() {
    const n = this.devices.length;
    return { length: n, positions: this.cols.positions.subarray(0, 2 * n), heardAt: this.cols.heardAt.subarray(0, n) };
  }
}
