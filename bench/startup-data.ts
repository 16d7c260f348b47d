/**
 * A journal as a busy site leaves it, for the start-up benchmark (bench/startup.ts) and its test:
 * N configured devices (half EC-200 pendants, half DS-10 door contacts), one OPEN alert each,
 * written by the gateway's own alert engine through its own recorder (gateway/state), then
 * device last-seen updates and alert updates until the journal holds the asked number of
 * records, all in segments with no snapshot in between (the worst case a start can replay).
 *
 * Alerts: every pendant raises EMERGENCY_CALL (P1) and some press again (count, rev up); every
 * door contact raises TAMPER (P2, a condition that stays active), every second one acknowledged.
 * None of them can close by itself after a restart: an unacknowledged call only clears, an
 * acknowledged TAMPER stays while the cover is off.
 */

import type { Clock } from "../core/clock.js";
import type { AlertState } from "../core/model.js";
import { AlertEngine } from "../gateway/alerts/engine.js";
import { validateConfig } from "../gateway/config/load.js";
import type { Config } from "../gateway/config/schema.js";
import { Journal } from "../gateway/journal/journal.js";
import { Registry } from "../gateway/registry.js";
import { StateRecorder } from "../gateway/state/recorder.js";
import { TimerWheel } from "../gateway/time/timer-wheel.js";

export const STARTUP_SITE = "startup";
export const STARTUP_OPERATOR = { name: "startup-operator", password: "startup-operator-pass" };

export function startupDeviceId(i: number): string {
  return `${i % 2 === 0 ? "ec200" : "ds10"}-${String(i + 1).padStart(6, "0")}`;
}

/** The site file of the start-up benchmark: `devices` devices, the journal in `dir`. */
export function startupConfig(
  devices: number,
  opts: { logLevel?: "info" | "warn" | "error" | "silent"; metrics?: boolean } = {},
): Config {
  const list = [];
  for (let i = 0; i < devices; i++)
    list.push({ id: startupDeviceId(i), model: i % 2 === 0 ? "ec200" : "ds10", password: `pw-${i}` });
  return validateConfig(
    {
      site: { id: STARTUP_SITE },
      mqtt: { listeners: [{ host: "127.0.0.1", port: 0 }] },
      operators: [STARTUP_OPERATOR],
      devices: list,
      log: { level: opts.logLevel ?? "warn", format: "json" },
      metrics: opts.metrics === false ? { enabled: false } : { host: "127.0.0.1", port: 0 },
    },
    "<startup bench>",
  );
}

export interface StartupDataOptions {
  dir: string;
  /** Configured devices, one open alert each. */
  devices: number;
  /** Journal records to write in all (put + delete), at least the alerts. */
  records: number;
  /** Share of the filler records that are alert updates (a pendant pressed again); default 0.1. */
  alertUpdateShare?: number;
  /**
   * How long before now the journal's records were written, ms (default 0); the clean stop, its
   * last record, is written now: a gateway that ran until just now while its devices were silent
   * for `ageMs`. Aged 15-20 minutes, the start has its P1 escalations due and the devices whose
   * lost timeout is shorter raise DEVICE_LOST (docs/durability.md, "Start-up memory").
   */
  ageMs?: number;
}

export interface ExpectedAlert {
  id: string;
  subject: string;
  state: AlertState;
  rev: number;
  count: number;
}

export interface StartupData {
  config: Config;
  alerts: ExpectedAlert[];
  records: number;
  bytesOnDisk: number;
  segments: number;
  snapshots: number;
  ms: number;
}

/** Time moves with the wall clock (`ageMs` back); timers never fire (no window ends, no escalation while writing). */
function frozenTimers(ageMs: number): Clock {
  return {
    now: () => Date.now() - ageMs,
    monotonic: () => performance.now(),
    setTimeout: () => ({ unref() {} }),
    clearTimeout: () => {},
  };
}

export function buildStartupJournal(o: StartupDataOptions): StartupData {
  const t0 = performance.now();
  const clock = frozenTimers(o.ageMs ?? 0);
  const now = clock.now;
  const config = startupConfig(o.devices);
  const journal = Journal.open({
    dir: o.dir,
    sync: "batch",
    // No snapshot and no quota trouble while generating: start-up must replay all of it.
    compactAfterBytes: 64 * 1024 ** 3,
    quotaBytes: 64 * 1024 ** 3,
  });
  try {
    const recorder = new StateRecorder(journal, config.storage.checkpointInterval);
    const registry = new Registry(config, { onLost: () => {}, onWelfareDue: () => {} });
    const wheel = new TimerWheel(clock);
    const engine = new AlertEngine(
      config.site.id,
      clock,
      wheel,
      { alertChanged: () => {} },
      {
        escalationP1Ms: config.alerts.escalation.p1,
        escalationP2Ms: config.alerts.escalation.p2,
        escalationFactor: config.alerts.escalation.factor,
        escalationMaxIntervalMs: config.alerts.escalation.maxInterval,
        recorder,
      },
    );
    const devices = [...registry.devices.values()];
    const seq = new Uint32Array(devices.length);
    const press = (i: number): void => {
      const d = devices[i];
      if (!d) return;
      seq[i] = (seq[i] as number) + 1;
      d.lastSeen = now();
      d.link = "online";
      // As the gateway's consume() does: the alert state and the seq in one record, before the PUBACK.
      recorder.message(d, seq[i] as number);
      engine.contextFor(d).raise("EMERGENCY_CALL", {
        priority: 1,
        causes: ["press"],
        windowMs: d.settings.emergencyCallWindowMs,
      });
      recorder.messageDone(true);
    };
    for (const [i, d] of devices.entries()) {
      if (d.model === "ec200") press(i);
      else {
        d.lastSeen = now();
        d.link = "online";
        recorder.writeDevice(d);
        engine.contextFor(d).condition("TAMPER", true, { priority: 2, causes: ["cover removed"] });
      }
    }
    for (const a of engine.openAlerts())
      if (a.code === "TAMPER" && Number(a.subject.id.slice(-6)) % 4 === 0)
        engine.acknowledge(a.id, STARTUP_OPERATOR.name, "on site");

    // Filler: device last-seen checkpoints, and every 1/share-th record a pendant pressing again.
    const share = Math.min(1, Math.max(0, o.alertUpdateShare ?? 0.1));
    const every = share > 0 ? Math.round(1 / share) : Number.POSITIVE_INFINITY;
    let k = 0;
    // The last record is the clean stop's (StateRecorder.cleanStop), as a gateway stopped by
    // systemd leaves it: without it the start takes the previous run for a crash and skips revs.
    while (journal.stats().records < o.records - 1) {
      const i = k % devices.length;
      const d = devices[i] as (typeof devices)[number];
      // A press writes two records (dev + alert): only while that does not overshoot.
      if (k % every === 0 && d.model === "ec200" && journal.stats().records + 3 <= o.records) press(i);
      else {
        d.lastSeen = now();
        recorder.writeDevice(d);
      }
      k++;
    }
    const alerts = engine.openAlerts().map((a) => ({
      id: a.id,
      subject: a.subject.id,
      state: a.state,
      rev: a.rev,
      count: a.count,
    }));
    engine.stop();
    recorder.cleanStop(Date.now());
    const s = journal.stats();
    return {
      config,
      alerts,
      records: s.records,
      bytesOnDisk: s.bytesOnDisk,
      segments: s.segments,
      snapshots: s.compactions,
      ms: performance.now() - t0,
    };
  } finally {
    journal.close();
  }
}
