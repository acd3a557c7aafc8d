// Positions frames (dispatch/core/position_frames.py, version 1): a positions update as typed
// arrays viewed in place over the WebSocket's ArrayBuffer, no object per officer. A decoder
// belongs to one connection: it keeps the device names the frames have sent so far.
//
//   const frames = new FrameDecoder();   // one per connection
//   frames.decode(buffer) → {seq, length, names, device: Uint32Array, lon: Int32Array (×1e7),
//     lat: Int32Array (×1e7), fixAt: Uint32Array, receivedAt: Float64Array, acc: Float32Array,
//     cog: Float32Array, status: Uint8Array}   (`names[device[k]]` is row k's device)
export const STATUS_ACC = 1;
export const STATUS_COG = 2;
export const STATUS_RECEIVED = 4;
export const SCALE = 1e7;
const MAGIC = 0x46505759; // "YWPF" read as a little-endian u32
const HEADER_BYTES = 20;

export class FrameDecoder {
  constructor() {
    this.names = [];
    this.text = new TextDecoder();
  }

  decode(buffer) {
    const view = new DataView(buffer);
    if (view.getUint32(0, true) !== MAGIC) throw new Error("not a positions frame");
    const version = view.getUint8(4);
    if (version !== 1) throw new Error(`positions frame version ${version}, this page reads 1`);
    const flags = view.getUint8(5);
    const seqLen = view.getUint16(6, true);
    const length = view.getUint32(8, true);
    const added = view.getUint32(12, true);
    let at = HEADER_BYTES;
    const seq = this.text.decode(new Uint8Array(buffer, at, seqLen));
    at += seqLen;
    if (flags & 1) this.names = [];
    for (let k = 0; k < added; k++) {
      const size = view.getUint16(at, true);
      this.names.push(this.text.decode(new Uint8Array(buffer, at + 2, size)));
      at += 2 + size;
    }
    at += (8 - (at % 8)) % 8;
    const column = (Type) => {
      const values = new Type(buffer, at, length);
      at += length * Type.BYTES_PER_ELEMENT;
      return values;
    };
    const receivedAt = column(Float64Array);
    return {
      seq, length, names: this.names, receivedAt, device: column(Uint32Array), lon: column(Int32Array),
      lat: column(Int32Array), fixAt: column(Uint32Array), acc: column(Float32Array), cog: column(Float32Array),
      status: column(Uint8Array),
    };
  }
}
