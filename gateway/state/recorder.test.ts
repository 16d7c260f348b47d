import { describe, expect, it } from "vitest";
import type { Alert } from "../alerts/alert.js";
import { REV_UNSYNCED_MAX, StateRecorder } from "./recorder.js";
import { MemoryStore } from "./store.js";

/** A disk whose group syncs never answer (a slow eMMC): only syncNow() makes a record durable. */
class StalledStore extends MemoryStore {
  override commit(): void {
    this.commits++;
  }
  override afterSync(): void {}
}

describe("StateRecorder: an alert's revs past its last durable record are bounded", () => {
  it(`publishes at most ${REV_UNSYNCED_MAX} revs of one alert beyond its last synced record`, () => {
    const store = new StalledStore();
    const recorder = new StateRecorder(store, 5000);
    // alertRecord copies fields; these are the ones the recorder itself reads.
    const alert = {
      id: "a-1",
      state: "active-unacknowledged",
      rev: 1,
      subject: { id: "p-1", model: "ec200", household: null },
    } as unknown as Alert;
    recorder.alert(alert);
    let durable = 0; // the first record's rev - 1: nothing of it on disk yet
    for (let rev = 2; rev <= 3 * REV_UNSYNCED_MAX + 3; rev++) {
      alert.rev = rev;
      const syncs = store.syncs;
      recorder.alert(alert);
      if (store.syncs > syncs) durable = rev;
      expect(rev - durable, `rev ${rev}`).toBeLessThanOrEqual(REV_UNSYNCED_MAX);
    }
    expect(store.syncs).toBe(3);
    expect(recorder.revSyncs).toBe(3);
  });
});
