import type { Socket } from "node:net";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { MAX_PENDING_PUBACKS, PubackQueue } from "./puback-queue.js";

function fakeSocket() {
  const written: number[] = [];
  const s = new PassThrough();
  s.on("data", (b: Buffer) => {
    for (let i = 0; i + 3 < b.length; i += 4) written.push((b[i + 2] as number) * 256 + (b[i + 3] as number));
  });
  return { socket: s as unknown as Socket, written };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("PubackQueue", () => {
  it("writes PUBACKs in the order the PUBLISHes arrived, each once it is committed", async () => {
    const { socket, written } = fakeSocket();
    const q = new PubackQueue(socket, () => {});
    const a = q.enqueue(1);
    const b = q.enqueue(2);
    const c = q.enqueue(300);
    c?.(null);
    b?.(null);
    await tick();
    expect(written).toEqual([]); // 1 is not committed yet: 2 and 300 wait behind it (MQTT 3.1.1 §4.6)
    a?.(null);
    await tick();
    expect(written).toEqual([1, 2, 300]);
    expect(q.pending).toBe(0);
  });

  it("a failed uplink closes the connection unacknowledged; nothing after it is acknowledged", async () => {
    const { socket, written } = fakeSocket();
    const aborted: string[] = [];
    const q = new PubackQueue(socket, (err) => aborted.push(err.message));
    const a = q.enqueue(1);
    const b = q.enqueue(2);
    a?.(new Error("lanes full"));
    b?.(null);
    await tick();
    expect(aborted).toEqual(["lanes full"]);
    expect(written).toEqual([]);
    expect(q.enqueue(3)).toBeNull();
  });

  it("is bounded: beyond MAX_PENDING_PUBACKS unacknowledged uplinks the connection is closed", () => {
    const { socket } = fakeSocket();
    let aborted = 0;
    const q = new PubackQueue(socket, () => aborted++);
    for (let i = 0; i < MAX_PENDING_PUBACKS; i++) expect(q.enqueue(i % 65535)).not.toBeNull();
    expect(q.enqueue(1)).toBeNull();
    expect(aborted).toBe(1);
  });
});
