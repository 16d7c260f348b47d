import net from "node:net";
import {
  type Link,
  type LinkCloseInfo,
  type LinkEventMap,
  LinkEvents,
  type LinkListener,
  LinkNotOpenError,
  type LinkState,
} from "./link.js";

export interface TcpLinkOptions {
  host: string;
  port: number;
  /** Gives up opening after this long (ms). Default 3000. */
  connectTimeoutMs?: number;
}

/**
 * A TCP client socket as a link. A new net.Socket per open: a destroyed socket
 * is never reused. Nagle is off (DESIGN: delayed ACKs add 10-50 ms per hop).
 */
export class TcpLink implements Link {
  readonly kind = "tcp" as const;
  readonly name: string;
  private current: LinkState = "closed";
  private socket: net.Socket | undefined;
  private readonly events = new LinkEvents();

  constructor(private readonly options: TcpLinkOptions) {
    this.name = `${options.host}:${options.port}`;
  }

  /** Wraps an already-connected socket (the accepting side of a server). */
  static fromSocket(socket: net.Socket, name?: string): TcpLink {
    const link = new TcpLink({
      host: socket.remoteAddress ?? "?",
      port: socket.remotePort ?? 0,
    });
    if (name) (link as { name: string }).name = name;
    link.adopt(socket);
    return link;
  }

  get state(): LinkState {
    return this.current;
  }

  on<K extends keyof LinkEventMap>(event: K, listener: LinkListener<K>): () => void {
    return this.events.on(event, listener);
  }

  open(): Promise<void> {
    if (this.current === "open") return Promise.resolve();
    if (this.current !== "closed") return Promise.reject(new Error(`link ${this.name} is ${this.current}`));
    this.current = "opening";
    return new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host: this.options.host, port: this.options.port });
      const timeoutMs = this.options.connectTimeoutMs ?? 3000;
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        this.current = "closed";
        reject(err);
      };
      const timer = setTimeout(() => fail(new Error(`connect to ${this.name} timed out`)), timeoutMs);
      socket.once("error", fail);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.off("error", fail);
        this.adopt(socket);
        resolve();
      });
    });
  }

  write(bytes: Uint8Array): void {
    const socket = this.socket;
    if (this.current !== "open" || !socket) throw new LinkNotOpenError(this.name, this.current);
    // Copied: a write may sit in the socket's queue and callers reuse precomputed frames.
    socket.write(Buffer.from(bytes));
  }

  close(): Promise<void> {
    const socket = this.socket;
    if (this.current === "closed" || !socket) return Promise.resolve();
    if (this.current === "open") this.current = "closing";
    return new Promise<void>((resolve) => {
      socket.once("close", () => resolve());
      socket.destroy();
    });
  }

  private adopt(socket: net.Socket): void {
    this.socket = socket;
    this.current = "open";
    socket.setNoDelay(true);
    let lastError: Error | undefined;
    socket.on("data", (chunk: Buffer) => this.events.emit("data", chunk));
    socket.on("error", (err) => {
      lastError = err;
      this.events.emit("error", err);
    });
    // The peer's FIN: treat as gone (Modbus has no half-open use).
    socket.on("end", () => socket.destroy());
    socket.on("close", () => {
      const info: LinkCloseInfo =
        this.current === "closing"
          ? { reason: "local" }
          : lastError
            ? { reason: "error", error: lastError }
            : { reason: "remote" };
      this.socket = undefined;
      this.current = "closed";
      this.events.emit("close", info);
    });
  }
}
