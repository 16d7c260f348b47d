import { createRequire } from "node:module";
import type { SerialPort } from "serialport";
import {
  type Link,
  type LinkCloseInfo,
  type LinkEventMap,
  LinkEvents,
  type LinkListener,
  LinkNotOpenError,
  type LinkState,
} from "./link.js";

export type Parity = "none" | "even" | "odd";

export interface SerialSettings {
  baudRate: number;
  /** Default 8. */
  dataBits?: 7 | 8;
  /** Default "even" (Modbus over serial line V1.02 §2.5.1: even parity is the required default). */
  parity?: Parity;
  /** Default 1. */
  stopBits?: 1 | 2;
}

export interface SerialLinkOptions extends SerialSettings {
  /** Any tty path: /dev/ttyUSB0, /dev/ttyS1, a pty such as /dev/pts/7. */
  path: string;
}

/**
 * An unplugged adapter is reported within about this long even when serialport misses
 * it (see SerialLink.watchPresence); one ioctl per period, nothing on the wire.
 */
export const PRESENCE_CHECK_MS = 1000;

/**
 * serialport (with its native binding and its parsers) is loaded on the first open(): a gateway
 * without a serial bus, and `linli config check`, never load it.
 */
let serialPortClass: typeof SerialPort | undefined;
const loadSerialPort = (): typeof SerialPort =>
  (serialPortClass ??= (createRequire(import.meta.url)("serialport") as typeof import("serialport"))
    .SerialPort);

/** Bits on the wire per character: start + data + parity + stop (11 for 8E1 / 8N2, 10 for 8N1). */
export function bitsPerChar(s: SerialSettings): number {
  return 1 + (s.dataBits ?? 8) + ((s.parity ?? "even") === "none" ? 0 : 1) + (s.stopBits ?? 1);
}

/**
 * A serial port (or pty) as a link, through `serialport`. A destroyed port
 * cannot be reopened, so every open() builds a new SerialPort (DESIGN "Library
 * notes"). On a pty the baud rate means nothing and bytes arrive in arbitrary
 * chunks: the framers above frame by length, never by silence.
 */
export class SerialLink implements Link {
  readonly kind = "serial" as const;
  readonly name: string;
  private current: LinkState = "closed";
  private port: SerialPort | undefined;
  private presenceTimer: NodeJS.Timeout | undefined;
  private readonly events = new LinkEvents();

  constructor(readonly options: SerialLinkOptions) {
    const p = options.parity ?? "even";
    this.name = `${options.path}@${options.baudRate} ${options.dataBits ?? 8}${p[0]?.toUpperCase()}${options.stopBits ?? 1}`;
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
      let port: SerialPort;
      try {
        port = new (loadSerialPort())({
          path: this.options.path,
          baudRate: this.options.baudRate,
          dataBits: this.options.dataBits ?? 8,
          parity: this.options.parity ?? "even",
          stopBits: this.options.stopBits ?? 1,
          autoOpen: false,
          // An exclusive lock on a pty makes a quick reopen fail with "busy"; the bus is the only user anyway.
          lock: false,
        });
      } catch (err) {
        this.current = "closed";
        reject(err as Error);
        return;
      }
      port.open((err) => {
        if (err) {
          this.current = "closed";
          reject(err);
          return;
        }
        this.adopt(port);
        resolve();
      });
    });
  }

  write(bytes: Uint8Array): void {
    const port = this.port;
    if (this.current !== "open" || !port) throw new LinkNotOpenError(this.name, this.current);
    // Copied: serialport writes asynchronously and callers reuse precomputed frames.
    port.write(Buffer.from(bytes));
  }

  close(): Promise<void> {
    const port = this.port;
    if (this.current === "closed" || !port) return Promise.resolve();
    if (this.current === "open") this.current = "closing";
    return new Promise<void>((resolve) => {
      if (!port.isOpen) {
        this.finish(port, { reason: "local" });
        resolve();
        return;
      }
      port.once("close", () => resolve());
      port.close((err) => {
        // Closing a port whose device vanished can fail; it is closed all the same.
        if (err) this.finish(port, { reason: "local" });
      });
    });
  }

  private adopt(port: SerialPort): void {
    this.port = port;
    this.current = "open";
    let lastError: Error | undefined;
    port.on("data", (chunk: Buffer) => this.events.emit("data", chunk));
    port.on("error", (err: Error) => {
      lastError = err;
      this.events.emit("error", err);
    });
    // serialport emits close(err) with err.disconnected when the device went away (EIO on a pty).
    port.on("close", (err: (Error & { disconnected?: boolean }) | null) => {
      const info: LinkCloseInfo =
        this.current === "closing"
          ? { reason: "local" }
          : err || lastError
            ? { reason: err?.disconnected ? "remote" : "error", error: (err ?? lastError) as Error }
            : { reason: "remote" };
      this.finish(port, info);
    });
    this.watchPresence(port);
  }

  /**
   * serialport does not always report a vanished device. Linux hangs the tty up (USB
   * adapter unplugged, pty master gone) and read() then returns 0; serialport notices
   * only if its poller is armed at that moment. If a read is in flight instead, the 0
   * is retried at once, forever: no `close`, no `error`, one core busy
   * (serialport/bindings-cpp#162, still so in bindings-cpp 13). On a socat pty that
   * was 1 severed line in 10 to 20. So while open, the port is asked for its baud rate
   * (TCGETS2) every PRESENCE_CHECK_MS: that succeeds on any live tty, pty or UART
   * (checked on /dev/ttyS0), and fails with EIO once the tty is hung up. Modem status
   * (port.get, TIOCMGET) would not do: a live pty refuses it. The binding implements
   * getBaudRate on Linux only, so elsewhere serialport's own report is all there is.
   */
  private watchPresence(port: SerialPort): void {
    if (process.platform !== "linux") return;
    let asking = false;
    this.presenceTimer = setInterval(() => {
      const binding = port.port;
      if (asking || !binding || this.port !== port || this.current !== "open") return;
      asking = true;
      binding.getBaudRate().then(
        () => {
          asking = false;
        },
        (err: Error) => {
          asking = false;
          // A failure after our own close() began, or after serialport's close, means nothing.
          if (this.port !== port || this.current !== "open") return;
          this.finish(port, {
            reason: "remote",
            error: new Error(`${this.name}: device gone (${err.message})`),
          });
          // Release the fd (this also ends a 0-byte read loop); its close event is ignored by finish().
          if (port.isOpen) port.close(() => {});
        },
      );
    }, PRESENCE_CHECK_MS);
    // A watchdog must not keep the process alive on its own.
    this.presenceTimer.unref();
  }

  private finish(port: SerialPort, info: LinkCloseInfo): void {
    if (this.port !== port || this.current === "closed") return;
    this.port = undefined;
    this.current = "closed";
    clearInterval(this.presenceTimer);
    this.presenceTimer = undefined;
    port.removeAllListeners("data");
    this.events.emit("close", info);
  }
}
