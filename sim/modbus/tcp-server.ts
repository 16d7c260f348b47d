/**
 * Modbus TCP server for one simulated slave (a GK-3 controller): own MBAP
 * parsing, requests answered in order per connection, at most `maxConnections`
 * (datasheet: 2; a further connection is closed at once), idle connections
 * closed after `idleTimeoutMs` (datasheet: 120 s).
 *
 * Requests a master pipelines wait in a bounded queue per connection (`maxQueuedRequests`). The
 * datasheet gives no depth, only that requests are answered in order; a controller whose queue is
 * full takes nothing more off the wire, as an embedded TCP stack does when its application stops
 * reading: the socket is paused (the TCP window closes, the master's requests wait in the kernel's
 * buffers) and resumed as replies leave. Nothing is dropped or reordered; a master that gave up
 * meanwhile discards the late replies by their transaction ids (datasheet). Counted in `stalls`.
 *
 * A malformed request header does not close the connection (the datasheet is silent; a Modbus TCP
 * server discards a bad frame and reads on): a frame with another protocol id is skipped whole
 * (`foreignProtocol`), a length that delimits nothing drops the bytes held (`framingErrors`).
 * Neither is answered: no reply can be trusted to match a request the header does not frame.
 */
import net from "node:net";
import { type Clock, type ClockTimer, systemClock } from "../../core/index.js";
import { type MalformedKind, malformPdu, noMalformed, type SimSlave, type SlaveFaults } from "./slave.js";

export interface TcpServerOptions {
  host?: string;
  /** 0 picks an ephemeral port. */
  port?: number;
  clock?: Clock;
  maxConnections?: number;
  idleTimeoutMs?: number;
  /** Unit ids answered; others get no reply. Default [slave.unit, 255]. */
  units?: number[];
  /** Requests read but not yet answered, per connection, before reading pauses. Default 16. */
  maxQueuedRequests?: number;
}

export interface TcpServerStats {
  connections: number;
  refused: number;
  idleClosed: number;
  requests: number;
  replies: number;
  /** Times a connection's request queue was full and reading paused (a pipelining master). */
  stalls: number;
  /** Malformed replies sent, by kind (the faults of SlaveFaults.malformed, TCP_MALFORMED_KINDS). */
  malformed: Record<MalformedKind, number>;
  /** Well-delimited request frames with a protocol id other than 0 (MODBUS): discarded, no reply. */
  foreignProtocol: number;
  /** Request headers whose length delimits nothing (0, 1, over 254): the bytes held were dropped. */
  framingErrors: number;
}

interface Conn {
  socket: net.Socket;
  /** Bytes read and not yet parsed: a partial ADU, or whole ones waiting while the queue is full. */
  buf: Buffer;
  idle: ClockTimer | undefined;
  /** Replies leave in request order even when a reply is late. */
  outbox: Promise<void>;
  /** Requests taken in and not yet answered (bounded by maxQueuedRequests). */
  queued: number;
  paused: boolean;
}

const MAX_ADU = 260;
const EMPTY = Buffer.alloc(0);
/** What `trailing-garbage` appends after a reply, in the same write (as on RTU). */
const TRAILING_GARBAGE = Uint8Array.of(0x00, 0xff, 0x00);

export class ModbusTcpSlaveServer {
  private server: net.Server | undefined;
  private readonly conns = new Set<Conn>();
  private readonly clock: Clock;
  private readonly timers = new Set<ClockTimer>();
  readonly stats: TcpServerStats = {
    connections: 0,
    refused: 0,
    idleClosed: 0,
    requests: 0,
    replies: 0,
    stalls: 0,
    malformed: noMalformed(),
    foreignProtocol: 0,
    framingErrors: 0,
  };
  port = 0;

  constructor(
    readonly slave: SimSlave,
    private readonly options: TcpServerOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  start(): Promise<number> {
    const server = net.createServer((s) => this.accept(s));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.port ?? 0, this.options.host ?? "127.0.0.1", () => {
        server.off("error", reject);
        this.port = (server.address() as net.AddressInfo).port;
        resolve(this.port);
      });
    });
  }

  /** Closes every connection (a kiosk that goes away) but keeps listening. */
  dropConnections(): void {
    for (const c of this.conns) c.socket.destroy();
  }

  async stop(): Promise<void> {
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
    for (const c of this.conns) {
      if (c.idle) this.clock.clearTimeout(c.idle);
      c.socket.destroy();
    }
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  private accept(socket: net.Socket): void {
    socket.on("error", () => {});
    if (this.conns.size >= (this.options.maxConnections ?? 2)) {
      this.stats.refused++;
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.stats.connections++;
    const conn: Conn = {
      socket,
      buf: Buffer.alloc(0),
      idle: undefined,
      outbox: Promise.resolve(),
      queued: 0,
      paused: false,
    };
    this.conns.add(conn);
    this.touch(conn);
    socket.on("data", (chunk: Buffer) => this.onData(conn, chunk));
    socket.on("close", () => {
      if (conn.idle) this.clock.clearTimeout(conn.idle);
      this.conns.delete(conn);
    });
  }

  private touch(conn: Conn): void {
    if (conn.idle) this.clock.clearTimeout(conn.idle);
    conn.idle = this.clock.setTimeout(() => {
      this.stats.idleClosed++;
      conn.socket.destroy();
    }, this.options.idleTimeoutMs ?? 120_000);
    conn.idle.unref();
  }

  private onData(conn: Conn, chunk: Buffer): void {
    this.touch(conn);
    conn.buf = conn.buf.length ? Buffer.concat([conn.buf, chunk]) : chunk;
    this.parse(conn);
  }

  /** Takes whole ADUs off the buffer while the queue has room; pauses reading when it has none. */
  private parse(conn: Conn): void {
    const max = this.options.maxQueuedRequests ?? 16;
    while (conn.buf.length >= 7) {
      const length = conn.buf.readUInt16BE(4);
      // A length outside 2..254 delimits nothing: drop what is held, as a controller's stack
      // drops a bad frame, and keep the connection. A master sends its next request after the
      // reply or its timeout, so that request's header puts the stream in step again.
      if (length < 2 || length > MAX_ADU - 6) {
        this.stats.framingErrors++;
        conn.buf = EMPTY;
        break;
      }
      if (conn.buf.length < 6 + length) break;
      // MB TCP implementation guide V1.0b, the server's MBAP check: a protocol id other than MODBUS (0) is simply
      // discarded; its length still delimits it, so the requests after it are read on.
      if (conn.buf.readUInt16BE(2) !== 0) {
        this.stats.foreignProtocol++;
        conn.buf = conn.buf.subarray(6 + length);
        continue;
      }
      if (conn.queued >= max) break;
      const adu = conn.buf.subarray(0, 6 + length);
      conn.buf = conn.buf.subarray(6 + length);
      this.handle(conn, Buffer.from(adu));
    }
    if (conn.queued >= max && !conn.paused) {
      conn.paused = true;
      this.stats.stalls++;
      conn.socket.pause();
    }
  }

  /** A reply left (or was given up): room in the queue again, so read on. */
  private answered(conn: Conn): void {
    conn.queued--;
    if (!conn.paused || conn.socket.destroyed) return;
    conn.paused = false;
    this.parse(conn);
    if (!conn.paused) conn.socket.resume();
  }

  /** Spends one reply of an armed malformed-reply fault; counts it. */
  private take(faults: SlaveFaults, kind: MalformedKind): boolean {
    if (faults.malformed[kind] <= 0) return false;
    faults.malformed[kind]--;
    this.stats.malformed[kind]++;
    return true;
  }

  /** The reply ADU (MBAP header + PDU), with whatever malformed-reply faults are armed applied. */
  private malform(faults: SlaveFaults, request: Buffer, unit: number, replyPdu: Uint8Array): Buffer {
    const pdu = malformPdu(faults, replyPdu, (kind) => this.take(faults, kind));
    const reply = Buffer.alloc(7 + pdu.length);
    // MB TCP V1.0b §3.1.3: the transaction id is echoed, protocol id 0, length = unit id + PDU.
    const tid = request.readUInt16BE(0);
    reply.writeUInt16BE(this.take(faults, "wrong-transaction") ? (tid + 1) & 0xffff : tid, 0);
    reply.writeUInt16BE(this.take(faults, "wrong-protocol") ? 1 : 0, 2);
    reply.writeUInt16BE(pdu.length + (this.take(faults, "wrong-length") ? 0 : 1), 4);
    reply[6] = this.take(faults, "wrong-unit") ? (unit % 247) + 1 : unit;
    reply.set(pdu, 7);
    if (this.take(faults, "truncate")) return reply.subarray(0, Math.max(1, reply.length >>> 1));
    if (this.take(faults, "trailing-garbage")) return Buffer.concat([reply, TRAILING_GARBAGE]);
    return reply;
  }

  private handle(conn: Conn, adu: Buffer): void {
    this.stats.requests++;
    const unit = adu[6]!;
    const units = this.options.units ?? [this.slave.unit, 255];
    const faults = this.slave.faults;
    if (!units.includes(unit) || faults.silent) return;
    const pdu = adu.subarray(7);
    const replyPdu =
      faults.exception !== undefined
        ? Uint8Array.of(pdu[0]! | 0x80, faults.exception)
        : this.slave.handle(pdu);
    const reply = this.malform(faults, adu, unit, replyPdu);
    const late = faults.lateMs;
    conn.queued++;
    conn.outbox = conn.outbox.then(async () => {
      if (late > 0) {
        await new Promise<void>((resolve) => {
          const t = this.clock.setTimeout(() => {
            this.timers.delete(t);
            resolve();
          }, late);
          this.timers.add(t);
        });
      }
      if (!conn.socket.destroyed) {
        this.stats.replies++;
        conn.socket.write(reply);
      }
      this.answered(conn);
    });
  }
}
