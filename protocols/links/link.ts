/**
 * A link is an opened duplex byte stream (DESIGN "Boundaries worth copying"):
 * a serial port, a pty, a TCP socket and an in-memory pair are interchangeable,
 * so every layer above (framers, buses, simulators) is tested without hardware.
 *
 * State machine (one per link object, reopenable):
 *
 *   closed --open()--> opening --ok--> open --close()--> closing --> closed
 *                         \--fail--> closed        \--peer gone / I/O error--> closed
 *
 * A link never reconnects by itself: reconnection with backoff is the bus's job
 * (it owns the link), so there is exactly one retry policy per port.
 */
export type LinkState = "closed" | "opening" | "open" | "closing";

/** Why an open session ended: our close(), the far end went away, or an I/O error. */
export type LinkCloseReason = "local" | "remote" | "error";

export interface LinkCloseInfo {
  reason: LinkCloseReason;
  error?: Error;
}

export interface LinkEventMap {
  /** Bytes as they arrived: chunk boundaries carry no meaning (frame by length). */
  data: Uint8Array;
  /** Emitted exactly once per open session. */
  close: LinkCloseInfo;
  /** I/O errors while open; a `close` follows. Having no listener is harmless. */
  error: Error;
}

export type LinkListener<K extends keyof LinkEventMap> = (payload: LinkEventMap[K]) => void;

export interface Link {
  /** "serial", "tcp" or "memory": for logs and statistics. */
  readonly kind: "serial" | "tcp" | "memory";
  /** Human-readable endpoint, e.g. "/dev/ttyUSB0@9600 8E1" or "10.0.0.5:502". */
  readonly name: string;
  readonly state: LinkState;
  /** Resolves when open; rejects (state back to closed) when the target cannot be opened. */
  open(): Promise<void>;
  /** Queues bytes for sending. Throws LinkNotOpenError unless state is "open". */
  write(bytes: Uint8Array): void;
  /** Ends the session; resolves when closed. A no-op when already closed. */
  close(): Promise<void>;
  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof LinkEventMap>(event: K, listener: LinkListener<K>): () => void;
}

export class LinkNotOpenError extends Error {
  constructor(name: string, state: LinkState) {
    super(`link ${name} is ${state}, not open`);
    this.name = "LinkNotOpenError";
  }
}

/**
 * Tiny typed emitter. Not node:events because an "error" event without a
 * listener must not throw: the bus decides what an I/O error means.
 */
export class LinkEvents {
  private readonly listeners: { [K in keyof LinkEventMap]: LinkListener<K>[] } = {
    data: [],
    close: [],
    error: [],
  };

  on<K extends keyof LinkEventMap>(event: K, listener: LinkListener<K>): () => void {
    const list = this.listeners[event] as LinkListener<K>[];
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  emit<K extends keyof LinkEventMap>(event: K, payload: LinkEventMap[K]): void {
    const list = this.listeners[event] as LinkListener<K>[];
    // Iterate a snapshot only when there are several listeners (the common case is one: the bus).
    if (list.length === 1) list[0]?.(payload);
    else for (const l of list.slice()) l(payload);
  }
}
