/**
 * What people read in an alert, beside the machine fields (docs/topics.md
 * 0.6.0): who and where from the configuration (household name, address,
 * room, resident, contact phone; device name and location), one line saying
 * what happened and what to do in the site's language, and the times on the
 * site's wall clock. Built at the moment an alert or escalation is
 * serialised, from the running configuration (a reload that renames a
 * household shows in the next message).
 *
 * The contact phone is for the operator who calls the resident: it is in the
 * published alert and nowhere else (log.ts redacts it if it ever reaches a log).
 */

import { SiteTime } from "../../core/index.js";
import { type AlertSpec, type AlertText, declaredAlarmText, profileFor } from "../../devices/index.js";
import type { Alert, Transition } from "../alerts/alert.js";
import type { Config, DeviceConfig, HouseholdConfig } from "../config/schema.js";
import type { Catalogue, TransitionArgs } from "./catalogue.js";
import type { Locale } from "./codes.js";
import { localClock, localIso } from "./local-time.js";
import { en } from "./messages.en.js";
import { zhCN } from "./messages.zh-CN.js";

/** The event alerts with a call window (docs/topics.md): a call or a fall. */
const CALL_CODES: ReadonlySet<string> = new Set(["EMERGENCY_CALL", "FALL_DETECTED"]);

export const CATALOGUES: Record<Locale, Catalogue> = { "zh-CN": zhCN, en };

/** The fields added to alert and escalation JSON (docs/topics.md 0.6.0), in this order. */
export interface AlertContent {
  householdName: string | null;
  address: string | null;
  room: string | null;
  residentName: string | null;
  contactPhone: string | null;
  deviceName: string | null;
  location: string | null;
  message: string;
  action: string;
  locale: Locale;
  raisedAtLocal: string | null;
  updatedAtLocal: string | null;
  ackedAtLocal: string | null;
  clearedAtLocal: string | null;
  escalationNextAtLocal: string | null;
}

export interface EscalationInfo {
  level: number;
  unacknowledgedForMs: number;
}

/** For an escalation's message: its level and how long nobody has acknowledged, as of now. */
export function escalationInfo(
  alert: Alert,
  t: Transition,
  clock: { now(): number },
): EscalationInfo | undefined {
  if (t !== "escalated") return undefined;
  return { level: alert.escalationLevel, unacknowledgedForMs: clock.now() - alert.unackSince };
}

/** What an alert shows of its household. */
type ShownHousehold = Pick<HouseholdConfig, "name" | "address" | "room" | "residentName" | "contactPhone">;
/** What an alert shows of its device beside its model and id. */
type ShownDevice = Pick<DeviceConfig, "name" | "location">;

interface Index {
  config: Config;
  devices: Map<string, DeviceConfig>;
  households: Map<string, HouseholdConfig>;
}

export class AlertContentBuilder {
  private index: Index | null = null;
  private readonly siteTime: SiteTime;

  /**
   * `config` is read on every call: the running configuration, replaced by a reload. `kept`: the
   * last names known of a household open alerts keep that the file no longer has. `keptDevice`:
   * an alert's device's name and location as they were in the household the alert keeps, once a
   * reload moved the device elsewhere (gateway/kept-devices.ts).
   */
  constructor(
    private readonly config: () => Config,
    private readonly kept: (householdId: string) => ShownHousehold | undefined = () => undefined,
    private readonly keptDevice: (alertId: string) => ShownDevice | undefined = () => undefined,
  ) {
    // site.timezone needs a restart (gateway/reload.ts): one calendar for the process.
    this.siteTime = new SiteTime(config().site.timezone);
  }

  private lookup(): Index {
    const config = this.config();
    if (this.index?.config !== config)
      this.index = {
        config,
        devices: new Map(config.devices.map((d) => [d.id, d])),
        households: new Map(config.households.map((h) => [h.id, h])),
      };
    return this.index;
  }

  /** The site's language of the running configuration. */
  get locale(): Locale {
    return this.config().site.locale;
  }

  /**
   * An alert as an operator's result names it, in the site's language: its title and whose it is
   * ("1号楼 101室 张阿姨的紧急呼叫"); a household's device's alert names the device too, as
   * `nameDevice` does ("1号楼 101室 张阿姨的入户门磁（入户门），设备外壳被打开"); a device of no
   * household by the device; the gateway's own alerts by their title, which names the gateway.
   */
  nameAlert(alert: Alert): string {
    const { config, devices } = this.lookup();
    const cat = CATALOGUES[config.site.locale];
    const subject = alert.subject;
    const device =
      subject.model === "household" || subject.model === "gateway" ? undefined : devices.get(subject.id);
    const title = this.title(config, device, alert).title;
    if (subject.model === "gateway") return title;
    const shown = this.keptDevice(alert.id) ?? device;
    if (alert.household === null)
      return cat.of(this.deviceLabel(device, subject.id, subject.model, shown), title);
    const household = this.nameHousehold(alert.household);
    if (subject.model === "household") return cat.of(household, title);
    return cat.deviceAlert(
      cat.of(household, this.deviceLabel(device, subject.id, subject.model, shown)),
      title,
    );
  }

  /**
   * A device as an operator's result names it: its name and location, whose it is (`deviceLabel`).
   * `model`: what it was, for a device the configuration no longer has ("燃气报警器 k-1").
   */
  nameDevice(deviceId: string, model: string | null = null): string {
    const { config, devices } = this.lookup();
    const device = devices.get(deviceId);
    const own = this.deviceLabel(device, deviceId, model);
    return device?.household
      ? CATALOGUES[config.site.locale].of(this.nameHousehold(device.household), own)
      : own;
  }

  /**
   * A device command as operators call it in the site's language, from its model's profile
   * (`names`, which the console's labels follow): "打开燃气阀" for `valve_open`; null for a command
   * without such a name (a YAML profile's), which is said by its name. `gone`: the model of a
   * device the configuration no longer has.
   */
  nameCommand(deviceId: string, command: string, gone: string | null = null): string | null {
    const { config, devices } = this.lookup();
    const model = devices.get(deviceId)?.model ?? gone;
    const commands = profileFor(model ?? "")?.commands as
      | Readonly<Record<string, { names?: Readonly<Record<Locale, string>> }>>
      | undefined;
    return commands !== undefined && Object.hasOwn(commands, command)
      ? (commands[command]?.names?.[config.site.locale] ?? null)
      : null;
  }

  /** A household with its resident ("1号楼 101室 张阿姨"); "住户 hh-1" if unnamed. */
  nameHousehold(householdId: string): string {
    const { config, households } = this.lookup();
    const cat = CATALOGUES[config.site.locale];
    const h = households.get(householdId) ?? this.kept(householdId);
    return cat.householdWith(h?.name ?? cat.unnamedHousehold(householdId), h?.residentName ?? null);
  }

  /**
   * A device by its configured name, else what operators call its model and its id ("紧急呼叫器
   * p-7"), with its configured location. `model`: the alert's, for a device a reload removed.
   * `shown`: the name and location to show (an alert's kept ones), by default the device's.
   */
  private deviceLabel(
    device: DeviceConfig | undefined,
    id: string,
    model: string | null,
    shown: ShownDevice | undefined = device,
  ): string {
    const locale = this.lookup().config.site.locale;
    const cat = CATALOGUES[locale];
    const modelName = profileFor(device?.model ?? model ?? "")?.names?.[locale] ?? null;
    return cat.deviceAt(shown?.name ?? cat.unnamedDevice(modelName, id), shown?.location ?? null);
  }

  /** The device's own profile words first, then the catalogue's, then a YAML profile's alarm. */
  private title(
    config: Config,
    device: DeviceConfig | undefined,
    alert: Alert,
  ): { title: string; action: string; detail?: AlertText["detail"] } {
    const locale = config.site.locale;
    const cat = CATALOGUES[locale];
    const shared = cat.codes[alert.code];
    const own = device === undefined ? undefined : profileText(device.model, alert.code, locale);
    return own !== undefined
      ? { title: own.title, action: own.action, detail: own.detail ?? shared?.detail }
      : (shared ?? declaredText(config, device, alert, cat));
  }

  describe(alert: Alert, transition: Transition, escalation?: EscalationInfo): AlertContent {
    const { config, devices, households } = this.lookup();
    const locale = config.site.locale;
    const cat = CATALOGUES[locale];
    const subject = alert.subject;
    const device =
      subject.model === "household" || subject.model === "gateway" ? undefined : devices.get(subject.id);
    // The household it was raised in (a device moved since keeps its open alerts there).
    const household =
      alert.household === null ? undefined : (households.get(alert.household) ?? this.kept(alert.household));
    // The device's own profile words first (a GD-2's FAULT means it cannot detect gas, not the
    // generic "device fault"), then the catalogue's, then a YAML profile's alarm (docs/devices.md).
    const found = this.title(config, device, alert);
    // DEVICE_LOST is the gateway's code, but what is at stake is the model's (a lost fire station cannot alarm).
    const lostAction =
      alert.code === "DEVICE_LOST" && device !== undefined
        ? profileFor(device.model)?.lostAction?.[locale]
        : undefined;
    const text = lostAction === undefined ? found : { ...found, action: lostAction };

    // As it was in the household the alert keeps, when a reload moved the device elsewhere.
    const shown = device === undefined ? undefined : (this.keptDevice(alert.id) ?? device);
    const deviceName = shown?.name ?? null;
    const location = shown?.location ?? null;
    const householdName = household?.name ?? null;
    const residentName = household?.residentName ?? null;

    // The place: household (with resident) and the device, named as operator results name them;
    // where no name is configured, what the id is ("住户 hh-1", "紧急呼叫器 p-7"), never a bare id.
    // The gateway's own alerts have none: their titles name the gateway ("Gateway storage failing",
    // not "Gateway storage failing: the gateway").
    const place =
      subject.model === "gateway"
        ? ""
        : cat.place(
            alert.household === null ? null : this.nameHousehold(alert.household),
            subject.model === "household" ? null : this.deviceLabel(device, subject.id, subject.model, shown),
          );

    const detail = text.detail?.({ ...alert.detail, urgent: alert.urgent }, alert.causes) ?? null;
    const args: TransitionArgs = {
      by:
        transition === "shelved"
          ? alert.shelvedBy
          : transition === "out-of-service"
            ? alert.outOfServiceBy
            : alert.ackedBy,
      until: alert.shelvedUntil === null ? null : localClock(alert.shelvedUntil, this.siteTime),
      count: alert.count,
      level: escalation?.level ?? alert.escalationLevel,
      unacknowledgedMs: escalation?.unacknowledgedForMs ?? 0,
    };
    const phrase =
      transition === "closed" && alert.replacedFor !== null
        ? cat.replaced(alert.replacedFor)
        : transition === "closed" && alert.goneFor !== null
          ? cat.gone(
              alert.goneFor,
              "model" in alert.goneFor ? (profileFor(alert.goneFor.model)?.names?.[locale] ?? null) : null,
            )
          : transition === "cleared" && alert.momentary
            ? CALL_CODES.has(alert.code)
              ? cat.windowEnded
              : cat.recordedAwaitingAck
            : // A condition's change was published as `repeated` before topics 0.12.0: a journal of
              // then republishes it as it was, with the words of a change, not "again (N in all)".
              transition === "repeated" && !alert.momentary
              ? cat.transitions.changed(args)
              : cat.transitions[transition](args);
    const message =
      (alert.test ? cat.testPrefix : "") +
      text.title +
      (detail === null ? "" : cat.bracket(detail)) +
      (place === "" ? "" : cat.afterTitle + place) +
      (phrase === "" ? "" : cat.beforeTransition + phrase);

    const st = this.siteTime;
    return {
      householdName,
      address: household?.address ?? null,
      room: household?.room ?? null,
      residentName,
      contactPhone: household?.contactPhone ?? null,
      deviceName,
      location,
      message,
      action: config.alerts.actions[alert.code] ?? text.action,
      locale,
      raisedAtLocal: localIso(alert.raisedAt, st),
      updatedAtLocal: localIso(alert.updatedAt, st),
      ackedAtLocal: localIso(alert.ackedAt, st),
      clearedAtLocal: localIso(alert.clearedAt, st),
      escalationNextAtLocal: localIso(alert.escalationNextAt, st),
    };
  }
}

/** A code profile's own words for one of its alert codes, in the site's language. */
function profileText(model: string, code: string, locale: Locale): AlertText | undefined {
  const alerts = profileFor(model)?.alerts as Readonly<Record<string, AlertSpec>> | undefined;
  return alerts?.[code]?.text?.[locale];
}

/**
 * The operator text of an alarm of a YAML device profile: its `title` and `action`, else the code
 * and a generic action; with a `peak` or `command`, a detail naming the incident's peak and the
 * gateway's command (as gd2.ts's GAS_LEAK says them).
 */
function declaredText(
  config: Config,
  device: Config["devices"][number] | undefined,
  alert: Alert,
  cat: Catalogue,
): { title: string; action: string; detail?: AlertText["detail"] } {
  const model: string | undefined = device?.model;
  const doc = config.deviceProfiles.find((p) => p.model === model);
  const text = declaredAlarmText(doc?.alarms ?? [], alert.code);
  const own = doc?.alarms.filter((a) => a.code === alert.code) ?? [];
  const peak = own.find((a) => a.peak !== undefined)?.peak;
  const command = own.find((a) => a.command !== undefined)?.command;
  const base = { title: text.title, action: text.action ?? cat.declaredAction };
  if (peak === undefined && command === undefined) return base;
  const unit = [...(doc?.mqtt?.fields ?? []), ...(doc?.modbus?.points ?? [])].find(
    (f) => f.name === peak?.point,
  )?.unit;
  const as = command === undefined ? undefined : (command.as ?? command.setting);
  return {
    ...base,
    detail: (d) => {
      const parts: string[] = [];
      const v = peak === undefined ? undefined : d[peak.as];
      // "unknown" (no figure yet) is not said: a peak of nothing is not a peak of 0.
      if (peak !== undefined && typeof v === "number")
        parts.push(cat.declaredPeak(v, unit, d[`${peak.as}Suspect`] === true));
      if (command !== undefined && as !== undefined && d[as] === true)
        parts.push(
          d[`${as}Queued`] === true
            ? (command.queued ?? cat.declaredQueued(command.name))
            : (command.sent ?? cat.declaredSent(command.name)),
        );
      return parts.length === 0 ? null : parts.join(cat.detailSep);
    },
  };
}
