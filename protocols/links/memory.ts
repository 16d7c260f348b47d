import {
  type Link,
  type LinkCloseInfo,
  type LinkEventMap,
  LinkEvents,
  type LinkListener,
  LinkNotOpenError,
  type LinkState,
} from "./link.js";

/**
 * An in-memory wire with two ends, a full citizen among links (DESIGN: test
 * hooks to record writes, split reads, inject bytes and drop the line).
 * Like a serial cable, closing one end does not close the other; `drop()`
 * pulls the cable: both open ends close with an error and opens fail until `plug()`.
 */
export class MemoryLine {
  readonly a: MemoryLink;
  readonly b: MemoryLink;
  private plugged = true;

  constructor(name = "mem") {
    this.a = new MemoryLink(`${name}:a`, this);
    this.b = new MemoryLink(`${name}:b`, this);
    this.a.peer = this.b;
    this.b.peer = this.a;
  }

  get isPlugged(): boolean {
    return this.plugged;
  }

  /** Simulates an unplugged cable / vanished device: both ends close with an error. */
  drop(): void {
    this.plugged = false;
    const err = new Error("line dropped");
    this.a.fail(err);
    this.b.fail(err);
  }

  /** Puts the cable back: opens succeed again. */
  plug(): void {
    this.plugged = true;
  }
}

/** Most recent writes kept by `written`; older entries are discarded (bounded test hook). */
export const MEMORY_RECORD_LIMIT = 1024;

export class MemoryLink implements Link {
  readonly kind = "memory" as const;
  /** Set by MemoryLine; the other end of the wire. */
  peer: MemoryLink | undefined;
  /** Test hook: every write made on this end, most recent last (bounded, oldest dropped). */
  readonly written: Uint8Array[] = [];
  /** Test hook: incoming bytes are delivered in chunks of at most this many bytes. */
  readChunkSize = Number.POSITIVE_INFINITY;

  private current: LinkState = "closed";
  private readonly events = new LinkEvents();
  private corked: Uint8Array[] | undefined;

  constructor(
    readonly name: string,
    private readonly line: MemoryLine,
  ) {}

  get state(): LinkState {
    return this.current;
  }

  on<K extends keyof LinkEventMap>(event: K, listener: LinkListener<K>): () => void {
    return this.events.on(event, listener);
  }

  async open(): Promise<void> {
    if (this.current === "open") return;
    if (this.current !== "closed") throw new Error(`link ${this.name} is ${this.current}`);
    this.current = "opening";
    await Promise.resolve();
    if (!this.line.isPlugged) {
      this.current = "closed";
      throw new Error(`link ${this.name}: line unplugged`);
    }
    this.current = "open";
  }

  write(bytes: Uint8Array): void {
    if (this.current !== "open") throw new LinkNotOpenError(this.name, this.current);
    const copy = Uint8Array.from(bytes); // the caller may reuse its buffer (precomputed frames)
    this.written.push(copy);
    if (this.written.length > MEMORY_RECORD_LIMIT) this.written.shift();
    const peer = this.peer;
    // Asynchronous like real I/O; bytes sent while the far end is closed are lost, as on a wire.
    if (peer) queueMicrotask(() => peer.receive(copy));
  }

  async close(): Promise<void> {
    if (this.current === "closed") return;
    this.current = "closing";
    await Promise.resolve();
    this.finish({ reason: "local" });
  }

  // ---- test hooks -------------------------------------------------------

  /** Delivers bytes to this end's listeners as if the far end had sent them. */
  inject(bytes: Uint8Array | number[]): void {
    this.receive(Uint8Array.from(bytes));
  }

  /** Holds incoming bytes until `uncork()`, which delivers them as ONE chunk (merged replies). */
  cork(): void {
    this.corked ??= [];
  }

  uncork(): void {
    const held = this.corked;
    this.corked = undefined;
    if (!held || held.length === 0) return;
    const total = held.reduce((n, c) => n + c.length, 0);
    const merged = new Uint8Array(total);
    let off = 0;
    for (const c of held) {
      merged.set(c, off);
      off += c.length;
    }
    this.receive(merged);
  }

  /** All bytes written on this end, concatenated (test hook). */
  writtenBytes(): Uint8Array {
    return Uint8Array.from(this.written.flatMap((c) => Array.from(c)));
  }

  // ---- internals --------------------------------------------------------

  /** @internal */
  receive(bytes: Uint8Array): void {
    if (this.current !== "open") return;
    if (this.corked) {
      this.corked.push(bytes);
      return;
    }
    const step = Math.max(1, this.readChunkSize);
    if (step >= bytes.length) {
      this.events.emit("data", bytes);
      return;
    }
    for (let i = 0; i < bytes.length && this.current === "open"; i += step) {
      this.events.emit("data", bytes.subarray(i, Math.min(bytes.length, i + step)));
    }
  }

  /** @internal */
  fail(error: Error): void {
    if (this.current !== "open" && this.current !== "closing") return;
    this.events.emit("error", error);
    this.finish({ reason: "error", error });
  }

  private finish(info: LinkCloseInfo): void {
    if (this.current === "closed") return;
    this.current = "closed";
    this.corked = undefined;
    this.events.emit("close", info);
  }
}
