/**
 * The one list of the times operators read that move when the wall clock does (docs/durability.md,
 * "A step of the wall clock"), and the one place that moves them. Two paths use it: a step while
 * running (gateway/clock-step.ts, on the running objects) and a clock set back across a restart
 * (gateway/state/recovery.ts, on the journal's records). A time added here moves on both; one left
 * out moves on neither, and the test that compares what each path moved says so
 * (test/clock-step.e2e.test.ts). The flood window is counts per bucket as well as a time: its
 * buckets turn with the step in moveFloodRecord (alerts/flood.ts), which both paths use too.
 *
 * Not here: a waiting downlink's queued and expiry times (`down/<device>`) move on the running path
 * only (southbound/pending-downlinks.ts shiftTimes); across a restart its restore cuts a life
 * longer than its 10 minutes from the start, which a clock set back would leave.
 *
 * Times already past (raised, acknowledged, shelved at, out of service since ...) are history and
 * are kept: they are listed in KEPT_TIMES, so that every time a record holds is one or the other.
 */
/**
 * Per journal record: each moved time's field in the record, and the field that holds it in the
 * running gateway (the Alert, the shelved key, the household's care, the household, the device).
 */
export const MOVED_TIMES = {
  alert: {
    windowUntil: "windowUntil",
    unackSince: "unackSince",
    escalationNextAt: "escalationNextAt",
    shelvedUntil: "shelvedUntil",
  },
  shelve: { until: "shelvedUntil" },
  away: { since: "awaySince", until: "awayUntil" },
  household: { activity: "lastActivity", from: "welfareFrom" },
  device: { seen: "lastSeen" },
  flood: { since: "since" },
  /** A pending on-delay's start (`hold/<subject>/<CODE>`; the alert engine's key). */
  hold: { since: "holdSince" },
} as const;

/** Times the records hold that are history, not moved (see above). */
export const KEPT_TIMES = {
  alert: ["raisedAt", "updatedAt", "ackedAt", "clearedAt", "shelvedAt"],
  shelve: ["at"],
  away: [],
  household: [],
  device: [],
  flood: [],
  hold: [],
  /** Out of service since: moves on neither path. */
  service: ["at"],
} as const satisfies Record<MovedKind | "service", readonly string[]>;

export type MovedKind = keyof typeof MOVED_TIMES;
type RecordField<K extends MovedKind> = keyof (typeof MOVED_TIMES)[K] & string;
type LiveField<K extends MovedKind> = (typeof MOVED_TIMES)[K][RecordField<K>] & string;

/** 0 and null are "not set" (no call window, no escalation, never heard from): not moved. */
function moved(v: unknown, ms: number): unknown {
  return typeof v === "number" && v !== 0 ? v + ms : v;
}

/** The running object's moved times, moved by `ms` in place (a step while running). */
export function moveLive<K extends MovedKind>(
  kind: K,
  obj: { [F in LiveField<K>]: number | null },
  ms: number,
): void {
  const o = obj as Record<string, unknown>;
  for (const field of Object.values(MOVED_TIMES[kind]) as string[]) o[field] = moved(o[field], ms);
}

/** A journal record with its moved times moved by `ms` (a copy unless 0; a clock set back across a restart). */
export function moveRecord<K extends MovedKind, R extends { [F in RecordField<K>]?: number | null }>(
  kind: K,
  rec: R,
  ms: number,
): R {
  if (ms === 0) return rec; // every start reads every record: no copy when nothing moves
  const out: Record<string, unknown> = { ...rec };
  for (const field of Object.keys(MOVED_TIMES[kind])) if (field in out) out[field] = moved(out[field], ms);
  return out as R;
}
