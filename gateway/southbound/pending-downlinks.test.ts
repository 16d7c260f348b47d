/** The per-device queue of downlinks (pending-downlinks.ts): what a removed device leaves behind. */
import { describe, expect, it } from "vitest";
import type { DeviceEntry } from "../registry.js";
import { KEY } from "../state/keys.js";
import { MemoryStore } from "../state/store.js";
import { type DownlinkHooks, type DownlinkLoss, PendingDownlinks } from "./pending-downlinks.js";

const device = (id: string) => ({ id, downlinkTopic: `devices/gd2/${id}/down` }) as DeviceEntry;

function setup() {
  const live = new Set<string>();
  const conn = { n: 1 };
  const published: string[] = [];
  let now = 1_000_000;
  const store = new MemoryStore();
  const pending = new PendingDownlinks(
    {
      publish: (topic) => published.push(topic),
      live: (topic) => live.has(topic),
      connection: () => conn,
      acks: () => true,
    },
    () => now,
    store,
  );
  const lost: Array<[string, DownlinkLoss]> = [];
  const hooks = (id: string): DownlinkHooks => ({
    origin: { kind: "operator", command: "self_test", id, by: "Wang Li" },
    lost: (why) => lost.push([id, why]),
  });
  /** Entries in the maps and sets kept beside the queues (per-device bookkeeping), all of them. */
  const bookkept = () =>
    Object.entries(pending)
      .filter(([name, v]) => name !== "byTopic" && (v instanceof Map || v instanceof Set))
      .reduce((n, [, v]) => n + (v as Map<unknown, unknown>).size, 0);
  return {
    pending,
    store,
    live,
    conn,
    published,
    lost,
    hooks,
    bookkept,
    advance: (ms: number) => (now += ms),
  };
}

describe("pending downlinks", () => {
  it("a removed device's waiting downlinks end device-removed, its record goes, and nothing of it is kept", () => {
    const t = setup();
    const gone = device("k-gone");
    const kept = device("k-kept");
    t.pending.send(gone, { cmd: "self_test", id: "a" }, t.hooks("a"));
    t.pending.send(gone, { cmd: "self_test", id: "b" }, t.hooks("b"));
    t.pending.send(kept, { cmd: "self_test", id: "c" }, t.hooks("c"));
    expect(t.store.map.has(KEY.downlinks("k-gone"))).toBe(true);
    expect(t.bookkept()).toBe(2);

    expect(t.pending.removed(gone)).toBe(2);
    expect(t.lost).toEqual([
      ["a", "device-removed"],
      ["b", "device-removed"],
    ]);
    expect(t.store.map.has(KEY.downlinks("k-gone"))).toBe(false);
    expect(t.store.map.has(KEY.downlinks("k-kept"))).toBe(true);
    expect(t.pending.stats()).toMatchObject({ pending: 1, removed: 2 });
    expect(t.bookkept()).toBe(1);
    // Never sent at a later login of a device of that id.
    t.live.add(gone.downlinkTopic as string);
    t.pending.ready(gone.downlinkTopic as string);
    expect(t.published).toEqual([]);
  });

  it("one written and not yet acknowledged goes without a result: its sender was told it was sent", () => {
    const t = setup();
    const k = device("k-1");
    t.live.add(k.downlinkTopic as string);
    expect(t.pending.send(k, { cmd: "self_test", id: "a" }, t.hooks("a"))).toBe("sent");
    expect(t.pending.stats().pending).toBe(1);
    expect(t.pending.removed(k)).toBe(0);
    expect(t.lost).toEqual([]);
    expect(t.pending.stats()).toMatchObject({ pending: 0, removed: 0 });
    expect(t.store.map.has(KEY.downlinks("k-1"))).toBe(false);
    expect(t.bookkept()).toBe(0);
  });

  it("keeps no bookkeeping for a device whose downlinks are all done (expired, acknowledged)", () => {
    const t = setup();
    for (let i = 0; i < 20; i++) t.pending.send(device(`k-${i}`), { cmd: "self_test" }, t.hooks(`x${i}`));
    expect(t.bookkept()).toBe(20);
    t.advance(11 * 60_000);
    t.pending.sweep();
    expect(t.lost).toHaveLength(20);
    expect(t.bookkept()).toBe(0);
    expect([...t.store.entries("down/")]).toEqual([]);
  });
});
