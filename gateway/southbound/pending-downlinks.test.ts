/**
 * The per-device queue of downlinks (pending-downlinks.ts): what a removed device leaves behind,
 * and what waits for a device whose downlink changed (another topic, model or command encoding).
 */
import { describe, expect, it } from "vitest";
import type { DeviceEntry } from "../registry.js";
import { KEY } from "../state/keys.js";
import { MemoryStore } from "../state/store.js";
import { type DownlinkHooks, type DownlinkLoss, PendingDownlinks } from "./pending-downlinks.js";

const device = (id: string) => ({ id, downlinkTopic: `devices/gd2/${id}/down` }) as DeviceEntry;

/** A device as the registry has it: model, topic, and the profile's command encoding. */
const configured = (
  id: string,
  model: string,
  topic: string,
  encode: (cmd: string, i: string) => object = (cmd, i) => ({ cmd, id: i }),
) =>
  ({
    id,
    model,
    downlinkTopic: topic,
    profile: {
      transport: "mqtt",
      commands: { self_test: { doc: "", message: (i: string) => encode("self_test", i) } },
    },
  }) as unknown as DeviceEntry;

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

  it("a device a reload gave another model: its waiting downlinks end device-changed, counted apart, its record goes", () => {
    const t = setup();
    const k = configured("k-1", "gd2", "devices/gd2/k-1/down");
    t.pending.send(k, { cmd: "self_test", id: "a" }, t.hooks("a"));
    expect(t.store.map.has(KEY.downlinks("k-1"))).toBe(true);
    expect(t.pending.removed(k, "device-changed")).toBe(1);
    expect(t.lost).toEqual([["a", "device-changed"]]);
    expect(t.pending.stats()).toMatchObject({ pending: 0, removed: 0, changed: 1 });
    expect(t.store.map.has(KEY.downlinks("k-1"))).toBe(false);
    expect(t.bookkept()).toBe(0);
  });

  describe("a start whose device's downlink changed while the gateway was down", () => {
    /** A record journaled by one gateway, restored by the next with `now` as the device is configured now. */
    function restart(now: DeviceEntry, queue: (before: DeviceEntry, t: ReturnType<typeof setup>) => void) {
      const a = setup();
      queue(configured("k-1", "gd2", "devices/gd2/k-1/down"), a);
      const b = setup();
      for (const [k, v] of a.store.map) b.store.map.set(k, structuredClone(v));
      const changed: Array<[string, number]> = [];
      b.pending.restore(
        (id) => (id === "k-1" ? now : undefined),
        (_, origin) => b.hooks((origin as { id: string }).id),
        () => {},
        (id, n) => changed.push([id, n]),
      );
      return { b, changed };
    }
    const two = (before: DeviceEntry, t: ReturnType<typeof setup>) => {
      t.pending.send(before, { cmd: "self_test", id: "a" }, t.hooks("a"));
      t.pending.send(before, { cmd: "self_test", id: "b" }, t.hooks("b"));
    };

    it.each([
      ["another downlink topic", configured("k-1", "gd2", "site/k-1/cmd")],
      ["another model, the same topic", configured("k-1", "gd2-yaml", "devices/gd2/k-1/down")],
      [
        "the command encoded otherwise",
        configured("k-1", "gd2", "devices/gd2/k-1/down", (c, i) => ({ c, i })),
      ],
    ])("%s: they end device-changed, told, and the record goes", (_, now) => {
      const { b, changed } = restart(now, two);
      expect(b.lost).toEqual([
        ["a", "device-changed"],
        ["b", "device-changed"],
      ]);
      expect(changed).toEqual([["k-1", 2]]);
      expect(b.pending.stats()).toMatchObject({ pending: 0, changed: 2 });
      expect([...b.store.entries("down/")]).toEqual([]);
      b.live.add(now.downlinkTopic as string);
      b.pending.ready(now.downlinkTopic as string);
      expect(b.published).toEqual([]);
    });

    it("nothing of its downlink changed: they wait and are sent at its next login", () => {
      const now = configured("k-1", "gd2", "devices/gd2/k-1/down");
      const { b, changed } = restart(now, two);
      expect(b.lost).toEqual([]);
      expect(changed).toEqual([]);
      expect(b.pending.stats()).toMatchObject({ pending: 2 });
      b.live.add("devices/gd2/k-1/down");
      b.pending.ready("devices/gd2/k-1/down");
      expect(b.published).toEqual(["devices/gd2/k-1/down", "devices/gd2/k-1/down"]);
    });
  });
});

describe("a start that finds a device gone from the site (removed while the gateway was down)", () => {
  /** The journal of `a` restored by a fresh gateway whose configuration has only `k-2`. */
  function restart(a: ReturnType<typeof setup>) {
    const b = setup();
    for (const [k, v] of a.store.map) b.store.map.set(k, structuredClone(v));
    const k2 = configured("k-2", "gd2", "devices/gd2/k-2/down");
    const revived: unknown[] = [];
    const removed: Array<[string, number]> = [];
    b.pending.restore(
      (id) => (id === "k-2" ? k2 : undefined),
      (d, origin) => {
        revived.push({ id: d.id, model: d.model });
        return b.hooks((origin as { id: string }).id);
      },
      (id, n) => removed.push([id, n]),
    );
    return { b, revived, removed };
  }

  it("its waiting downlinks end device-removed, each sender told from the record; the record goes, a second start finds none", () => {
    const a = setup();
    const k1 = configured("k-1", "gd2", "devices/gd2/k-1/down");
    a.pending.send(k1, { cmd: "self_test", id: "a" }, a.hooks("a"));
    // Written once on a connection that closed before the PUBACK: waiting too, so told too.
    a.live.add("devices/gd2/k-1/down");
    a.pending.send(k1, { cmd: "self_test", id: "b" }, a.hooks("b"));
    a.pending.closed("devices/gd2/k-1/down", a.conn);
    a.live.clear();
    a.pending.send(
      configured("k-2", "gd2", "devices/gd2/k-2/down"),
      { cmd: "self_test", id: "c" },
      a.hooks("c"),
    );

    const { b, revived, removed } = restart(a);
    expect(b.lost).toEqual([
      ["a", "device-removed"],
      ["b", "device-removed"],
    ]);
    expect(revived).toContainEqual({ id: "k-1", model: "gd2" });
    expect(removed).toEqual([["k-1", 2]]);
    expect(b.pending.stats()).toMatchObject({ pending: 1, removed: 2, changed: 0 });
    expect(b.store.map.has(KEY.downlinks("k-1"))).toBe(false);
    expect(b.store.map.has(KEY.downlinks("k-2"))).toBe(true);
    // Never sent at a later login of a device of that id.
    b.live.add("devices/gd2/k-1/down");
    b.pending.ready("devices/gd2/k-1/down");
    expect(b.published).toEqual([]);

    const c = restart(b);
    expect(c.b.lost).toEqual([]);
    expect(c.removed).toEqual([]);
    expect(c.b.pending.stats()).toMatchObject({ pending: 1, removed: 0 });
  });

  it("a record before 0.13.50 (no model): its senders told all the same, the model unknown", () => {
    const a = setup();
    a.pending.send(
      configured("k-1", "gd2", "devices/gd2/k-1/down"),
      { cmd: "self_test", id: "a" },
      a.hooks("a"),
    );
    const { model: _, ...old } = a.store.map.get(KEY.downlinks("k-1")) as { model: string };
    a.store.map.set(KEY.downlinks("k-1"), old);
    const { b, revived, removed } = restart(a);
    expect(b.lost).toEqual([["a", "device-removed"]]);
    expect(revived).toEqual([{ id: "k-1", model: null }]);
    expect(removed).toEqual([["k-1", 1]]);
    expect([...b.store.entries("down/")]).toEqual([]);
  });
});
