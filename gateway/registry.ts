/**
 * The devices and households of the site, built once from the config. Each
 * entry precomputes what never changes (topics, settings) so the hot path
 * only looks things up.
 */

import { profiles } from "../devices/index.js";
import { parseOpeningHours } from "../devices/modbus-common.js";
import type { AnyProfile, DeviceSettings } from "../devices/profile.js";
import type { AlertSubject } from "./alerts/alert.js";
import type { Config, DeviceConfig } from "./config/schema.js";
import { SeqWindow } from "./ingest/seq-window.js";
import type { DeviceModel } from "./model.js";
import type { PipelineEntry } from "./pipeline/lanes.js";
import { WheelTimer } from "./time/timer-wheel.js";

export type LinkState = "unknown" | "online" | "lost";

export class HouseholdEntry implements AlertSubject {
  readonly model = "household" as const;
  readonly household: string;
  readonly devices: DeviceEntry[] = [];
  lastActivity = 0;
  /** lastActivity as last written to the journal (gateway/state). */
  journaledActivity = 0;
  /** WELFARE_CHECK supervision; armed by the supervisor. */
  readonly welfareTimer: WheelTimer;

  constructor(
    readonly id: string,
    readonly welfareEnabled: boolean,
    readonly welfarePeriodMs: number,
    onWelfareDue: (timer: WheelTimer) => void,
  ) {
    this.household = id;
    this.welfareTimer = new WheelTimer(onWelfareDue, this);
  }
}

export class DeviceEntry implements AlertSubject {
  readonly model: DeviceModel;
  readonly household: string | null;
  /** MQTT devices only; null for polled devices. */
  readonly uplinkTopic: string | null;
  readonly downlinkTopic: string | null;
  readonly telemetryTopic: string;
  readonly statusTopic: string;
  /** `{"deviceId":...,"model":...,"site":...,"household":...,` precomputed for telemetry JSON. */
  readonly telemetryPrefix: string;
  readonly settings: DeviceSettings;
  readonly dedup: SeqWindow;
  readonly lostTimer: WheelTimer;
  link: LinkState = "unknown";
  lastSeen = 0;
  /** lastSeen and link as last written to the journal (gateway/state). */
  journaledSeen = 0;
  journaledLink: LinkState = "unknown";
  /** seq of the last alert-bearing messages, journaled so a re-send after a restart is still a duplicate. */
  alertSeqs: number[] | null = null;
  /** ingestSeq of the last entry whose rules ran: older telemetry does not overrule a newer event. */
  lastRulesSeq = 0;
  queuedTelemetry: PipelineEntry | null = null;
  /** Polled devices: consecutive failed polls (lost at the profile's limit). */
  missedPolls = 0;
  /** Polled devices: the last sample offered to the pipeline (lanes compare against it). */
  lastPolled: unknown = null;
  // biome-ignore lint/suspicious/noExplicitAny: per-model rule state, typed by the profile.
  ruleState: any;

  constructor(
    readonly id: string,
    readonly site: string,
    readonly config: DeviceConfig,
    readonly profile: AnyProfile,
    /** MQTT password; null for polled devices, which never connect to the broker. */
    readonly password: Buffer | null,
    readonly householdEntry: HouseholdEntry | null,
    settings: DeviceSettings,
    dedup: SeqWindow,
    onLost: (timer: WheelTimer) => void,
  ) {
    this.model = profile.model;
    this.household = householdEntry?.id ?? null;
    this.uplinkTopic = profile.transport === "mqtt" ? flat(profile.uplinkTopic(id)) : null;
    const downlink = profile.transport === "mqtt" ? profile.downlinkTopic(id) : null;
    this.downlinkTopic = downlink === null ? null : flat(downlink);
    this.telemetryTopic = flat(`linli/${site}/telemetry/${this.model}/${id}`);
    this.statusTopic = flat(`linli/${site}/devices/${id}/status`);
    this.telemetryPrefix = flat(
      `{"deviceId":${JSON.stringify(id)},"model":"${this.model}","site":${JSON.stringify(site)},"household":${JSON.stringify(this.household)},`,
    );
    this.settings = settings;
    this.dedup = dedup;
    this.ruleState = profile.initialState();
    this.lostTimer = new WheelTimer(onLost, this);
  }

  /** MQTT devices are lost by silence; polled devices by missed polls (gateway/southbound). */
  get supervisedByHeartbeat(): boolean {
    return this.profile.transport === "mqtt";
  }

  /** Silent for 2 heartbeat intervals plus the grace: lost (datasheets). */
  lostAfterMs(graceMs: number): number {
    return 2 * this.settings.heartbeatIntervalMs + graceMs;
  }
}

/**
 * A string built by concatenation is a tree of pieces (V8 cons strings: one
 * object per `+`) until something flattens it. Strings kept for the life of
 * the process, several per device, are copied into one flat string each:
 * 10,000 devices held ~180,000 cons pieces (6 MB) that every full GC marked.
 */
function flat(s: string): string {
  return Buffer.from(s, "utf8").toString("utf8");
}

export class Registry {
  readonly devices = new Map<string, DeviceEntry>();
  readonly households = new Map<string, HouseholdEntry>();
  readonly operators = new Map<string, Buffer>();

  constructor(
    config: Config,
    hooks: { onLost: (timer: WheelTimer) => void; onWelfareDue: (timer: WheelTimer) => void },
  ) {
    const site = config.site.id;
    for (const h of config.households) {
      this.households.set(
        h.id,
        new HouseholdEntry(
          h.id,
          h.welfare.enabled,
          h.welfare.period ?? config.alerts.welfarePeriod,
          hooks.onWelfareDue,
        ),
      );
    }
    const window = config.ingest.dedupWindow;
    const seqPool = new Float64Array(config.devices.length * window);
    for (const [i, d] of config.devices.entries()) {
      const household = d.household ? (this.households.get(d.household) ?? null) : null;
      const settings: DeviceSettings = {
        heartbeatIntervalMs: "heartbeatInterval" in d ? d.heartbeatInterval : 0,
        holdOpenMs: d.model === "ds10" ? d.holdOpenTime : 0,
        emergencyCallWindowMs: config.alerts.emergencyCallWindow,
        batteryLowPercent: config.alerts.batteryLowPercent,
        batteryClearPercent: config.alerts.batteryClearPercent,
        contactDebounceMs: config.alerts.contactDebounce,
        pollIntervalMs: "pollInterval" in d ? d.pollInterval : 0,
        minPressureMpa: d.model === "mfs8" ? d.minPressure : 0,
        extinguisherGraceMs: d.model === "mfs8" ? d.extinguisherGrace : 0,
        outOfServiceAfterMs: d.model === "gk3" ? d.outOfServiceAfter : 0,
        openingHours: d.model === "gk3" ? parseOpeningHours(d.openingHours) : { from: 0, to: 0 },
      };
      const entry = new DeviceEntry(
        d.id,
        site,
        d,
        profiles[d.model],
        "password" in d ? Buffer.from(d.password, "utf8") : null,
        household,
        settings,
        new SeqWindow(window, seqPool.subarray(i * window, (i + 1) * window)),
        hooks.onLost,
      );
      this.devices.set(d.id, entry);
      household?.devices.push(entry);
    }
    for (const o of config.operators) this.operators.set(o.name, Buffer.from(o.password, "utf8"));
  }
}
