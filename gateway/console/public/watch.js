// What must not be missed: the P1 alerts nobody has acknowledged yet, and when to remind
// of them again. Pure functions (no DOM), shared by the page and its unit tests.

/** Waiting for a person: raised and not acknowledged, whether or not its cause has ended. */
export function isUnacknowledged(alert) {
  return alert.state === "active-unacknowledged" || alert.state === "cleared-unacknowledged";
}

/** Not needing anyone right now (acknowledged, shelved, out of service, held, test): shown grey,
 * as the operators' guide says, so what still waits for a person stands out. */
export function isQuiet(alert) {
  if (!isUnacknowledged(alert) || alert.test === true) return true;
  // A P1 of a device out of service is still published because a person pressed, fell or there
  // is a fire (docs/topics.md "Suppression"): it waits for a person like any other P1.
  if (alert.priority === 1 && alert.suppression === "out-of-service") return false;
  return alert.suppression != null;
}

/** The order within a priority: waiting for a person first, the longest waiting at the top. */
export function alertOrder(x, y) {
  return (isUnacknowledged(x) ? 0 : 1) - (isUnacknowledged(y) ? 0 : 1) || x.raisedAt - y.raisedAt;
}

/** P1 alerts nobody has acknowledged, the longest waiting first: the banner that stays until they are. */
export function pendingP1(alerts) {
  const list = [];
  for (const a of alerts) if (a.priority === 1 && isUnacknowledged(a)) list.push(a);
  return list.sort(alertOrder);
}

// The gateway escalates an unacknowledged P1 after 60 s (operators' guide): the page reminds twice as often.
export const P1_REMINDER_MS = 30_000;

/** Whether to sound the reminder now: a P1 is still unacknowledged and the last sound is old enough. */
export function reminderDue(now, lastSoundAt, pendingCount) {
  return pendingCount > 0 && now - lastSoundAt >= P1_REMINDER_MS;
}
