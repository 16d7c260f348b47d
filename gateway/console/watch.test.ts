/**
 * What the console must not let anyone miss: the P1 alerts nobody has acknowledged (a bar on top
 * of the page until someone does) and when to sound them again.
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

interface Alert {
  id: string;
  priority: number;
  state: string;
  raisedAt: number;
}
interface Watch {
  pendingP1: (alerts: Iterable<Alert>) => Alert[];
  alertOrder: (x: Alert, y: Alert) => number;
  reminderDue: (now: number, lastSoundAt: number, pending: number) => boolean;
  P1_REMINDER_MS: number;
}

const load = async () =>
  (await import(pathToFileURL(path.resolve("gateway/console/public/watch.js")).href)) as Watch;

describe("console watch", () => {
  it("pending P1s: unacknowledged only, cleared-unacknowledged included, longest waiting first", async () => {
    const { pendingP1 } = await load();
    const alerts: Alert[] = [
      { id: "late", priority: 1, state: "active-unacknowledged", raisedAt: 300 },
      { id: "acked", priority: 1, state: "active-acknowledged", raisedAt: 100 },
      { id: "p2", priority: 2, state: "active-unacknowledged", raisedAt: 50 },
      // A call whose window ended unanswered still waits for a person.
      { id: "window-over", priority: 1, state: "cleared-unacknowledged", raisedAt: 200 },
    ];
    expect(pendingP1(alerts).map((a) => a.id)).toEqual(["window-over", "late"]);
    expect(pendingP1([])).toEqual([]);
  });

  it("orders unacknowledged first, then the longest waiting", async () => {
    const { alertOrder } = await load();
    const list: Alert[] = [
      { id: "acked-old", priority: 3, state: "active-acknowledged", raisedAt: 1 },
      { id: "new", priority: 3, state: "active-unacknowledged", raisedAt: 50 },
      { id: "old", priority: 3, state: "cleared-unacknowledged", raisedAt: 10 },
    ];
    expect(list.sort(alertOrder).map((a) => a.id)).toEqual(["old", "new", "acked-old"]);
  });

  it("greys what needs nobody now: acknowledged, shelved or held, test", async () => {
    const { isQuiet } = (await load()) as unknown as { isQuiet: (a: object) => boolean };
    expect(isQuiet({ state: "active-unacknowledged" })).toBe(false);
    expect(isQuiet({ state: "cleared-unacknowledged" })).toBe(false);
    expect(isQuiet({ state: "active-acknowledged" })).toBe(true);
    expect(isQuiet({ state: "active-unacknowledged", suppression: "shelved" })).toBe(true);
    expect(isQuiet({ state: "active-unacknowledged", test: true })).toBe(true);
  });

  it("never greys a P1 of a device out of service that nobody acknowledged: someone pressed it", async () => {
    const { isQuiet } = (await load()) as unknown as { isQuiet: (a: object) => boolean };
    const call = { priority: 1, state: "active-unacknowledged", suppression: "out-of-service" };
    expect(isQuiet(call)).toBe(false);
    expect(isQuiet({ ...call, state: "cleared-unacknowledged" })).toBe(false);
    expect(isQuiet({ ...call, state: "active-acknowledged" })).toBe(true);
    // Test mode stays grey (nobody is sent out), as does a P2 of a device out of service.
    expect(isQuiet({ ...call, test: true })).toBe(true);
    expect(isQuiet({ ...call, priority: 2 })).toBe(true);
  });

  it("sounds again every 30 s while a P1 waits, never with none waiting", async () => {
    const { reminderDue, P1_REMINDER_MS } = await load();
    expect(P1_REMINDER_MS).toBe(30_000);
    expect(reminderDue(100_000, 100_000 - 29_999, 1)).toBe(false);
    expect(reminderDue(100_000, 100_000 - 30_000, 1)).toBe(true);
    expect(reminderDue(100_000, 0, 0)).toBe(false);
  });
});
