/**
 * Declarative Modbus decoding (DESIGN "Drivers": profiles are data, one core
 * transformer applies them). A device profile lists point specs; this module
 * turns a register block into named values. Also every interpretation of a
 * few registers, for `linli modbus read` (Telegraf #8855, ThingsBoard gw #614).
 *
 * Word order notation: the letters name the bytes of a 32-bit value from most
 * significant (A) to least (D), in the order they appear on the wire.
 *   ABCD  big-endian, high word first       (register n = AB, n+1 = CD)
 *   CDAB  low word first, bytes big-endian  (register n = CD, n+1 = AB) -- MFS-8 pressure
 *   BADC  high word first, bytes swapped
 *   DCBA  fully little-endian
 */

export type WordOrder = "ABCD" | "CDAB" | "BADC" | "DCBA";
export const WORD_ORDERS: readonly WordOrder[] = ["ABCD", "CDAB", "BADC", "DCBA"];

export type PointType = "u16" | "i16" | "u32" | "i32" | "f32" | "bitfield" | "enum";

export interface PointSpec {
  name: string;
  /** Register address (0-based protocol address). */
  address: number;
  type: PointType;
  /** 32-bit types only. Default "ABCD". */
  wordOrder?: WordOrder;
  /** Engineering value = raw × scale + offset (numeric types). */
  scale?: number;
  offset?: number;
  unit?: string;
  /** bitfield: flag name -> bit number (0 = least significant). */
  bits?: Readonly<Record<string, number>>;
  /** enum: raw value -> name. */
  values?: Readonly<Record<number, string>>;
}

export type PointValue = number | string | Readonly<Record<string, boolean>>;

export interface RegisterBlock {
  /** Address of words[0]. */
  address: number;
  words: ArrayLike<number>;
}

export class PointSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PointSpecError";
  }
}

export function registerCount(type: PointType): number {
  return type === "u32" || type === "i32" || type === "f32" ? 2 : 1;
}

/** Validates specs once (at profile load), so decoding never meets a malformed spec. */
export function validatePointSpecs(specs: readonly PointSpec[]): void {
  const names = new Set<string>();
  for (const s of specs) {
    if (names.has(s.name)) throw new PointSpecError(`point ${s.name}: duplicate name`);
    names.add(s.name);
    if (!Number.isInteger(s.address) || s.address < 0 || s.address > 0xffff)
      throw new PointSpecError(`point ${s.name}: address ${s.address} out of range`);
    if (s.wordOrder && registerCount(s.type) !== 2)
      throw new PointSpecError(`point ${s.name}: wordOrder only applies to 32-bit types`);
    if (s.type === "bitfield") {
      if (!s.bits) throw new PointSpecError(`point ${s.name}: bitfield needs bits`);
      for (const [flag, bit] of Object.entries(s.bits))
        if (!Number.isInteger(bit) || bit < 0 || bit > 15)
          throw new PointSpecError(`point ${s.name}: bit ${flag}=${bit} not in 0..15`);
    }
    if (s.type === "enum" && !s.values) throw new PointSpecError(`point ${s.name}: enum needs values`);
    if ((s.type === "bitfield" || s.type === "enum") && (s.scale !== undefined || s.offset !== undefined))
      throw new PointSpecError(`point ${s.name}: scale/offset do not apply to ${s.type}`);
  }
}

/** The smallest register ranges covering the specs (the poller coalesces them further). */
export function pointRanges(specs: readonly PointSpec[]): { address: number; count: number }[] {
  return specs.map((s) => ({ address: s.address, count: registerCount(s.type) }));
}

const scratch = new DataView(new ArrayBuffer(4));

/** Places two registers' bytes into `scratch` as A B C D according to the word order. */
function load32(hi: number, lo: number, order: WordOrder): void {
  // Wire bytes: w0 w1 (register n) w2 w3 (register n+1).
  const w = [hi >>> 8, hi & 0xff, lo >>> 8, lo & 0xff] as const;
  // Position on the wire of A, B, C, D for each notation.
  const pos = POSITIONS[order];
  for (let i = 0; i < 4; i++) scratch.setUint8(i, w[pos[i]!]!);
}

const POSITIONS: Readonly<Record<WordOrder, readonly number[]>> = {
  ABCD: [0, 1, 2, 3],
  CDAB: [2, 3, 0, 1],
  BADC: [1, 0, 3, 2],
  DCBA: [3, 2, 1, 0],
};

/** Rounds away binary noise from scaling (21.500000000000004 -> 21.5). */
function tidy(x: number): number {
  return Number.isFinite(x) ? Number.parseFloat(x.toPrecision(12)) : x;
}

function word(block: RegisterBlock, address: number, name: string): number {
  const i = address - block.address;
  if (i < 0 || i >= block.words.length)
    throw new PointSpecError(`point ${name}: register ${address} not in the block read`);
  return block.words[i]! & 0xffff;
}

/** Decodes one point from a register block. */
export function decodePoint(spec: PointSpec, block: RegisterBlock): PointValue {
  const w0 = word(block, spec.address, spec.name);
  let raw: number;
  switch (spec.type) {
    case "u16":
      raw = w0;
      break;
    case "i16":
      raw = w0 >= 0x8000 ? w0 - 0x10000 : w0;
      break;
    case "bitfield": {
      const flags: Record<string, boolean> = {};
      for (const [flag, bit] of Object.entries(spec.bits ?? {})) flags[flag] = ((w0 >>> bit) & 1) === 1;
      return flags;
    }
    case "enum":
      return spec.values?.[w0] ?? `unknown(${w0})`;
    default: {
      const w1 = word(block, spec.address + 1, spec.name);
      load32(w0, w1, spec.wordOrder ?? "ABCD");
      raw =
        spec.type === "u32"
          ? scratch.getUint32(0)
          : spec.type === "i32"
            ? scratch.getInt32(0)
            : scratch.getFloat32(0);
      if (spec.type === "f32" && spec.scale === undefined && spec.offset === undefined)
        return Number.parseFloat(raw.toPrecision(7)); // float32 carries about 7 significant digits
    }
  }
  if (spec.scale === undefined && spec.offset === undefined) return raw;
  return tidy(raw * (spec.scale ?? 1) + (spec.offset ?? 0));
}

/** A status register as data: its flags by name and bit number (0 = least significant). */
export interface BitfieldPoint<F extends string> extends PointSpec {
  type: "bitfield";
  bits: Readonly<Record<F, number>>;
}

/** A coded register as data: raw value -> name. */
export interface EnumPoint extends PointSpec {
  type: "enum";
  values: Readonly<Record<number, string>>;
}

/**
 * The flags of a status word a sample kept, decoded by the register's
 * bitfield point exactly as a poll would: a profile's rules name flags
 * (`pumpFault`), never masks and shifts.
 */
export function flagsOf<F extends string>(spec: BitfieldPoint<F>, word: number): Record<F, boolean> {
  return decodePoint(spec, { address: spec.address, words: [word] }) as Record<F, boolean>;
}

/** The name an enum point gives a raw value, or null for a value its table does not know. */
export function enumName(spec: EnumPoint, raw: number): string | null {
  return Object.hasOwn(spec.values, raw) ? (spec.values[raw] as string) : null;
}

/** The core transformer: applies every spec to the register blocks a poll read (one or several). */
export function decodePointsFromBlocks(
  specs: readonly PointSpec[],
  blocks: readonly RegisterBlock[],
): Record<string, PointValue> {
  const out: Record<string, PointValue> = {};
  for (const s of specs) {
    const n = registerCount(s.type);
    const block = blocks.find((b) => s.address >= b.address && s.address + n <= b.address + b.words.length);
    if (!block) throw new PointSpecError(`point ${s.name}: register ${s.address} not in any block read`);
    out[s.name] = decodePoint(s, block);
  }
  return out;
}

// ---- every interpretation, for integrators chasing word-order bugs ----------

export interface WordInterpretation {
  address: number;
  raw: number;
  hex: string;
  u16: number;
  i16: number;
}

export interface PairInterpretation {
  address: number;
  order: WordOrder;
  u32: number;
  i32: number;
  f32: number;
}

export interface Interpretations {
  words: WordInterpretation[];
  /** For each adjacent register pair (n, n+1), each word order. */
  pairs: PairInterpretation[];
}

export function allInterpretations(words: ArrayLike<number>, baseAddress = 0): Interpretations {
  const out: Interpretations = { words: [], pairs: [] };
  for (let i = 0; i < words.length; i++) {
    const w = words[i]! & 0xffff;
    out.words.push({
      address: baseAddress + i,
      raw: w,
      hex: `0x${w.toString(16).padStart(4, "0").toUpperCase()}`,
      u16: w,
      i16: w >= 0x8000 ? w - 0x10000 : w,
    });
  }
  for (let i = 0; i + 1 < words.length; i++) {
    for (const order of WORD_ORDERS) {
      load32(words[i]! & 0xffff, words[i + 1]! & 0xffff, order);
      out.pairs.push({
        address: baseAddress + i,
        order,
        u32: scratch.getUint32(0),
        i32: scratch.getInt32(0),
        f32: scratch.getFloat32(0),
      });
    }
  }
  return out;
}

function fmtFloat(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "+Inf" : "-Inf";
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-4 || a >= 1e9)
    ? x.toExponential(6)
    : Number.parseFloat(x.toPrecision(7)).toString();
}

/** Plain-text tables of every interpretation (what `linli modbus read` prints). */
export function formatInterpretations(words: ArrayLike<number>, baseAddress = 0): string {
  const it = allInterpretations(words, baseAddress);
  const lines: string[] = [];
  const row = (cells: string[], widths: number[]) => cells.map((c, i) => c.padStart(widths[i]!)).join("  ");
  const w1 = [7, 6, 6, 6, 16];
  lines.push(row(["address", "hex", "u16", "i16", "bits 15..0"], w1));
  for (const w of it.words) {
    const bits = w.raw
      .toString(2)
      .padStart(16, "0")
      .replace(/(\d{4})(?=\d)/g, "$1 ");
    lines.push(row([String(w.address), w.hex, String(w.u16), String(w.i16), bits], [7, 6, 6, 6, 19]));
  }
  if (it.pairs.length > 0) {
    lines.push("");
    const w2 = [7, 5, 11, 12, 14];
    lines.push(row(["address", "order", "u32", "i32", "f32"], w2));
    for (const p of it.pairs)
      lines.push(
        row([`${p.address}-${p.address + 1}`, p.order, String(p.u32), String(p.i32), fmtFloat(p.f32)], w2),
      );
  }
  return `${lines.join("\n")}\n`;
}
