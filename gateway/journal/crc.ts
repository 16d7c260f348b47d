/**
 * CRC-32C (Castagnoli) of buf[start, end), slicing-by-8 over a table, in JavaScript.
 *
 * Most journal records are under 256 bytes, where a native call's fixed cost dominates (90 B:
 * table 0.11 us, @node-rs/crc32 0.32 us). Large inputs (replay at start, snapshots) were once
 * handed to @node-rs/crc32, twice as fast per byte (1000 B: 0.94 vs 0.46 us), but its shared
 * library cost ~3-4.5 MB of RSS for as long as the gateway ran; with 10,000 device connections
 * that was most of the margin under the 150 MB budget (bench:connections --storage: 153.4-154.9
 * -> 150.7-151.5 MB). The price, measured with bench:journal: replaying 1,000,000 records with
 * compaction off takes ~50 ms longer (~310 -> ~360 ms); a default start-up is unchanged.
 * The tests still check this table against @node-rs/crc32 (a dev dependency only).
 */
const T = new Int32Array(8 * 256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  T[n] = c;
}
for (let n = 0; n < 256; n++) {
  let c = T[n]!;
  for (let t = 1; t < 8; t++) {
    c = T[c & 0xff]! ^ (c >>> 8);
    T[t * 256 + n] = c;
  }
}

export function crc32cOf(buf: Uint8Array, start: number, end: number): number {
  let c = -1;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = c ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    c =
      T[1792 + (a & 0xff)]! ^
      T[1536 + ((a >>> 8) & 0xff)]! ^
      T[1280 + ((a >>> 16) & 0xff)]! ^
      T[1024 + (a >>> 24)]! ^
      T[768 + buf[i + 4]!]! ^
      T[512 + buf[i + 5]!]! ^
      T[256 + buf[i + 6]!]! ^
      T[buf[i + 7]!]!;
  }
  for (; i < end; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
