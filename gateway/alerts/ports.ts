/**
 * The alert engine's edges: what it tells its listener (published changes)
 * and its recorder (the journal), and what its policies (shelving,
 * chattering, flood, escalation, out of service) may use of its core.
 */
import type { AlertCode, AlertState, Clock, Priority } from "../../core/index.js";
import type { TimerWheel } from "../time/timer-wheel.js";
import type { Alert, AlertSubject, IsaState, Transition } from "./alert.js";

/** Who did it, in events, when not an operator. */
export const BY_DEVICE = "device";
export const BY_GATEWAY = "gateway";

/**
 * One transition, as published on `linli/<site>/alerts/events`. A single
 * instance is refilled for every event (listeners serialise it synchronously).
 */
export class AlertEvent {
  /** `<alertId>:<rev>`: unique per published change, stable across re-sends. */
  eventId = "";
  alertId = "";
  code: AlertCode = "TAMPER";
  priority: Priority = 4;
  deviceId = "";
  household: string | null = null;
  from: IsaState = "normal";
  to: IsaState = "normal";
  /** The lifecycle state after the transition (docs/topics.md vocabulary, a public contract). */
  state: AlertState = "active-unacknowledged";
  transition: Transition = "raised";
  by = "";
  /** The operator account whose request made the change (`by` is free text); null: a device or the gateway. */
  account: string | null = null;
  reason = "";
  at = 0;
}

export interface FloodStatus {
  state: "flood" | "normal";
  since: number;
  newAlerts10m: number;
}

export interface AlertListener {
  /** A published change: the alert's state topic and the event. */
  alertChanged(alert: Alert, transition: Transition, event: AlertEvent): void;
  /** An unacknowledged P1/P2 passed its escalation time (again). */
  escalated?(alert: Alert, level: number, unacknowledgedForMs: number): void;
  floodChanged?(status: FloodStatus): void;
}

/** Shelving of a (subject, code), as kept across a restart. */
export interface ShelveRecord {
  id: string;
  by: string;
  /** The operator account that shelved; absent in records written before it existed. */
  account?: string | null;
  at: number;
  until: number;
  reason: string | null;
}

/** The flood detector's state, as kept across a restart (the 10-minute window included). */
export interface FloodRecord {
  flooding: boolean;
  since: number;
  bucket: number;
  buckets: number[];
}

/**
 * Where the engine's durable state goes (gateway/state): called after every
 * change and before it is published, so nothing is announced that a restart
 * could forget.
 */
export interface EngineRecorder {
  /** An open alert changed (store it), or closed (forget it). */
  alert(alert: Alert): void;
  shelve(subjectId: string, code: AlertCode, shelve: ShelveRecord | null): void;
  /** An on-delay of (subject, code) started at `since` (gateway time), or ended (null). */
  hold?(subjectId: string, code: AlertCode, since: number | null): void;
  service(subject: AlertSubject, by: string | null, at: number, account?: string | null): void;
  flood(flood: FloodRecord): void;
}

/** Publishes a change unless the alert is held, journaling it first (the core's `emit`). */
export type Emit = (alert: Alert, t: Transition, by: string, reason: string, force: boolean) => void;

/** What the engine's core lends every policy. */
export interface PolicyHost {
  readonly clock: Clock;
  readonly wheel: TimerWheel;
  readonly listener: AlertListener;
  readonly recorder: EngineRecorder | null;
  readonly emit: Emit;
}

/**
 * A policy of the engine: it keeps its own state and hold bit, and reaches
 * the core only through the host's clock, wheel, listener, recorder and emit
 * (under the names the core uses).
 */
export abstract class Policy {
  protected readonly clock: Clock;
  protected readonly wheel: TimerWheel;
  protected readonly listener: AlertListener;
  protected readonly recorder: EngineRecorder | null;
  protected readonly emit: Emit;

  constructor(host: PolicyHost) {
    this.clock = host.clock;
    this.wheel = host.wheel;
    this.listener = host.listener;
    this.recorder = host.recorder;
    this.emit = host.emit;
  }
}
