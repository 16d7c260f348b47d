/**
 * Chattering (ISA-18.2): an alert that raises and clears 3 or more times in
 * a minute is published once as chattering, then held (HOLD_CHATTER) until
 * it has been quiet for a minute. P1 never chatters (life safety).
 */
import type { WheelTimer } from "../time/timer-wheel.js";
import type { Alert } from "./alert.js";
import { BY_GATEWAY, Policy, type PolicyHost } from "./ports.js";

/** Hold bit: the alert is chattering; its device-driven changes wait for a quiet minute. */
export const HOLD_CHATTER = 1;

/** ISA-18.2: a chattering alarm raises and clears 3 or more times in a minute. */
export const CHATTER_COUNT = 3;
export const CHATTER_WINDOW_MS = 60_000;
/** A chattering alert is held until it has been quiet (no raise, no clear) this long. */
export const CHATTER_QUIET_MS = 60_000;

/** What chattering keeps per (subject, code): the engine's key state has these fields. */
export interface ChatterKey {
  readonly alert: Alert | null;
  /** Times of the last CHATTER_COUNT activations (ring; 0 = none). */
  readonly activations: number[];
  activationNext: number;
  chattering: boolean;
  lastChange: number;
  /** Armed one chatter window after the last change: ends chattering, forgets the key (made at first use). */
  readonly quietTimer: WheelTimer;
  /** quietTimer is armed (false, without making it, when it was never used). */
  readonly quietArmed: boolean;
}

export class Chattering<K extends ChatterKey> extends Policy {
  constructor(
    host: PolicyHost,
    /** The core forgets a key nothing is left to remember of. */
    private readonly forgetKeyIfIdle: (ks: K) => void,
  ) {
    super(host);
  }

  /** A new alert of a key that is still chattering is held from the start. */
  noteNew(ks: K, alert: Alert): void {
    if (ks.chattering && alert.priority !== 1) {
      alert.chattering = true;
      alert.holds |= HOLD_CHATTER;
    }
  }

  /** The chatter hold of an alert read back after a restart. */
  restoredHold(alert: Alert): number {
    let holds = alert.holds & HOLD_CHATTER;
    if (alert.chattering && alert.priority !== 1) holds |= HOLD_CHATTER;
    return holds;
  }

  /** An alert read back chattering keeps chattering until a quiet period from now. */
  restore(ks: K, alert: Alert): void {
    if (alert.chattering) {
      ks.chattering = true;
      this.noteChange(ks, this.clock.now());
    }
  }

  /** Nothing left to remember (the key may be forgotten). */
  idle(ks: K): boolean {
    return !ks.quietArmed && !ks.chattering;
  }

  stop(ks: K): void {
    if (ks.quietArmed) this.wheel.disarm(ks.quietTimer);
  }

  /** The subject left the configuration: its chatter history goes with it. */
  reset(ks: K): void {
    if (ks.quietArmed) this.wheel.disarm(ks.quietTimer);
    ks.chattering = false;
  }

  /**
   * Counts an activation (raise, or active again after a clear) of a non-P1
   * key; returns true when this one made it chattering, in which case the
   * alert has been published with `transition: "chattering"` and is now held.
   */
  noteActivation(ks: K, alert: Alert, now: number): boolean {
    if (alert.priority === 1) return false;
    const acts = ks.activations;
    acts[ks.activationNext] = now;
    ks.activationNext = (ks.activationNext + 1) % CHATTER_COUNT;
    this.noteChange(ks, now);
    if (ks.chattering) return false;
    // The ring's oldest entry is the one about to be overwritten next.
    const oldest = acts[ks.activationNext]!;
    if (oldest === 0 || now - oldest > CHATTER_WINDOW_MS) return false;
    ks.chattering = true;
    alert.chattering = true;
    // Not forced: a shelved or out-of-service alert stays silent even when it starts chattering.
    this.emit(alert, "chattering", BY_GATEWAY, `${CHATTER_COUNT} activations within 60 s`, false);
    alert.holds |= HOLD_CHATTER;
    return true;
  }

  /** Any raise or clear of a non-P1 key: restarts the quiet period. */
  noteChange(ks: K, now: number): void {
    ks.lastChange = now;
    this.wheel.arm(ks.quietTimer, now + (ks.chattering ? CHATTER_QUIET_MS : CHATTER_WINDOW_MS));
  }

  readonly quietEnded = (timer: WheelTimer): void => {
    const ks = timer.owner as K;
    if (ks.chattering) {
      ks.chattering = false;
      ks.activations.fill(0);
      const a = ks.alert;
      if (a) {
        a.chattering = false;
        a.holds &= ~HOLD_CHATTER;
        if (a.holds === 0) this.emit(a, "chattering-ended", BY_GATEWAY, "quiet for 60 s", true);
        else this.recorder?.alert(a);
      }
    }
    this.forgetKeyIfIdle(ks);
  };
}
