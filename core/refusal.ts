/**
 * Why something was refused, in one shape everywhere: a device message a
 * profile will not take, an operator request (ops.ts, operator-actions.ts),
 * a device command (a set-point out of range), a configuration problem.
 *
 * - `reason` is a word from a small fixed vocabulary: it is counted per model
 *   or operator (the counters stay bounded) and published as the result's
 *   `reason` or `error` (docs/topics.md);
 * - `detail` says it for people, in English (logs, results, `config check`);
 *   `zh` says it in Chinese wherever a duty operator reads it (requests and
 *   commands), so a result can be given in the site's language;
 * - `path` is where: the request's or message's field, or the config path
 *   (`devices[3].heartbeatInterval`); `file` and `line` place a config problem.
 *
 * The edges adapt it to what they publish; nothing else defines its own.
 */
export interface Rejection {
  readonly rejected: true;
  readonly reason: string;
  readonly detail: string;
  readonly zh?: string;
  readonly path?: string;
  /** Config: the file, when not the site file (a device profile file it names). */
  file?: string;
  /** Config: 1-based line in the file, when known. */
  line?: number;
}

/** Where and how else a refusal is said: its field, its Chinese words, its place in a file. */
export type RejectionWhere = Pick<Rejection, "zh" | "path" | "file" | "line">;

export function reject(reason: string, detail: string, where: RejectionWhere = {}): Rejection {
  return { rejected: true, reason, detail, ...where };
}

/** Only for values the code built itself: a device's or an operator's JSON is never taken for a refusal. */
export function isRejection(x: unknown): x is Rejection {
  return typeof x === "object" && x !== null && (x as Rejection).rejected === true;
}

/** What an operator reads: the Chinese words for a zh-CN site when there are some, else the English. */
export function rejectionText(r: Rejection, locale: "zh-CN" | "en"): string {
  return locale === "zh-CN" && r.zh ? r.zh : r.detail;
}
