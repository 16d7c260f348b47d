/**
 * A step of the wall clock while the gateway runs (NTP correcting a box that booted with a wrong
 * time, an operator setting the clock, a box without a real-time clock): the timer wheel keeps
 * every timer's elapsed time and reports the step (gateway/time/timer-wheel.ts); here the times
 * operators read and the journal keeps (an alert's next escalation, call window and shelving end,
 * shelvings' and away mode's ends, last activity for welfare checks, the flood window, waiting
 * downlinks' expiry: southbound/pending-downlinks.ts) move with
 * it, are journaled (a crash after the step must not bring the old times back), and what operators
 * see is republished with the next rev: what a restart after a clock set back does
 * (gateway/state/recovery.ts), while running; both take the times to move, and the moving, from
 * gateway/moved-times.ts. Steps under a second are not reported; a system suspend is none
 * (time/steady-clock.ts).
 */
import type { Clock } from "../core/index.js";
import type { AlertEngine } from "./alerts/engine.js";
import { escalationInfo } from "./content/alert-content.js";
import type { Logger } from "./log.js";
import type { GatewayMetrics } from "./metrics/metrics.js";
import type { Publisher } from "./northbound/publisher.js";
import type { Registry } from "./registry.js";
import type { PendingDownlinks } from "./southbound/pending-downlinks.js";
import type { StateRecorder } from "./state/recorder.js";
import type { Supervisor } from "./supervision.js";

export interface ClockStepParts {
  clock: Clock;
  log: Logger;
  metrics: GatewayMetrics;
  engine: AlertEngine;
  supervisor: Supervisor;
  registry: Registry;
  publisher: Publisher;
  recorder: StateRecorder | null;
  /** Downlinks waiting for their device: their 10 minutes are time waited, not a wall-clock end. */
  downlinks: PendingDownlinks | null;
}

export function applyClockStep(stepMs: number, p: ClockStepParts): void {
  p.metrics.clockSteps.inc();
  // First: the next start must not take the moved times for a clock set back across a restart and
  // move them again (recovery.ts compares the clock with this record).
  p.recorder?.running(p.clock.now());
  const moved = p.engine.shiftTimes(stepMs);
  p.log.warn(
    { stepMs, openAlerts: moved.length },
    `the wall clock was ${stepMs < 0 ? "set back" : "set forward"} while running: timers keep their ` +
      "elapsed time; escalations, call windows, shelving, away mode, welfare periods, the flood window and waiting downlinks' expiry move with the step",
  );
  for (const a of moved) {
    // Moved times are a new state of an announced alert: the next rev, journaled before it goes out.
    if (a.announced) {
      a.rev++;
      a.unpublished = false;
    }
    p.recorder?.alert(a);
    if (a.announced) p.publisher.alert(a, a.lastTransition, escalationInfo(a, a.lastTransition, p.clock));
  }
  p.supervisor.shiftTimes(stepMs, p.registry);
  // The rules' own gateway times (an on-delay's start): the next reading passes them to the engine.
  for (const d of p.registry.devices.values()) d.profile.shiftTimes?.(d.ruleState, stepMs);
  p.downlinks?.shiftTimes(stepMs);
  p.recorder?.clockStepped(p.registry);
  if (p.engine.flood.state === "flood") p.publisher.flood(p.engine.flood);
}
