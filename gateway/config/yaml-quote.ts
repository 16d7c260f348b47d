/** Where a YAML syntax error really is, for the errors whose reported place misleads. */
import { CST, type LineCounter, Parser } from "yaml";

/**
 * The first quoted scalar that runs to the end of the text. yaml reports a missing closing quote
 * where the text ends ("line 7" of a six-line file); the operator needs the line it opened on.
 */
export function unclosedQuote(text: string, lines: LineCounter): { line: number; message: string } | null {
  const at = unclosedQuoteAt(text);
  if (at === null) return null;
  return {
    line: lines.linePos(at.offset).line,
    message: `YAML: the quote opened here (${at.start}) is never closed`,
  };
}

function unclosedQuoteAt(text: string): { offset: number; start: string } | null {
  let found: { offset: number; start: string } | null = null;
  const look = (t: CST.Token | undefined) => {
    if (found !== null || t === undefined) return;
    if (t.type !== "double-quoted-scalar" && t.type !== "single-quoted-scalar") return;
    const src = t.source;
    if (src.length >= 2 && src.endsWith(src[0] as string)) return;
    found = { offset: t.offset, start: (src.split("\n")[0] as string).slice(0, 20) };
  };
  for (const token of new Parser().parse(text)) {
    if (token.type !== "document") continue;
    look(token.value);
    CST.visit(token, (item) => {
      look(item.key ?? undefined);
      look(item.value ?? undefined);
      return found === null ? undefined : CST.visit.BREAK;
    });
    if (found !== null) return found;
  }
  return found;
}
