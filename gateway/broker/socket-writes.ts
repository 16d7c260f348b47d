/**
 * How the embedded broker writes to a plain TCP socket: what a turn of the
 * event loop writes to one client goes out in one writev.
 */
import { Socket } from "node:net";
import type { Writable } from "node:stream";

/**
 * aedes writes every packet (each PUBACK, each delivered message) in several
 * pieces. Corking on the first write and uncorking at the end of the loop's
 * turn (setImmediate) turns what a turn writes for a client (the PUBACKs of a
 * socket read, a drained batch of readings for a subscriber) into one writev.
 * Measured at 20,000 msg/s: writev was 16 % of the gateway's CPU with no
 * corking. Uncorking on the next tick instead left a writev per few messages
 * (deliveries come from many ticks: 13 % of the main thread at 30,000 msg/s on
 * the device listener); with setImmediate the main thread needed 49-50 % of a
 * core at 40,000 msg/s against 57 % (two interleaved pairs). A P1 does not
 * wait for the turn's end: its delivery writes at once (flushNow). Other
 * alerts may wait that one turn. end() uncorks by itself.
 *
 * One shared write function and flag per socket rather than closures per
 * connection: with 10,000 devices each on its own connection, per-connection
 * closures are memory (bench/connections.ts).
 */
const CORKED = Symbol("linli.corked");
type CorkedSocket = Socket & { [CORKED]: boolean };
const socketWrite = Socket.prototype.write;

function uncorkSocket(socket: CorkedSocket): void {
  socket[CORKED] = false;
  if (!socket.destroyed) socket.uncork();
}

/** Writes what a connection's stream holds corked now (TCP, TLS or WebSocket stream alike). */
export function flushNow(stream: Writable): void {
  if (CORKED in stream) (stream as CorkedSocket)[CORKED] = false;
  while (stream.writableCorked > 0 && !stream.destroyed) stream.uncork();
}

function coalescingWrite(this: CorkedSocket, ...args: Parameters<Socket["write"]>): boolean {
  if (!this[CORKED]) {
    this[CORKED] = true;
    this.cork();
    setImmediate(uncorkSocket, this);
  }
  return socketWrite.apply(this, args);
}

export function coalesceWrites(socket: Socket): void {
  (socket as CorkedSocket)[CORKED] = false;
  socket.write = coalescingWrite as Socket["write"];
}
