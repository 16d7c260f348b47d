/**
 * The device tables of docs/topics.md, written from the registered profiles
 * (alert codes, device commands), so the documentation cannot drift from the
 * code: devices/docs.test.ts fails when the file differs, and
 * `npm run docs` rewrites the generated sections in place.
 *
 * A generated section sits between `<!-- generated: NAME ... -->` and
 * `<!-- end: NAME -->`; everything outside the markers is hand-written.
 */
import { type AlertSpec, type AnyProfile, mqttLostRule } from "./profile.js";

const lostWords = (r: { heartbeats: number; plusGrace: boolean }): string =>
  `silent for ${r.heartbeats} heartbeat intervals${r.plusGrace ? " + `alerts.lostGrace` (default 60 s)" : ""}`;

const lostRow = (p: AnyProfile): AlertSpec =>
  p.transport === "mqtt"
    ? {
        priority: p.lostPriority,
        raised: lostWords(mqttLostRule(p)),
        cleared: "any message from the device",
      }
    : {
        priority: p.lostPriority,
        raised: `${p.missedPollsForLost} polls in a row failed (timeout, transport, exception); \`causes\` says which`,
        cleared: "the next good poll",
      };

const priorities = (a: AlertSpec) =>
  (typeof a.priority === "number" ? [a.priority] : a.priority).map((n) => `P${n}`).join(", ");

/** Markdown table, columns padded to their widest cell (as a formatter would leave them). */
function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, 3, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** Every device alert code: each model's own, then its DEVICE_LOST. */
export function alertCodesTable(profiles: readonly AnyProfile[]): string {
  const rows: string[][] = [];
  for (const p of profiles) {
    const specs: [string, AlertSpec][] = [...Object.entries(p.alerts as Record<string, AlertSpec>)];
    specs.push(["DEVICE_LOST", lostRow(p)]);
    for (const [code, a] of specs) rows.push([`\`${code}\``, priorities(a), p.label, a.raised, a.cleared]);
  }
  return table(["code", "priority", "from", "raised when", "cleared when"], rows);
}

/** Every operator command, by model. */
export function commandsTable(profiles: readonly AnyProfile[]): string {
  const rows: string[][] = [];
  for (const p of profiles)
    for (const [name, c] of Object.entries(p.commands as Record<string, { doc: string }>))
      rows.push([p.label, `\`${name}\``, c.doc]);
  return table(["model", "command", "what it does"], rows);
}

export const SECTIONS: Readonly<Record<string, (profiles: readonly AnyProfile[]) => string>> = {
  "alert-codes": alertCodesTable,
  commands: commandsTable,
};

/** The text with every generated section rewritten; throws when a section's markers are missing. */
export function regenerate(text: string, profiles: readonly AnyProfile[]): string {
  let out = text;
  for (const [name, render] of Object.entries(SECTIONS)) {
    const start = new RegExp(`<!-- generated: ${name}\\b[^>]*-->\\n`);
    const m = start.exec(out);
    const endMark = `<!-- end: ${name} -->`;
    const end = out.indexOf(endMark);
    if (!m || end < m.index) throw new Error(`docs: the markers of section "${name}" are missing`);
    out = `${out.slice(0, m.index + m[0].length)}\n${render(profiles)}\n\n${out.slice(end)}`;
  }
  return out;
}
