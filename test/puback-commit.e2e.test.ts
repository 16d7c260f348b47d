/**
 * Which device PUBACKs wait for the journal's group commit (docs/durability.md "Checkpoints"): an
 * uplink that raises or changes an alert is answered once the fdatasync covering it has returned;
 * one that changes no alert (a door event: its seq and its on-delay are checkpoints) is answered
 * without waiting for a sync, also for the sync of another device's press that is still running.
 * A real gateway and a real journal on disk whose fdatasyncs are held until the test lets them go.
 */
import { describe, expect, it } from "vitest";
import { nodeFs } from "../gateway/journal/fs.js";
import { Journal } from "../gateway/journal/journal.js";
import { connect, doorMsg, pendantMsg, SITE, sleep, startGateway } from "./support/harness.js";
import { journalScratch } from "./support/journal-scratch.js";

const { tempDir, open } = journalScratch("linli-puback-commit-");

/** A file system whose pool fdatasyncs wait until the test releases them. */
function heldSyncs() {
  const held: Array<() => void> = [];
  let holding = true;
  const fs = {
    ...nodeFs,
    fdatasync: (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
      if (holding) held.push(() => nodeFs.fdatasync(fd, cb));
      else nodeFs.fdatasync(fd, cb);
    },
  };
  return {
    fs,
    held,
    release() {
      holding = false;
      for (const go of held.splice(0)) go();
    },
  };
}

/** Resolves true once `p` settles, false if it is still pending after `ms`. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  void p.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (const end = Date.now() + ms; !settled && Date.now() < end; ) await sleep(10);
  return settled;
}

describe("device PUBACKs and the group commit", () => {
  it("a door event is acknowledged while another device's press waits for its fdatasync; the press only after it", async () => {
    const syncs = heldSyncs();
    const journal = Journal.open({ dir: tempDir(), fs: syncs.fs });
    open.push(journal);
    const gw = await startGateway({ store: journal });
    try {
      const ops = await connect(gw, "ops", "ops-pw");
      await ops.subscribe(`linli/${SITE}/#`);
      const pendant = await connect(gw, "p-1", "pw-p1");
      const door = await connect(gw, "d-1", "pw-d1");

      const press = pendant.publish("devices/ec200/p-1/up", pendantMsg(1, "press"));
      // The alert is published (written, not yet synced) while its PUBACK waits for the sync.
      await ops.waitFor((m) => m.topic.endsWith("/p1/EMERGENCY_CALL/p-1"));
      for (const end = Date.now() + 3000; syncs.held.length === 0; await sleep(10))
        if (Date.now() > end) throw new Error("no fdatasync was asked for the press");
      expect(await settlesWithin(press, 300)).toBe(false);

      // Changes no alert (the door's on-delay starts, a checkpoint): answered with the sync still held.
      const opened = door.publish("devices/ds10/d-1/up", doorMsg(1, "open"));
      expect(await settlesWithin(opened, 2000)).toBe(true);
      const closed = door.publish("devices/ds10/d-1/up", doorMsg(2, "closed"));
      expect(await settlesWithin(closed, 2000)).toBe(true);
      expect(await settlesWithin(press, 0)).toBe(false);

      syncs.release();
      expect(await settlesWithin(press, 3000)).toBe(true);
      await Promise.all([ops.end(), pendant.end(), door.end()]);
    } finally {
      syncs.release();
      await gw.stop();
    }
  });
});
