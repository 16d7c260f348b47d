/**
 * CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), table-driven
 * (MB serial V1.02 §6.2.2 "CRC Generation"). Appended low byte first (§2.5.1.2).
 */
const TABLE = /* @__PURE__ */ (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t[i] = c;
  }
  return t;
})();

export function crc16(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) crc = (crc >>> 8) ^ TABLE[(crc ^ bytes[i]!) & 0xff]!;
  return crc;
}

/** Writes the CRC of bytes[start, end) at bytes[end], bytes[end+1], low byte first. */
export function appendCrc(bytes: Uint8Array, start: number, end: number): void {
  const crc = crc16(bytes, start, end);
  bytes[end] = crc & 0xff;
  bytes[end + 1] = crc >>> 8;
}

/** True when the last two bytes of bytes[start, end) are the CRC of what precedes them. */
export function crcOk(bytes: Uint8Array, start: number, end: number): boolean {
  if (end - start < 3) return false;
  const crc = crc16(bytes, start, end - 2);
  return bytes[end - 2] === (crc & 0xff) && bytes[end - 1] === crc >>> 8;
}
