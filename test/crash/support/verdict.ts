/**
 * Judging one restart from the operator's side: what the console showed just
 * before the gateway died against what the restarted gateway shows (its retained
 * alert topics), with the harness's own races counted honestly.
 *
 * A difference is "moved" (explained), not "lost", only when something the
 * operator had not seen yet can account for it:
 *   - press:  a press the console had not seen reflected (in flight, or PUBACKed
 *             but its alert message still on the way) returns the alert to
 *             active-unacknowledged;
 *   - ack:    an acknowledgement sent after the console's last message on that
 *             alert (answered or not) acknowledges it, or closes a cleared one;
 *   - window: the call window (last press the gateway surely had + window)
 *             ended before the console looked again: active-unacknowledged
 *             becomes cleared-unacknowledged, active-acknowledged closes.
 * Anything else (an alert gone, another id on its topic, a state no cause
 * reaches, a clear before its window could end) is a loss.
 */

export type LifeState = "active-unacknowledged" | "active-acknowledged" | "cleared-unacknowledged" | "closed";

/** The alert JSON fields the harness reads (docs/topics.md). */
export interface AlertMsg {
  id: string;
  code: string;
  priority: number;
  deviceId: string;
  state: LifeState;
  transition: string;
  raisedAt: number;
  updatedAt: number;
  count: number;
  ackedBy: string | null;
  ackedAt: number | null;
  clearedAt: number | null;
  escalationLevel?: number;
  escalationNextAt?: number | null;
  /** (topic API 0.4.0) changes published so far, this one included. */
  rev?: number;
}

/** Transitions a device's occurrence (a press) publishes. */
export const PRESS_TRANSITIONS: ReadonlySet<string> = new Set(["raised", "repeated", "reactivated"]);

export interface Causes {
  press: boolean;
  ack: boolean;
  window: boolean;
}

/** States an alert can be in after any sequence of the allowed causes, starting from `from`. */
export function reachable(from: LifeState, causes: Causes): Set<LifeState> {
  const seen = new Set<LifeState>([from]);
  const todo: LifeState[] = [from];
  const step = (s: LifeState): LifeState[] => {
    const out: LifeState[] = [];
    if (s === "closed") return out; // a closed alert never comes back (a new press is a new id)
    if (causes.press) out.push("active-unacknowledged");
    if (causes.ack) {
      if (s === "active-unacknowledged") out.push("active-acknowledged");
      if (s === "cleared-unacknowledged") out.push("closed");
    }
    if (causes.window) {
      if (s === "active-unacknowledged") out.push("cleared-unacknowledged");
      if (s === "active-acknowledged") out.push("closed");
    }
    return out;
  };
  while (todo.length > 0) {
    for (const n of step(todo.pop() as LifeState)) {
      if (!seen.has(n)) {
        seen.add(n);
        todo.push(n);
      }
    }
  }
  return seen;
}

export type Outcome = "same" | "moved" | "lost";

export interface Judged {
  outcome: Outcome;
  /** For moved and lost: what happened, for the report. */
  why: string;
}

/**
 * One alert that was open in the console's view before the kill.
 * `post` is the restarted gateway's retained state on the same topic (undefined: none).
 * `windowEndsNoEarlierThan`: the earliest time its call window can end (the last press
 * the gateway surely processed + the window), to catch a clear that came too early.
 */
export function judgeAlert(
  pre: AlertMsg,
  post: AlertMsg | undefined,
  causes: Causes,
  windowEndsNoEarlierThan: number,
): Judged {
  const postState: LifeState = post && post.id === pre.id ? post.state : "closed";
  if (post && post.id === pre.id && post.state === pre.state) return { outcome: "same", why: "" };
  const ok = reachable(pre.state, causes);
  const what =
    post === undefined
      ? "no retained alert on its topic"
      : post.id !== pre.id
        ? `another alert ${post.id} (${post.state}) on its topic`
        : `${pre.state} -> ${post.state}`;
  if (!ok.has(postState)) {
    const c = Object.entries(causes)
      .filter(([, v]) => v)
      .map(([k]) => k);
    return { outcome: "lost", why: `${what}; possible causes: ${c.length ? c.join(", ") : "none"}` };
  }
  if (
    post &&
    post.id === pre.id &&
    post.state === "cleared-unacknowledged" &&
    post.clearedAt !== null &&
    post.clearedAt < windowEndsNoEarlierThan
  ) {
    return {
      outcome: "lost",
      why: `${what}: cleared at ${post.clearedAt}, before its window could end (${windowEndsNoEarlierThan})`,
    };
  }
  return { outcome: "moved", why: what };
}

/** What an acknowledgement the gateway confirmed before the kill must look like after the restart. */
export function ackKept(
  expect: "acknowledged" | "closed",
  pre: AlertMsg,
  post: AlertMsg | undefined,
  causes: Causes,
): boolean {
  const same = post && post.id === pre.id ? post : undefined;
  if (expect === "closed") return same === undefined;
  if (!same) return causes.window; // acknowledged, then its call window ended: closed
  if (same.ackedBy === null || same.ackedAt === null) return false;
  if (same.state === "active-acknowledged") return true;
  // Pressed again after the ack: active-unacknowledged again, the acknowledgement still on record.
  return same.state === "active-unacknowledged" && causes.press;
}

export interface EscalationCheck {
  /** Due time of the next escalation as the console knew it before the kill. */
  nextAt: number;
  /** Gateway time the restarted gateway logged "gateway started". */
  startedAt: number;
  /** Earliest evidence of that escalation from the restarted gateway (gateway time), or null. */
  firedAt: number | null;
}

/** The wheel fires a timer at the first whole tick (1 s) at or after its deadline. */
const TICK_MS = 1000;

/**
 * "Within 1 s of when it would have" (escalations across a restart): an uninterrupted gateway fires
 * at the first tick at or after `nextAt`; one that was down then fires when it
 * is back. Early by more than the tolerance is as wrong as late.
 */
export function escalationOnTime(
  c: EscalationCheck,
  toleranceMs = 1000,
): { onTime: boolean; lateMs: number } {
  const wouldHave = Math.max(Math.ceil(c.nextAt / TICK_MS) * TICK_MS, c.startedAt);
  if (c.firedAt === null) return { onTime: false, lateMs: Number.POSITIVE_INFINITY };
  const lateMs = c.firedAt - wouldHave;
  return { onTime: c.firedAt >= c.nextAt - toleranceMs && lateMs <= toleranceMs, lateMs };
}

export function pct(n: number, of: number): string {
  return of === 0 ? "n/a" : `${((100 * n) / of).toFixed(1)} %`;
}
