/**
 * One bus per serial port or TCP endpoint (DESIGN "The bus owns the link"):
 * it owns its link, runs ONE transaction at a time across all unit ids, and
 * classifies failures so that each gets its own recovery:
 *
 * - timeout         -> retried up to `retries`, then returned as a typed failure
 *                      (the caller marks the device); the bus carries on.
 * - CRC / framing   -> RTU: flush the line (drop buffered bytes, wait for silence), then retry/fail.
 *                      TCP: drop buffered bytes and resynchronise on the next MBAP header (the
 *                      request waits for its reply or timeout); a second header that frames
 *                      nothing before any that does: the stream is lost, the link is reopened.
 * - transport       -> the link closed or errored: every pending request settles,
 *                      and the link is reopened with capped exponential backoff.
 *                      Other buses are unaffected (nothing here is shared).
 * - exception       -> a valid reply: returned with the exception's name, never retried.
 *
 * A reply that does not match the outstanding request (unit id, function, byte
 * count, echo; MBAP transaction and protocol id on TCP) is discarded and counted, which is
 * how a late reply after a timeout is kept from matching the next request
 * (eModbus #74, libmodbus #83).
 *
 * Hand-written rather than modbus-serial: see README.md in this folder.
 */
import { type Clock, type ClockTimer, systemClock } from "../../core/index.js";
import type { Link, LinkCloseInfo } from "../links/link.js";
import {
  type BusFraming,
  type BusMode,
  type PreparedRequest,
  RtuFraming,
  TcpFraming,
} from "./bus-framing.js";
import { checkReplyPdu, type ModbusRequest } from "./pdu.js";
import { BoundedQueue } from "./queue.js";

export type { BusMode, PreparedRequest } from "./bus-framing.js";

export interface BackoffOptions {
  /** First reconnect delay, ms. Default 200. */
  initialMs?: number;
  /** Cap, ms. Default 10000. */
  maxMs?: number;
  /** Growth per failed attempt. Default 2. */
  factor?: number;
}

export interface BusOptions {
  /** Names the bus in statistics and errors, e.g. "rs485-1" or "kiosk-3". */
  name: string;
  link: Link;
  mode: BusMode;
  /**
   * The device closes a connection idle this long, ms (GK-3 datasheet: "closes a connection
   * idle for 120 s"). The bus then closes it first, a margin before, and opens a fresh one at
   * once: not a loss (no transport error, reconnect or "lost" event); requests wait meanwhile.
   * Without it a device polled every 120 s or more lost its link before every poll. Default none.
   */
  peerIdleCloseMs?: number;
  clock?: Clock;
  /** RTU only: serial speed, for the silent interval and the wire-time allowance. Default 9600. */
  baudRate?: number;
  /** RTU only: bits per character (11 for 8E1/8N2, 10 for 8N1). Default 11. */
  bitsPerChar?: number;
  /**
   * Reply timeout per attempt, ms, counted from the write plus the frames' wire time.
   * Default 200 on RTU (MFS-8 datasheet: answers within 50 ms, allow at least 100), 1000 on TCP.
   */
  timeoutMs?: number;
  /** Extra attempts after a timeout or CRC error. Default 1. */
  retries?: number;
  /** Poll lane capacity. Overflow policy: the new request is refused (failure "overflow"). Default 256. */
  queueLimit?: number;
  /** Command lane capacity, same policy. Default 64. */
  commandQueueLimit?: number;
  backoff?: BackoffOptions;
  /** RTU broadcast (unit 0) writes get no reply; wait this long before the next request (MB serial §2.4.1). Default 100. */
  broadcastDelayMs?: number;
  /** Told when the link cannot be opened, is lost, or comes back (the owner logs why; the bus only retries). */
  onLinkEvent?: (event: BusLinkEvent) => void;
}

/** What happened to a bus's link: an open that failed, a loss, or the link up again after either. */
export type BusLinkEvent =
  | { kind: "open-failed"; error: Error; retryInMs: number }
  | { kind: "lost"; reason: string; error: Error | undefined; retryInMs: number }
  | { kind: "recovered" };

export type Priority = "command" | "poll";

export interface RequestOptions {
  /** Commands go ahead of every queued poll. Default "poll". */
  priority?: Priority;
  /** Admission control: a request whose key is queued or in flight is refused ("duplicate"). */
  key?: string;
  timeoutMs?: number;
  retries?: number;
}

export type ModbusFailure =
  /**
   * No reply that answers the request. `heard` says what came instead, if anything: frames that
   * answered another unit, function or length, or on TCP another transaction id (`mismatched`), or
   * the start of a reply that never ended (`incomplete`): a wiring fault is silent, another master
   * or a wrong map is not.
   */
  | { kind: "timeout"; attempts: number; heard?: "mismatched" | "incomplete" }
  | { kind: "exception"; code: number; name: string }
  | { kind: "crc"; attempts: number }
  | { kind: "framing"; attempts: number }
  | { kind: "transport"; message: string }
  | { kind: "overflow" }
  | { kind: "duplicate" }
  | { kind: "closed" };

interface ResultBase {
  unit: number;
  fn: number;
  /** Monotonic ms: when submitted, when its first attempt began (silent interval included), when settled. */
  queuedAt: number;
  startedAt: number | undefined;
  completedAt: number;
  /** Wall-clock epoch ms when settled. */
  at: number;
  attempts: number;
}
export type ModbusResult =
  | (ResultBase & { ok: true; words: Uint16Array | undefined })
  | (ResultBase & { ok: false; failure: ModbusFailure });

export interface BusStats {
  name: string;
  mode: BusMode;
  linkState: LinkPhase;
  /** Requests accepted into a queue. */
  requests: number;
  /** Matching replies, exceptions included. */
  replies: number;
  exceptions: number;
  /** Attempts that timed out (a retried request can count twice). */
  timeouts: number;
  retries: number;
  crcErrors: number;
  framingErrors: number;
  /** Frames or stale byte runs that matched no outstanding request (late replies included). */
  discarded: number;
  discardedBytes: number;
  transportErrors: number;
  /** Successful reopenings after a loss. */
  reconnects: number;
  overflows: number;
  duplicates: number;
  queueDepth: number;
  commandQueueDepth: number;
  busyMs: number;
  wallMs: number;
  /** busyMs / wallMs since start(). */
  utilisation: number;
}

/** Link supervision: down -> connecting -> up; a loss goes to backoff -> connecting. */
export type LinkPhase = "down" | "connecting" | "up" | "backoff" | "closed";
/** Transaction engine: one transaction at a time. */
type Engine = "idle" | "silence" | "awaiting" | "flushing";

interface Txn {
  prep: PreparedRequest;
  priority: Priority;
  key: string | undefined;
  timeoutMs: number;
  retries: number;
  resolve: (r: ModbusResult) => void;
  queuedAt: number;
  startedAt: number | undefined;
  attemptStartedAt: number;
  attempts: number;
  /** Frames received while this request waited that answered something else. */
  mismatched: number;
}

export class ModbusBus {
  readonly name: string;
  readonly mode: BusMode;
  private readonly link: Link;
  private readonly clock: Clock;
  /** RTU or TCP: encoding, reply framing and matching, silence, line-error recovery. */
  private readonly framing: BusFraming;
  private readonly t35: number;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly broadcastDelayMs: number;
  private readonly backoff: Required<BackoffOptions>;

  private readonly polls: BoundedQueue<Txn>;
  private readonly commands: BoundedQueue<Txn>;
  private readonly keys = new Set<string>();

  private phase: LinkPhase = "down";
  private engine: Engine = "idle";
  private current: Txn | undefined;
  private timer: ClockTimer | undefined;
  private reconnectTimer: ClockTimer | undefined;
  private nextBackoffMs: number;
  private everUp = false;
  private lastActivity = Number.NEGATIVE_INFINITY;
  private flushUntil = 0;
  private flushFailure: "crc" | "framing" = "crc";
  /** TCP: a header that delimits nothing was dropped and no well-framed one has come since. */
  private unsynced = false;
  private pumpScheduled = false;
  private startedAt: number | undefined;
  private unsubscribe: (() => void)[] = [];
  private readonly onLinkEvent: ((event: BusLinkEvent) => void) | undefined;
  /** An open failed or the link was lost since it was last up: the next open is a recovery. */
  private troubled = false;
  /** Idle this long, the link is replaced before the device closes it (peerIdleCloseMs less a margin); 0: never. */
  private readonly idleRefreshMs: number;
  private idleTimer: ClockTimer | undefined;
  /** The link is being replaced for idleness: its close is no loss, requests queue meanwhile. */
  private refreshing = false;

  private readonly counters = {
    requests: 0,
    replies: 0,
    exceptions: 0,
    timeouts: 0,
    retries: 0,
    crcErrors: 0,
    framingErrors: 0,
    discarded: 0,
    discardedBytes: 0,
    transportErrors: 0,
    reconnects: 0,
    overflows: 0,
    duplicates: 0,
    busyMs: 0,
  };

  constructor(options: BusOptions) {
    this.name = options.name;
    this.mode = options.mode;
    this.link = options.link;
    this.clock = options.clock ?? systemClock;
    this.framing =
      options.mode === "rtu"
        ? new RtuFraming(options.baudRate ?? 9600, options.bitsPerChar ?? 11)
        : new TcpFraming();
    this.t35 = this.framing.silenceMs;
    this.timeoutMs = options.timeoutMs ?? this.framing.defaultTimeoutMs;
    this.retries = options.retries ?? 1;
    this.broadcastDelayMs = options.broadcastDelayMs ?? 100;
    this.onLinkEvent = options.onLinkEvent;
    this.backoff = {
      initialMs: options.backoff?.initialMs ?? 200,
      maxMs: options.backoff?.maxMs ?? 10_000,
      factor: options.backoff?.factor ?? 2,
    };
    this.nextBackoffMs = this.backoff.initialMs;
    const peerIdle = options.peerIdleCloseMs ?? 0;
    // A margin of 10 % (at most 10 s) for the device's own timer and the close's round trip.
    this.idleRefreshMs = peerIdle > 0 ? peerIdle - Math.min(10_000, peerIdle / 10) : 0;
    this.polls = new BoundedQueue(options.queueLimit ?? 256);
    this.commands = new BoundedQueue(options.commandQueueLimit ?? 64);
  }

  get linkPhase(): LinkPhase {
    return this.phase;
  }

  /** Opens the link; resolves once the first attempt settled (on failure, retries run on backoff). */
  async start(): Promise<void> {
    if (this.phase !== "down") return;
    this.startedAt = this.clock.monotonic();
    this.unsubscribe.push(
      this.link.on("data", (chunk) => this.onData(chunk)),
      this.link.on("close", (info) => this.onLinkClose(info)),
    );
    await this.connect();
  }

  /** Encodes a request once for this bus's framing (validates it; throws ModbusRequestError). */
  prepare(request: ModbusRequest): PreparedRequest {
    return this.framing.prepare(request);
  }

  /** Encodes and submits. Failures are typed results; it rejects only for an invalid request (ModbusRequestError). */
  request(request: ModbusRequest, options: RequestOptions = {}): Promise<ModbusResult> {
    let prep: PreparedRequest;
    try {
      prep = this.prepare(request);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.submit(prep, options);
  }

  /** Submits a prepared request. Never rejects: failures are typed results. */
  submit(prep: PreparedRequest, options: RequestOptions = {}): Promise<ModbusResult> {
    const now = this.clock.monotonic();
    const refuse = (failure: ModbusFailure) =>
      Promise.resolve(this.result(prep, now, undefined, 0, { ok: false, failure }));
    if (this.phase === "closed") return refuse({ kind: "closed" });
    // Fail fast while the link is down: queued requests would only age behind the backoff (not
    // while an idle link is replaced: that takes a connect, and fails them all if it fails).
    if (this.phase !== "up" && !this.refreshing) {
      return refuse({ kind: "transport", message: `link ${this.link.name} is ${this.phase}` });
    }
    const key = options.key;
    if (key !== undefined && this.keys.has(key)) {
      this.counters.duplicates++;
      return refuse({ kind: "duplicate" });
    }
    const priority = options.priority ?? "poll";
    return new Promise<ModbusResult>((resolve) => {
      const txn: Txn = {
        prep,
        priority,
        key,
        timeoutMs: options.timeoutMs ?? this.timeoutMs,
        retries: options.retries ?? this.retries,
        resolve,
        queuedAt: now,
        startedAt: undefined,
        attemptStartedAt: now,
        attempts: 0,
        mismatched: 0,
      };
      const lane = priority === "command" ? this.commands : this.polls;
      if (!lane.push(txn)) {
        this.counters.overflows++;
        resolve(this.result(prep, now, undefined, 0, { ok: false, failure: { kind: "overflow" } }));
        return;
      }
      this.counters.requests++;
      if (key !== undefined) this.keys.add(key);
      this.schedulePump();
    });
  }

  /** True when a request with this key is queued or in flight. */
  isPending(key: string): boolean {
    return this.keys.has(key);
  }

  stats(): BusStats {
    const now = this.clock.monotonic();
    const wallMs = this.startedAt === undefined ? 0 : now - this.startedAt;
    const busyMs =
      this.counters.busyMs +
      (this.current && this.engine !== "idle" ? now - this.current.attemptStartedAt : 0);
    return {
      name: this.name,
      mode: this.mode,
      linkState: this.phase,
      ...this.counters,
      busyMs,
      queueDepth: this.polls.length,
      commandQueueDepth: this.commands.length,
      wallMs,
      utilisation: wallMs > 0 ? Math.min(1, busyMs / wallMs) : 0,
    };
  }

  /** Stops for good: every queued and in-flight request settles with "closed"; the link is closed. */
  async close(): Promise<void> {
    if (this.phase === "closed") return;
    this.phase = "closed";
    if (this.reconnectTimer) this.clock.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    if (this.idleTimer) this.clock.clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.failAll({ kind: "closed" });
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
    await this.link.close();
  }

  // ---- link supervision ---------------------------------------------------

  private async connect(): Promise<void> {
    if (this.phase === "closed") return;
    this.phase = "connecting";
    const refresh = this.refreshing;
    try {
      await this.link.open();
    } catch (err) {
      if (this.isClosed()) return;
      if (refresh) {
        this.refreshing = false;
        this.failAll({ kind: "transport", message: `link ${this.link.name}: ${(err as Error).message}` });
      }
      const retryInMs = this.scheduleReconnect();
      this.troubled = true;
      this.tell({
        kind: "open-failed",
        error: err instanceof Error ? err : new Error(String(err)),
        retryInMs,
      });
      return;
    }
    // close() may have run while the open was in progress.
    if (this.isClosed()) {
      await this.link.close();
      return;
    }
    if (this.everUp && !refresh) this.counters.reconnects++;
    this.refreshing = false;
    this.everUp = true;
    this.phase = "up";
    this.armIdleRefresh();
    this.nextBackoffMs = this.backoff.initialMs;
    this.framing.clear();
    this.unsynced = false;
    this.lastActivity = this.clock.monotonic();
    this.schedulePump();
    if (this.troubled) {
      this.troubled = false;
      this.tell({ kind: "recovered" });
    }
  }

  /** A listener's mistake must not break link supervision (connect runs from a timer). */
  private tell(event: BusLinkEvent): void {
    try {
      this.onLinkEvent?.(event);
    } catch {
      // ignored: the bus keeps retrying whatever the listener does
    }
  }

  private isClosed(): boolean {
    return this.phase === "closed";
  }

  /** Returns the delay before the next attempt, ms. */
  private scheduleReconnect(): number {
    this.phase = "backoff";
    const delay = this.nextBackoffMs;
    this.nextBackoffMs = Math.min(this.backoff.maxMs, this.nextBackoffMs * this.backoff.factor);
    this.reconnectTimer = this.clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, delay);
    this.reconnectTimer.unref();
    return delay;
  }

  /** Checks for idleness once per idleRefreshMs (activity only moves lastActivity: no timer per request). */
  private armIdleRefresh(): void {
    if (this.idleRefreshMs <= 0 || this.idleTimer !== undefined) return;
    const due = Math.max(0, this.lastActivity + this.idleRefreshMs - this.clock.monotonic());
    this.idleTimer = this.clock.setTimeout(() => {
      this.idleTimer = undefined;
      this.onIdleCheck();
    }, due);
    this.idleTimer.unref();
  }

  private onIdleCheck(): void {
    if (this.phase !== "up") return;
    const idle = this.engine === "idle" && this.current === undefined;
    if (!idle || this.clock.monotonic() - this.lastActivity < this.idleRefreshMs) {
      this.armIdleRefresh();
      return;
    }
    // Replaced before the device closes it: its close (local) is not a loss (onLinkClose).
    this.refreshing = true;
    this.phase = "connecting";
    void this.link.close().catch(() => {});
  }

  private onLinkClose(info: LinkCloseInfo): void {
    if (this.phase === "closed") return;
    if (this.refreshing && info.reason === "local") {
      void this.connect();
      return;
    }
    this.counters.transportErrors++;
    this.failAll({
      kind: "transport",
      message: `link ${this.link.name} closed (${info.reason}${info.error ? `: ${info.error.message}` : ""})`,
    });
    const retryInMs = this.scheduleReconnect();
    this.troubled = true;
    this.tell({ kind: "lost", reason: info.reason, error: info.error, retryInMs });
  }

  /** Transport failure found by us (write threw, TCP stream lost): drop the link; its close event reconnects. */
  private dropLink(): void {
    if (this.link.state === "open") void this.link.close().catch(() => {});
  }

  // ---- transaction engine -------------------------------------------------

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    // Deferred so a reply handler finishes parsing its chunk before the next request goes out.
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.engine !== "idle" || this.phase !== "up" || this.current) return;
    const txn = this.commands.shift() ?? this.polls.shift();
    if (!txn) return;
    this.current = txn;
    txn.startedAt = this.clock.monotonic();
    this.beginAttempt(txn);
  }

  private beginAttempt(txn: Txn): void {
    const now = this.clock.monotonic();
    if (txn.attempts > 0) this.counters.busyMs += now - txn.attemptStartedAt; // the failed attempt's line time
    txn.attemptStartedAt = now;
    // MB serial V1.02 §2.5.1.1: frames are separated by a silent interval of at least 3.5 character times.
    const wait = this.lastActivity + this.t35 - txn.attemptStartedAt;
    if (wait > 0) {
      this.engine = "silence";
      this.timer = this.clock.setTimeout(() => this.send(txn), Math.ceil(wait));
      return;
    }
    this.send(txn);
  }

  private send(txn: Txn): void {
    this.timer = undefined;
    if (this.current !== txn) return;
    // Bytes arrived during the wait (a late reply): the line must be silent for t3.5 again
    // (never on TCP, where t35 is 0).
    const wait = this.lastActivity + this.t35 - this.clock.monotonic();
    if (wait > 0) {
      this.engine = "silence";
      this.timer = this.clock.setTimeout(() => this.send(txn), Math.ceil(wait));
      return;
    }
    // Whatever is buffered now answers nothing outstanding (a late reply): discard and count it.
    const stale = this.framing.clear();
    if (stale > 0) this.countDiscard(stale);
    const frame = txn.prep.frame;
    this.framing.stamp(frame);
    txn.attempts++;
    this.engine = "awaiting";
    try {
      this.link.write(frame);
    } catch (err) {
      this.counters.transportErrors++;
      this.complete(txn, { kind: "transport", message: (err as Error).message });
      this.dropLink();
      return;
    }
    this.lastActivity = this.clock.monotonic();
    if (this.framing.unanswered(txn.prep.request)) {
      // MB serial V1.02 §2.2: a broadcast gets no reply; the master waits a turnaround delay instead.
      this.timer = this.clock.setTimeout(() => this.complete(txn, undefined), this.broadcastDelayMs);
      return;
    }
    this.timer = this.clock.setTimeout(
      () => this.onTimeout(txn),
      txn.timeoutMs + this.framing.wireMs(txn.prep),
    );
  }

  private onTimeout(txn: Txn): void {
    this.timer = undefined;
    if (this.current !== txn) return;
    this.counters.timeouts++;
    const heard = txn.mismatched > 0 ? "mismatched" : this.framing.buffered > 0 ? "incomplete" : undefined;
    this.retryOrFail(
      txn,
      heard
        ? { kind: "timeout", attempts: txn.attempts, heard }
        : { kind: "timeout", attempts: txn.attempts },
    );
  }

  private retryOrFail(txn: Txn, failure: ModbusFailure): void {
    if (txn.attempts <= txn.retries && this.phase === "up") {
      this.counters.retries++;
      this.engine = "idle";
      this.beginAttempt(txn);
      return;
    }
    this.complete(txn, failure);
  }

  private onData(chunk: Uint8Array): void {
    this.lastActivity = this.clock.monotonic();
    if (this.engine === "flushing") {
      // Still talking: keep flushing until the line has been silent for t3.5.
      this.countDiscard(chunk.length);
      this.armFlushTimer();
      return;
    }
    const framing = this.framing;
    if (!framing.push(chunk)) {
      this.counters.framingErrors++;
      this.countDiscard(framing.clear() + chunk.length);
      this.lineError("framing");
      return;
    }
    this.parse();
  }

  private parse(): void {
    const framing = this.framing;
    for (;;) {
      const ev = framing.next();
      if (ev === "need-more") return;
      if (ev === "crc-error" || ev === "framing-error") {
        if (ev === "crc-error") this.counters.crcErrors++;
        else this.counters.framingErrors++;
        this.countDiscard(framing.clear());
        this.lineError(ev === "crc-error" ? "crc" : "framing");
        return;
      }
      this.unsynced = false;
      const txn = this.current;
      if (!txn || this.engine !== "awaiting" || !framing.answers(txn.prep.request)) {
        // Something came, only not the answer: a frame for another unit (on a shared RS-485 line
        // every master hears it; on TCP a controller answering as another unit), or on TCP one
        // with another transaction id (a late reply, or a controller that mixed up its replies).
        // The timeout then says so (`heard: mismatched`), not "no reply".
        if (txn && this.engine === "awaiting") txn.mismatched++;
        this.countDiscard(framing.frameLength);
        continue;
      }
      this.matchReply(txn, framing.bytes(), framing.pduStart, framing.pduEnd);
    }
  }

  private matchReply(txn: Txn, bytes: Uint8Array, pduStart: number, pduEnd: number): void {
    const check = checkReplyPdu(txn.prep.request, bytes, pduStart, pduEnd);
    if (check.kind === "mismatch") {
      txn.mismatched++;
      this.countDiscard(pduEnd - pduStart);
      return;
    }
    this.counters.replies++;
    if (check.kind === "exception") {
      this.counters.exceptions++;
      this.complete(txn, { kind: "exception", code: check.code, name: check.name });
      return;
    }
    this.complete(txn, undefined, check.words);
  }

  /**
   * CRC or framing error, the bytes held already dropped. RTU: flush the line (MB serial V1.02
   * §2.5.1.1: resynchronise on a silent interval). TCP: see resync().
   */
  private lineError(kind: "crc" | "framing"): void {
    if (this.framing.lineErrorRecovery === "resync") {
      this.resync();
      return;
    }
    const txn = this.current;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (!txn) return; // idle: the bytes are already dropped
    this.engine = "flushing";
    this.flushFailure = kind;
    // Bound the flush: a babbling line must not hold the bus for longer than one timeout.
    this.flushUntil = this.clock.monotonic() + txn.timeoutMs;
    this.armFlushTimer();
  }

  /**
   * TCP: an MBAP header whose length delimits nothing (or more bytes than a reply can be). The
   * controller answers one request at a time and in order, so the next reply starts with a header
   * of its own: the stream is in step again at the next well-framed header, and a healthy
   * connection is kept (reopening it costs polls, and two reopenings in a row cost the kiosk its
   * supervision). The request in flight waits for its reply or its timeout, which says something
   * came (`heard: mismatched`). A second such header before any well-framed one means the stream
   * cannot be resynchronised: the request fails ("framing") and the link is reopened.
   */
  private resync(): void {
    const txn = this.current;
    if (this.unsynced) {
      this.unsynced = false;
      if (txn) this.complete(txn, { kind: "framing", attempts: txn.attempts });
      this.dropLink();
      return;
    }
    this.unsynced = true;
    if (txn && this.engine === "awaiting") txn.mismatched++;
  }

  private armFlushTimer(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    const now = this.clock.monotonic();
    const wait = now >= this.flushUntil ? 0 : Math.max(1, Math.ceil(this.t35));
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      const txn = this.current;
      if (!txn || this.engine !== "flushing") return;
      this.framing.clear();
      this.retryOrFail(txn, { kind: this.flushFailure, attempts: txn.attempts });
    }, wait);
  }

  private countDiscard(bytes: number): void {
    if (bytes <= 0) return;
    this.counters.discarded++;
    this.counters.discardedBytes += bytes;
  }

  private complete(txn: Txn, failure: ModbusFailure | undefined, words?: Uint16Array): void {
    if (this.current !== txn) return;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.current = undefined;
    this.engine = "idle";
    const now = this.clock.monotonic();
    this.counters.busyMs += now - txn.attemptStartedAt;
    this.settle(txn, failure ? { ok: false, failure } : { ok: true, words }, txn.startedAt);
    this.schedulePump();
  }

  private settle(
    txn: Txn,
    outcome: { ok: true; words: Uint16Array | undefined } | { ok: false; failure: ModbusFailure },
    startedAt: number | undefined,
  ): void {
    if (txn.key !== undefined) this.keys.delete(txn.key);
    txn.resolve(this.result(txn.prep, txn.queuedAt, startedAt, txn.attempts, outcome));
  }

  private result(
    prep: PreparedRequest,
    queuedAt: number,
    startedAt: number | undefined,
    attempts: number,
    outcome: { ok: true; words: Uint16Array | undefined } | { ok: false; failure: ModbusFailure },
  ): ModbusResult {
    return {
      unit: prep.request.unit,
      fn: prep.request.fn,
      queuedAt,
      startedAt,
      completedAt: this.clock.monotonic(),
      at: this.clock.now(),
      attempts,
      ...outcome,
    };
  }

  /** Settles the in-flight request and every queued one with the same failure. */
  private failAll(failure: ModbusFailure): void {
    const txn = this.current;
    if (txn) this.complete(txn, failure);
    const fail = (t: Txn) => this.settle(t, { ok: false, failure }, undefined);
    this.commands.drain(fail);
    this.polls.drain(fail);
    this.framing.clear();
  }
}
