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

  it("an uplink not kept closes the connection once those before it are answered: they are acknowledged first, nothing from it on", async () => {
    const { socket, written } = fakeSocket();
    const aborted: string[] = [];
    const q = new PubackQueue(socket, (err) => aborted.push(err.message));
    const [a, b, c, d] = [1, 2, 3, 4].map((id) => q.enqueue(id));
    c?.(new Error("left with the device"));
    d?.(null); // taken in before the refusal: kept, but never acknowledged (the device sends it again)
    await tick();
    expect(aborted).toEqual([]); // 1 and 2 are still being committed
    expect(q.refusing).toBe(true);
    expect(q.enqueue(5)).toBeNull(); // nothing more is taken in
    b?.(null);
    await tick();
    expect(written).toEqual([]); // 1 first (§4.6)
    a?.(null);
    await tick();
    expect(written).toEqual([1, 2]);
    expect(aborted).toEqual(["left with the device"]);
  });

  it("a QoS 0 uplink not kept closes the connection once the QoS 1 uplinks before it are answered, those kept acknowledged first", async () => {
    const { socket, written } = fakeSocket();
    const aborted: string[] = [];
    const q = new PubackQueue(socket, (err) => aborted.push(err.message));
    const [a, b, c] = [1, 2, 3].map((id) => q.enqueue(id));
    b?.(null);
    q.refuseAfterPending(new Error("lanes full (QoS 0)"));
    await tick();
    expect(aborted).toEqual([]); // 1 is still being committed
    expect(q.refusing).toBe(true);
    expect(q.enqueue(4)).toBeNull(); // nothing more is taken in
    c?.(null);
    a?.(null);
    await tick();
    expect(written).toEqual([1, 2, 3]);
    expect(aborted).toEqual(["lanes full (QoS 0)"]);
  });

  it("a QoS 0 refusal with nothing waiting closes at once; a QoS 1 one before it still closes at that one", async () => {
    const none = fakeSocket();
    const closedNow: string[] = [];
    new PubackQueue(none.socket, (err) => closedNow.push(err.message)).refuseAfterPending(new Error("qos0"));
    expect(closedNow).toEqual(["qos0"]);

    const { socket, written } = fakeSocket();
    const aborted: string[] = [];
    const q = new PubackQueue(socket, (err) => aborted.push(err.message));
    const [a, b, c] = [1, 2, 3].map((id) => q.enqueue(id));
    b?.(new Error("qos1"));
    q.refuseAfterPending(new Error("qos0")); // already refusing: the close stays at 2
    c?.(null);
    a?.(null);
    await tick();
    expect(written).toEqual([1]);
    expect(aborted).toEqual(["qos1"]);
  });

  it("a QoS 1 refusal before a QoS 0 one moves the close to it", async () => {
    const { socket, written } = fakeSocket();
    const aborted: string[] = [];
    const q = new PubackQueue(socket, (err) => aborted.push(err.message));
    const [a, b, c] = [1, 2, 3].map((id) => q.enqueue(id));
    q.refuseAfterPending(new Error("qos0"));
    b?.(new Error("qos1"));
    c?.(null);
    a?.(null);
    await tick();
    expect(written).toEqual([1]);
    expect(aborted).toEqual(["qos1"]);
  });

  it("the PUBACKs written just before the close leave before the connection is dropped", async () => {
    const { socket, written } = fakeSocket();
    const seenAtAbort: number[][] = [];
    const q = new PubackQueue(socket, () => seenAtAbort.push([...written]));
    const [a, b] = [1, 2].map((id) => q.enqueue(id));
    socket.cork(); // the socket still buffers what is written
    a?.(null);
    b?.(new Error("left with the device"));
    expect(seenAtAbort).toEqual([]);
    socket.uncork();
    await tick();
    expect(seenAtAbort).toEqual([[1]]);
  });

  it("a refusal before an earlier one moves the close to it", async () => {
    const { socket, written } = fakeSocket();
    const aborted: string[] = [];
    const q = new PubackQueue(socket, (err) => aborted.push(err.message));
    const [a, b, c] = [1, 2, 3].map((id) => q.enqueue(id));
    c?.(new Error("third"));
    b?.(new Error("second"));
    expect(aborted).toEqual([]);
    a?.(null);
    await tick();
    expect(written).toEqual([1]);
    expect(aborted).toEqual(["second"]);
  });

  it("an uplink committed just before a failed one in the same turn still gets its PUBACK", async () => {
    const { socket, written } = fakeSocket();
    const aborted: string[] = [];
    const q = new PubackQueue(socket, (err) => aborted.push(err.message));
    const a = q.enqueue(1);
    const b = q.enqueue(2);
    a?.(null);
    b?.(new Error("lanes full"));
    await tick();
    expect(written).toEqual([1]);
    expect(aborted).toEqual(["lanes full"]);
  });

  it("PUBACKs that become ready in one turn leave in one socket write, in order", async () => {
    const { socket, written } = fakeSocket();
    let writes = 0;
    const write = socket.write.bind(socket);
    socket.write = ((chunk: Buffer) => {
      writes++;
      return write(chunk);
    }) as typeof socket.write;
    const q = new PubackQueue(socket, () => {});
    const done = [1, 2, 3, 4, 5].map((id) => q.enqueue(id));
    for (const d of done.reverse()) d?.(null); // a group commit releasing its batch
    await tick();
    expect(written).toEqual([1, 2, 3, 4, 5]);
    expect(writes).toBe(1);
  });

  it("keeps each completion on its own uplink while the queue is compacted under it", async () => {
    const { socket, written } = fakeSocket();
    const q = new PubackQueue(socket, () => {});
    const done = Array.from({ length: 1500 }, (_, i) => q.enqueue(i + 1));
    // 1,100 acknowledged, in turns of 100: the front is compacted while 400 are still out.
    for (let i = 0; i < 1100; i += 100) {
      for (let k = i; k < i + 100; k++) done[k]?.(null);
      await tick();
    }
    expect(written).toHaveLength(1100);
    for (let k = 1499; k >= 1100; k--) done[k]?.(null);
    await tick();
    expect(written).toEqual(Array.from({ length: 1500 }, (_, i) => i + 1));
    expect(q.pending).toBe(0);
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

describe("PubackQueue by slot (the device listener's worker)", () => {
  it("complete(slot) releases PUBACKs in arrival order; queues made ready together flush in one pass", async () => {
    const one = fakeSocket();
    const two = fakeSocket();
    const q1 = new PubackQueue(one.socket, () => {});
    const q2 = new PubackQueue(two.socket, () => {});
    const s1 = q1.enqueueSlot(10);
    const s2 = q1.enqueueSlot(11);
    const t1 = q2.enqueueSlot(20);
    q1.complete(s2, null);
    q2.complete(t1, null);
    await tick();
    expect(one.written).toEqual([]); // 10 first (§4.6)
    expect(two.written).toEqual([20]);
    q1.complete(s1, null);
    q1.complete(s1, null); // a second completion of the same slot changes nothing
    await tick();
    expect(one.written).toEqual([10, 11]);
    // A slot from before the queue was emptied and reused is ignored.
    q1.complete(s2, null);
    const s3 = q1.enqueueSlot(12);
    expect(s3).toBeGreaterThan(s2);
    await tick();
    expect(one.written).toEqual([10, 11]);
  });

  it("the abort is handed the socket, so one function serves every connection", () => {
    const { socket } = fakeSocket();
    const seen: Socket[] = [];
    const q = new PubackQueue(socket, (_err, s) => seen.push(s), 1);
    expect(q.enqueueSlot(1)).toBeGreaterThanOrEqual(0);
    expect(q.enqueueSlot(2)).toBe(-1); // over its bound of 1: closed
    expect(seen).toEqual([socket]);
  });
});
