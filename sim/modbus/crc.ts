/**
 * The simulator's own CRC-16/MODBUS, bit by bit as MB serial V1.02 §6.2.2
 * describes it. Deliberately not the gateway's table-driven one: the two
 * sides check each other (DESIGN: the simulator never borrows gateway code).
 */
export function simCrc16(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) {
    crc ^= bytes[i]!;
    for (let bit = 0; bit < 8; bit++) {
      const lsb = crc & 1;
      crc >>>= 1;
      if (lsb) crc ^= 0xa001;
    }
  }
  return crc;
}
