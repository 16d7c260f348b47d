/**
 * RTU slave side of a serial line: one link (a pty, a serial port or an
 * in-memory line), several slaves by unit id, like panels sharing an RS-485 pair.
 * Own framing and CRC (see crc.ts). Optional wire-time pacing emulates the
 * baud rate a pty ignores, so line budgets can be measured.
 */
import { type Clock, type ClockTimer, systemClock } from "../../core/index.js";
import type { Link } from "../../protocols/index.js";
import { simCrc16 } from "./crc.js";
import { type MalformedKind, malformPdu, noMalformed, type SimSlave, type SlaveFaults } from "./slave.js";

export interface PaceOptions {
  baudRate: number;
  /** Default 11 (8E1). */
  bitsPerChar?: number;
}

export interface RtuServerOptions {
  clock?: Clock;
  /** Delay each reply by the wire time of request + reply at this baud rate. */
  pace?: PaceOptions;
  /** Extra delay before every reply (the slave's processing time), ms. Default 0. */
  turnaroundMs?: number;
  /** Silence (ms) that ends a request whose length the function code does not tell. Default 5. */
  gapMs?: number;
  /** Silence (ms) between a reply and the noise burst of a `noise` fault. Default 20. */
  noiseGapMs?: number;
  /**
   * Replies waiting to go out (late or paced) at most; a request beyond it is not answered and
   * counted in `stats.busy`. A master keeps one request on a half-duplex line at a time, so this
   * only bounds a master that floods the line (each waiting reply is a timer). Default 64.
   */
  maxPendingReplies?: number;
}

export interface RtuServerStats {
  requests: number;
  replies: number;
  crcErrors: number;
  /**
   * Requests cut off: bytes that silence ended before they made a whole frame (MB serial V1.02
   * §2.5.1.1 drops them), or more bytes than any frame holds. Discarded unanswered, as a bad CRC is.
   */
  incompleteFrames: number;
  /** Frames for unit ids nobody here answers. */
  foreign: number;
  broadcasts: number;
  /** Malformed replies put on the line, by kind (the faults of SlaveFaults.malformed). */
  malformed: Record<MalformedKind, number>;
  /** Requests not answered because maxPendingReplies replies were already waiting. */
  busy: number;
}

const MAX_FRAME = 256;

/** What `trailing-garbage` appends: 0xFF makes a master expecting a frame wait for more (it must drop it). */
const TRAILING_GARBAGE = Uint8Array.of(0x00, 0xff, 0x00);
/** A `noise` burst: a line break reads as 0x00 bytes, ringing as 0xFF; no function code is 0x00. */
const NOISE_BURST = Uint8Array.of(0xff, 0x00, 0x00, 0xff, 0x00, 0x00);

export class RtuSlaveServer {
  private readonly slaves = new Map<number, SimSlave>();
  private readonly clock: Clock;
  private readonly buf = new Uint8Array(2 * MAX_FRAME);
  private len = 0;
  private gapTimer: ClockTimer | undefined;
  private readonly timers = new Set<ClockTimer>();
  private lineFreeAt = 0;
  private off: (() => void)[] = [];
  readonly stats: RtuServerStats = {
    requests: 0,
    replies: 0,
    crcErrors: 0,
    incompleteFrames: 0,
    foreign: 0,
    broadcasts: 0,
    malformed: noMalformed(),
    busy: 0,
  };
  /** Replies scheduled and not yet written. */
  private pending = 0;

  constructor(
    readonly link: Link,
    private readonly options: RtuServerOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
  }

  add(slave: SimSlave): this {
    this.slaves.set(slave.unit, slave);
    return this;
  }

  slave(unit: number): SimSlave | undefined {
    return this.slaves.get(unit);
  }

  async start(): Promise<void> {
    this.off.push(this.link.on("data", (c) => this.onData(c)));
    if (this.link.state !== "open") await this.link.open();
  }

  async stop(): Promise<void> {
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
    this.pending = 0;
    if (this.gapTimer) this.clock.clearTimeout(this.gapTimer);
    for (const off of this.off) off();
    this.off = [];
    await this.link.close();
  }

  private onData(chunk: Uint8Array): void {
    if (this.len + chunk.length > this.buf.length) {
      // More than any frame: garbage, resynchronise.
      this.discard();
      if (chunk.length > this.buf.length) {
        this.stats.incompleteFrames++;
        return;
      }
    }
    this.buf.set(chunk, this.len);
    this.len += chunk.length;
    this.parse(false);
    if (this.len > 0) {
      if (this.gapTimer) this.clock.clearTimeout(this.gapTimer);
      this.gapTimer = this.clock.setTimeout(() => {
        this.gapTimer = undefined;
        this.parse(true);
      }, this.options.gapMs ?? 5);
    }
  }

  /** Length of the request at the buffer head, or 0 if unknown yet, or -1 if the function does not tell. */
  private requestLength(): number {
    if (this.len < 2) return 0;
    const fn = this.buf[1]!;
    if (fn >= 0x01 && fn <= 0x06) return 8;
    if (fn === 0x0f || fn === 0x10) return this.len < 7 ? 0 : 9 + this.buf[6]!;
    return -1;
  }

  private parse(silence: boolean): void {
    for (;;) {
      let need = this.requestLength();
      if (need === 0) {
        // Too short to tell its length (a lone noise byte, a cut-off 0x0F/0x10 head): silence ends
        // it like any incomplete frame, or it would poison the master's next request.
        if (silence) this.discard();
        return;
      }
      if (need === -1) {
        // Unknown function: MB serial §2.5.1.1 ends a frame on silence; take what we have.
        if (!silence) return;
        need = this.len;
      }
      if (need > MAX_FRAME) {
        this.discard();
        return;
      }
      if (this.len < need) {
        if (silence) this.discard(); // an incomplete frame followed by silence is discarded
        return;
      }
      const frame = this.buf.slice(0, need);
      this.buf.copyWithin(0, need, this.len);
      this.len -= need;
      this.handleFrame(frame);
    }
  }

  /** Drops the bytes held (an incomplete or oversized request), counted once. */
  private discard(): void {
    if (this.len === 0) return;
    this.stats.incompleteFrames++;
    this.len = 0;
  }

  private handleFrame(frame: Uint8Array): void {
    const crc = simCrc16(frame, 0, frame.length - 2);
    // MB serial V1.02 §2.5.1.2: a slave discards a frame with a bad CRC and does not answer.
    if (frame[frame.length - 2] !== (crc & 0xff) || frame[frame.length - 1] !== crc >>> 8) {
      this.stats.crcErrors++;
      this.len = 0;
      return;
    }
    this.stats.requests++;
    const unit = frame[0]!;
    const pdu = frame.subarray(1, frame.length - 2);
    if (unit === 0) {
      // §2.2: broadcast writes are executed by every slave and answered by none.
      this.stats.broadcasts++;
      if (pdu[0] === 0x05 || pdu[0] === 0x06 || pdu[0] === 0x0f || pdu[0] === 0x10)
        for (const s of this.slaves.values()) s.handle(pdu);
      return;
    }
    const slave = this.slaves.get(unit);
    if (!slave) {
      this.stats.foreign++;
      return;
    }
    const faults = slave.faults;
    if (faults.silent) return;
    if (this.pending >= (this.options.maxPendingReplies ?? 64)) {
      this.stats.busy++;
      return;
    }
    const replyPdu =
      faults.exception !== undefined ? Uint8Array.of(pdu[0]! | 0x80, faults.exception) : slave.handle(pdu);
    const reply = this.malform(faults, unit, replyPdu);
    this.sendLater(
      reply,
      frame.length,
      faults.lateMs + (slave.replyDelayMs ?? 0),
      this.take(faults, "noise"),
    );
  }

  /** Spends one reply of an armed malformed-reply fault; counts it. */
  private take(faults: SlaveFaults, kind: MalformedKind): boolean {
    if (faults.malformed[kind] <= 0) return false;
    faults.malformed[kind]--;
    this.stats.malformed[kind]++;
    return true;
  }

  /** The reply ADU, with whatever malformed-reply faults are armed applied (several may combine). */
  private malform(faults: SlaveFaults, unit: number, replyPdu: Uint8Array): Uint8Array {
    const pdu = malformPdu(faults, replyPdu, (kind) => this.take(faults, kind));
    const reply = new Uint8Array(pdu.length + 3);
    reply[0] = this.take(faults, "wrong-unit") ? (unit % 247) + 1 : unit;
    reply.set(pdu, 1);
    const rc = simCrc16(reply, 0, reply.length - 2);
    reply[reply.length - 2] = rc & 0xff;
    reply[reply.length - 1] = rc >>> 8;
    if (faults.corruptCrc > 0) {
      faults.corruptCrc--;
      reply[reply.length - 1] = (reply[reply.length - 1]! ^ 0xff) & 0xff;
    }
    if (this.take(faults, "truncate")) return reply.subarray(0, Math.max(1, reply.length >>> 1));
    if (this.take(faults, "trailing-garbage")) {
      const out = new Uint8Array(reply.length + TRAILING_GARBAGE.length);
      out.set(reply);
      out.set(TRAILING_GARBAGE, reply.length);
      return out;
    }
    return reply;
  }

  private sendLater(reply: Uint8Array, requestBytes: number, lateMs: number, noise: boolean): void {
    let delay = lateMs + (this.options.turnaroundMs ?? 0);
    const pace = this.options.pace;
    const bpc = pace?.bitsPerChar ?? 11;
    const noiseGap = this.options.noiseGapMs ?? 20;
    if (pace) {
      // Wire time: the request took this long to arrive and the reply takes this long to leave,
      // and a slave only knows the request ended after t3.5 of silence (MB serial V1.02 §2.5.1.1).
      const t35 = pace.baudRate > 19200 ? 1.75 : (3.5 * bpc * 1000) / pace.baudRate;
      const wire = ((requestBytes + reply.length) * bpc * 1000) / pace.baudRate + t35;
      const now = this.clock.monotonic();
      // Half duplex: a reply cannot start before the line is free.
      const start = Math.max(now, this.lineFreeAt);
      this.lineFreeAt = start + delay + wire;
      delay += start - now + wire;
      // The noise burst holds the line too.
      if (noise) this.lineFreeAt += noiseGap + (NOISE_BURST.length * bpc * 1000) / pace.baudRate;
    }
    this.pending++;
    const write = () => {
      this.pending--;
      if (this.link.state !== "open") return;
      this.stats.replies++;
      this.link.write(reply);
      if (noise) this.later(noiseGap, () => this.link.state === "open" && this.link.write(NOISE_BURST));
    };
    this.later(delay, write);
  }

  /** Runs `fn` after `ms` (at once when 0), unless stop() comes first. */
  private later(ms: number, fn: () => void): void {
    if (ms <= 0) {
      fn();
      return;
    }
    const t = this.clock.setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }
}
