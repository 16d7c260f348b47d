/**
 * The devices and households of the site, built from the config and changed
 * in place by a live reload (gateway/reload.ts). Each entry precomputes its
 * topics and settings so the hot path only looks things up.
 */

import { type DeviceModel, SiteTime } from "../core/index.js";
import {
  type AnyProfile,
  DEFAULT_LOST_RULE,
  type DeviceSettings,
  type DurableValue,
  mqttLostRule,
} from "../devices/index.js";
import type { AlertSubject } from "./alerts/alert.js";
import { deviceProfile } from "./config/device-profiles.js";
import type { Config, DeviceConfig, HouseholdConfig } from "./config/schema.js";
import { SeqWindow } from "./ingest/seq-window.js";
import { DEFAULT_ROLE, type OperatorRole } from "./operator-roles.js";
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
  /**
   * When a reload started welfare supervision here (checks switched on, a first device moved in):
   * the period counts from it, not from older activity. Journaled with lastActivity, so that a
   * restart counts from it too; 0: never.
   */
  welfareFrom = 0;
  /** WELFARE_CHECK supervision; armed by the supervisor. */
  readonly welfareTimer: WheelTimer;

  constructor(
    readonly id: string,
    /** Both may change on a reload (gateway/reload.ts). */
    public welfareEnabled: boolean,
    public welfarePeriodMs: number,
    onWelfareDue: (timer: WheelTimer) => void,
  ) {
    this.household = id;
    this.welfareTimer = new WheelTimer(onWelfareDue, this);
  }
}

export class DeviceEntry implements AlertSubject {
  readonly model: DeviceModel;
  /** Household, config, password, settings and telemetryPrefix change in place on a reload. */
  household: string | null;
  readonly telemetryTopic: string;
  readonly statusTopic: string;
  /** `{"deviceId":...,"model":...,"site":...,"household":...,"deviceName":...,` precomputed for telemetry JSON. */
  telemetryPrefix: string;
  /** Mutated in place on a reload: rules read it on every sample. */
  readonly settings: DeviceSettings;
  readonly dedup: SeqWindow;
  /**
   * DEVICE_LOST by silence, for heartbeat devices only. Polled devices have
   * none: the gateway asks them, so a missed-poll count decides (southbound),
   * and a silence timer would call them lost while they answer every poll.
   */
  readonly lostTimer: WheelTimer | null;
  link: LinkState = "unknown";
  lastSeen = 0;
  /** lastSeen and link as last written to the journal (gateway/state). */
  journaledSeen = 0;
  journaledLink: LinkState = "unknown";
  /** seq of the last alert-bearing messages, journaled so a re-send after a restart is still a duplicate. */
  alertSeqs: number[] | null = null;
  /** ingestSeq of the last entry whose rules ran: an older telemetry entry, poll or declared snapshot (lanes reorder) does not overrule it. */
  lastRulesSeq = 0;
  /** Receipt time (monotonic ms) of that entry: what "older" is judged by, ingestSeq breaking ties. */
  lastRulesMono = Number.NEGATIVE_INFINITY;
  queuedTelemetry: PipelineEntry | null = null;
  /** Its entries in the P1 lane (the pipeline counts them; the MQTT ingest bounds them per device). */
  p1Queued = 0;
  /** Polled devices: consecutive failed polls (lost at the profile's limit). */
  missedPolls = 0;
  /** Polled devices: the last sample offered to the pipeline (lanes compare against it). */
  lastPolled: unknown = null;
  // biome-ignore lint/suspicious/noExplicitAny: per-model rule state, typed by the profile.
  ruleState: any;
  /** The rule state's durable values as last journaled (`profile.durable`), null before any. */
  journaledRule: readonly DurableValue[] | null = null;
  /** Taken out of the configuration by a reload: what is still queued for it is dropped. */
  removed = false;

  constructor(
    readonly id: string,
    readonly site: string,
    public config: DeviceConfig,
    readonly profile: AnyProfile,
    /**
     * MQTT password as the config gives it (plain or an scrypt hash: the config's own string, parsed
     * at login by gateway/broker/access.ts); null for polled devices, which never connect to the
     * broker, and for MQTT devices that log in with a client certificate only.
     */
    public password: string | null,
    public householdEntry: HouseholdEntry | null,
    settings: DeviceSettings,
    dedup: SeqWindow,
    onLost: (timer: WheelTimer) => void,
  ) {
    // Registered models only: config validation refused any other (devices/models.ts).
    this.model = profile.model as DeviceModel;
    this.household = householdEntry?.id ?? null;
    this.telemetryTopic = flat(`linli/${site}/telemetry/${this.model}/${id}`);
    this.statusTopic = flat(`linli/${site}/devices/${id}/status`);
    this.telemetryPrefix = this.prefix();
    this.settings = settings;
    this.dedup = dedup;
    this.ruleState = profile.initialState();
    this.lostTimer = profile.transport === "mqtt" ? new WheelTimer(onLost, this) : null;
  }

  /**
   * MQTT devices only; null for polled devices. Built on each use (a publish's or a subscription's
   * access check, a command) rather than kept: two strings per device, ~1 MB for 10,000.
   */
  get uplinkTopic(): string | null {
    return this.profile.transport === "mqtt" ? this.profile.uplinkTopic(this.id) : null;
  }

  /** MQTT devices with a downlink only; built on each use, as uplinkTopic. */
  get downlinkTopic(): string | null {
    return this.profile.transport === "mqtt" ? this.profile.downlinkTopic(this.id) : null;
  }

  private prefix(): string {
    return flat(
      `{"deviceId":${JSON.stringify(this.id)},"model":"${this.model}","site":${JSON.stringify(this.site)},"household":${JSON.stringify(this.household)},"deviceName":${JSON.stringify(this.config.name ?? null)},`,
    );
  }

  /** After a reload changed the device's config (its name may have changed). */
  refreshPrefix(): void {
    this.telemetryPrefix = this.prefix();
  }

  /** Moves the device to another household (or none). */
  setHousehold(h: HouseholdEntry | null): void {
    if (h === this.householdEntry) return;
    const old = this.householdEntry;
    if (old) old.devices.splice(old.devices.indexOf(this), 1);
    this.householdEntry = h;
    this.household = h?.id ?? null;
    h?.devices.push(this);
    this.telemetryPrefix = this.prefix();
  }

  /** MQTT devices are lost by silence; polled devices by missed polls (gateway/southbound). */
  get supervisedByHeartbeat(): boolean {
    return this.lostTimer !== null;
  }

  /** Silent this long: lost, by the model's datasheet (EC-200, DS-10: 2 intervals plus the grace; GD-2: 3 intervals). */
  lostAfterMs(graceMs: number): number {
    const rule = this.profile.transport === "mqtt" ? mqttLostRule(this.profile) : DEFAULT_LOST_RULE;
    return rule.heartbeats * this.settings.heartbeatIntervalMs + (rule.plusGrace ? graceMs : 0);
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

type RegistryHooks = {
  onLost: (timer: WheelTimer) => void;
  onWelfareDue: (timer: WheelTimer) => void;
};

/** What a device's rules read: its binding's interval, the site's alert settings, and its model's own settings. */
export function deviceSettings(
  d: DeviceConfig,
  profile: AnyProfile,
  alerts: Config["alerts"],
  siteTime: SiteTime,
): DeviceSettings & object {
  return {
    heartbeatIntervalMs: "heartbeatInterval" in d ? d.heartbeatInterval : 0,
    pollIntervalMs: "pollInterval" in d ? d.pollInterval : 0,
    emergencyCallWindowMs: alerts.emergencyCallWindow,
    batteryLowPercent: alerts.batteryLowPercent,
    batteryClearPercent: alerts.batteryClearPercent,
    contactDebounceMs: alerts.contactDebounce,
    siteTime,
    ...profile.settings(d),
  };
}

const passwordOf = (d: DeviceConfig): string | null =>
  "password" in d && d.password !== undefined ? d.password : null;

export class Registry {
  readonly devices = new Map<string, DeviceEntry>();
  readonly households = new Map<string, HouseholdEntry>();
  /** Operator name -> password as the config gives it (null: certificate only). */
  readonly operators = new Map<string, string | null>();
  /** Operator name -> role (`operators[].role`, else DEFAULT_ROLE); replaced on reload. */
  private readonly roles = new Map<string, OperatorRole>();
  private readonly site: string;
  private readonly dedupWindow: number;
  /** `site.timezone` (fixed for the process: a change needs a restart). */
  readonly siteTime: SiteTime;

  constructor(
    config: Config,
    private readonly hooks: RegistryHooks,
  ) {
    this.site = config.site.id;
    this.dedupWindow = config.ingest.dedupWindow;
    // One calendar for the site: kiosk hours and daily counters in `site.timezone`.
    this.siteTime = new SiteTime(config.site.timezone);
    for (const h of config.households) this.addHousehold(h, config);
    const window = this.dedupWindow;
    const seqPool = new Float64Array(config.devices.length * window);
    for (const [i, d] of config.devices.entries()) this.addDevice(d, config, seqPool, i * window);
    this.setOperators(config.operators);
  }

  addHousehold(h: HouseholdConfig, config: Config): HouseholdEntry {
    const entry = new HouseholdEntry(
      h.id,
      h.welfare.enabled,
      h.welfare.period ?? config.alerts.welfarePeriod,
      this.hooks.onWelfareDue,
    );
    this.households.set(h.id, entry);
    return entry;
  }

  /** Welfare settings of an existing household, in place. */
  updateHousehold(entry: HouseholdEntry, h: HouseholdConfig, config: Config): void {
    entry.welfareEnabled = h.welfare.enabled;
    entry.welfarePeriodMs = h.welfare.period ?? config.alerts.welfarePeriod;
  }

  /** The caller has moved or removed its devices first (config validation requires it). */
  removeHousehold(id: string): HouseholdEntry | undefined {
    const entry = this.households.get(id);
    this.households.delete(id);
    return entry;
  }

  /** `dedup`: a shared pool at start (this device's slots from `dedupAt`); devices added later get their own window. */
  addDevice(d: DeviceConfig, config: Config, dedup?: Float64Array, dedupAt = 0): DeviceEntry {
    const household = d.household ? (this.households.get(d.household) ?? null) : null;
    const profile = deviceProfile(d, config);
    const entry = new DeviceEntry(
      d.id,
      this.site,
      d,
      profile,
      passwordOf(d),
      household,
      deviceSettings(d, profile, config.alerts, this.siteTime),
      new SeqWindow(this.dedupWindow, dedup, dedupAt),
      this.hooks.onLost,
    );
    this.devices.set(d.id, entry);
    household?.devices.push(entry);
    return entry;
  }

  /** Same id and model, new settings: updated in place, so runtime state and open alerts stay. */
  updateDevice(entry: DeviceEntry, d: DeviceConfig, config: Config): void {
    if (d.id !== entry.id || d.model !== entry.model) throw new Error(`${d.id}: not the same device`);
    entry.config = d;
    entry.password = passwordOf(d);
    // The running profile (a changed declared profile needs a restart: gateway/reload.ts).
    Object.assign(entry.settings, deviceSettings(d, entry.profile, config.alerts, this.siteTime));
    entry.setHousehold(d.household ? (this.households.get(d.household) ?? null) : null);
    entry.refreshPrefix();
  }

  removeDevice(id: string): DeviceEntry | undefined {
    const entry = this.devices.get(id);
    if (!entry) return undefined;
    this.devices.delete(id);
    entry.removed = true;
    // Its household field stays: the closing of its alerts still names the household.
    const h = entry.householdEntry;
    if (h) h.devices.splice(h.devices.indexOf(entry), 1);
    return entry;
  }

  setOperators(operators: Config["operators"]): void {
    this.operators.clear();
    this.roles.clear();
    for (const o of operators) {
      this.operators.set(o.name, o.password ?? null);
      this.roles.set(o.name, o.role ?? DEFAULT_ROLE);
    }
  }

  /** An operator's role now; `viewer` (nothing) for a name that is no operator (removed by a reload). */
  roleOf(name: string): OperatorRole {
    return this.roles.get(name) ?? "viewer";
  }
}
