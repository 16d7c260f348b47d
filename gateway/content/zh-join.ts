/**
 * Chinese text around ids and Latin names: "住户 hh-1 的紧急呼叫器 k-1", not "住户 hh-1的紧急呼叫器k-1".
 * Parts are joined as they are, with a space only where a Latin letter or digit meets a Chinese
 * character (never against punctuation: "已确认：k-1" stays as it is).
 */

const HAN = /\p{Script=Han}/u;
const LATIN = /[A-Za-z0-9]/;

function needsSpace(left: string, right: string): boolean {
  const a = left.at(-1);
  const b = right[0];
  if (a === undefined || b === undefined) return false;
  return (LATIN.test(a) && HAN.test(b)) || (HAN.test(a) && LATIN.test(b));
}

/** The parts as one line of Chinese, spaced where an id or Latin word meets Chinese characters. */
export function zhJoin(...parts: string[]): string {
  let out = "";
  for (const p of parts) {
    if (p === "") continue;
    out += needsSpace(out, p) ? ` ${p}` : p;
  }
  return out;
}
