import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Link } from "../../protocols/links/link.js";
import { LinkNotOpenError } from "../../protocols/links/link.js";

/** The far end of the link under test, driven by the harness. */
export interface PeerEnd {
  write(bytes: Uint8Array): void;
  /** Resolves with everything received so far once at least n bytes have arrived. */
  read(n: number): Promise<Uint8Array>;
}

export interface LinkHarness {
  /** The link under test, closed. */
  subject: Link;
  /** Opens or accepts the far end; called after subject.open(). */
  peer(): Promise<PeerEnd>;
  /** Pulls the plug from outside (kill socat, reset the socket, drop the line). */
  sever(): Promise<void>;
  /** A link of the same kind whose open() must fail (missing tty, refused port, unplugged line). */
  unreachable(): Link;
  dispose(): Promise<void>;
}

/** Collects bytes from any byte source; read(n) waits for n of them. */
export class ByteSink {
  private chunks: number[] = [];
  private waiters: { n: number; resolve: (b: Uint8Array) => void }[] = [];
  push(chunk: Uint8Array): void {
    for (const b of chunk) this.chunks.push(b);
    this.waiters = this.waiters.filter((w) => {
      if (this.chunks.length < w.n) return true;
      w.resolve(Uint8Array.from(this.chunks));
      return false;
    });
  }
  read(n: number, timeoutMs = 3000): Promise<Uint8Array> {
    if (this.chunks.length >= n) return Promise.resolve(Uint8Array.from(this.chunks));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`only ${this.chunks.length} of ${n} bytes arrived`)),
        timeoutMs,
      );
      this.waiters.push({
        n,
        resolve: (b) => {
          clearTimeout(timer);
          resolve(b);
        },
      });
    });
  }
}

function pattern(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

/**
 * One conformance suite for every link implementation (as MQTT.js runs one
 * abstract_store suite over every store). Anything a bus relies on is here.
 */
export function linkConformance(kind: string, makeHarness: () => Promise<LinkHarness>): void {
  describe(`link conformance: ${kind}`, () => {
    let h: LinkHarness;
    beforeEach(async () => {
      h = await makeHarness();
    });
    afterEach(async () => {
      await h.subject.close();
      await h.dispose();
    });

    it("starts closed, opens, and refuses writes unless open", async () => {
      expect(h.subject.state).toBe("closed");
      expect(() => h.subject.write(Uint8Array.of(1))).toThrow(LinkNotOpenError);
      const opening = h.subject.open();
      expect(h.subject.state).toBe("opening");
      await opening;
      expect(h.subject.state).toBe("open");
    });

    it("carries bytes both ways intact and in order, whatever the chunking", async () => {
      const sink = new ByteSink();
      h.subject.on("data", (c) => sink.push(c));
      await h.subject.open();
      const peer = await h.peer();
      const out = pattern(1000, 7);
      for (let i = 0; i < out.length; i += 100) h.subject.write(out.subarray(i, i + 100));
      expect(await peer.read(1000)).toEqual(out);
      const back = pattern(600, 3);
      peer.write(back);
      expect(await sink.read(600)).toEqual(back);
    });

    it("does not keep a reference to a written buffer (callers reuse precomputed frames)", async () => {
      await h.subject.open();
      const peer = await h.peer();
      const frame = Uint8Array.of(1, 2, 3, 4);
      h.subject.write(frame);
      frame.fill(9);
      h.subject.write(frame);
      expect(await peer.read(8)).toEqual(Uint8Array.of(1, 2, 3, 4, 9, 9, 9, 9));
    });

    it("close() ends the session once with reason local, and is idempotent", async () => {
      const closes: string[] = [];
      h.subject.on("close", (i) => closes.push(i.reason));
      await h.subject.open();
      await h.subject.close();
      await h.subject.close();
      expect(h.subject.state).toBe("closed");
      expect(closes).toEqual(["local"]);
      expect(() => h.subject.write(Uint8Array.of(1))).toThrow(LinkNotOpenError);
    });

    it("reopens after close (a fresh port or socket each time) and still carries bytes", async () => {
      await h.subject.open();
      await h.subject.close();
      await h.subject.open();
      expect(h.subject.state).toBe("open");
      const peer = await h.peer();
      h.subject.write(Uint8Array.of(0xde, 0xad));
      const got = await peer.read(2);
      expect(got.subarray(got.length - 2)).toEqual(Uint8Array.of(0xde, 0xad));
    });

    it("reports a severed line as a close that is not local", async () => {
      await h.subject.open();
      await h.peer();
      const closed = new Promise<string>((resolve) => h.subject.on("close", (i) => resolve(i.reason)));
      await h.sever();
      // Bounded, so a link that never notices says so instead of hitting the test timeout.
      let timer: NodeJS.Timeout | undefined;
      const silent = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve("no close within 10 s of the line being severed"), 10_000);
      });
      const reason = await Promise.race([closed, silent]);
      clearTimeout(timer);
      expect(["remote", "error"]).toContain(reason);
      expect(h.subject.state).toBe("closed");
    });

    it("rejects open() on an unreachable target and returns to closed", async () => {
      const link = h.unreachable();
      await expect(link.open()).rejects.toThrow();
      expect(link.state).toBe("closed");
    });
  });
}
