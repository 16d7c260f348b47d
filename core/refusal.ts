/**
 * Why something was refused, in one shape everywhere: a device message a
 * profile will not take, an operator request, a poll reply. `reason` is a
 * word from a small fixed vocabulary (it is counted per model or operator:
 * the counters stay bounded); `detail` is for people (logs, ops results).
 * Config problems add where in the file (gateway/config/load.ts).
 */
export interface Rejection {
  readonly rejected: true;
  readonly reason: string;
  readonly detail: string;
}

export function reject(reason: string, detail: string): Rejection {
  return { rejected: true, reason, detail };
}

/** Only for values the code built itself: a device's or an operator's JSON is never taken for a refusal. */
export function isRejection(x: unknown): x is Rejection {
  return typeof x === "object" && x !== null && (x as Rejection).rejected === true;
}
