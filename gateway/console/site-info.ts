/**
 * What the console page shows about the site beside the live topics: names of
 * households, residents and devices, so that an operator reads "1号楼 101室"
 * and not only "hh-07". Built from the running config at each request, so a
 * reload shows at once. Only for logged-in operators (gateway/console/server.ts).
 */
import { type AnyProfile, declaredAlarmText, profileFor } from "../../devices/index.js";
import { deviceProfile } from "../config/device-profiles.js";
import type { Config, DeviceConfig } from "../config/schema.js";
import { roleActions } from "../operator-actions.js";
import { DEFAULT_ROLE, type OperatorRole } from "../operator-roles.js";
import type { ConsoleSiteInfo } from "./server.js";

/** Optional fields of a config entry, read by name (households and devices differ by model). */
function pick(entry: object, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const e = entry as Record<string, unknown>;
  for (const k of keys) out[k] = e[k] ?? null;
  return out;
}

const HOUSEHOLD_FIELDS = ["id", "name", "address", "room", "residentName", "contactPhone"] as const;
const DEVICE_FIELDS = ["id", "model", "name", "location", "household", "bus"] as const;

/** `operator`: the logged-in account, whose role (the running config's) says what the page offers. */
export function consoleSiteInfo(config: Config, operator?: string): ConsoleSiteInfo {
  const site = config.site as Config["site"] & { locale?: string };
  const who = operator === undefined ? undefined : operatorInfo(config, operator);
  // A role that may not command devices is shown none (the gateway refuses them anyway).
  const offersCommands = who === undefined || who.actions.includes("cmd");
  return {
    site: {
      id: site.id,
      name: site.name ?? null,
      locale: site.locale ?? "en",
      timezone: site.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone,
    },
    households: config.households.map((h) => pick(h, HOUSEHOLD_FIELDS)),
    devices: config.devices.map((d) =>
      offersCommands
        ? { ...pick(d, DEVICE_FIELDS), commands: consoleCommands(d, config) }
        : pick(d, DEVICE_FIELDS),
    ),
    shelveMaxMs: config.alerts.shelveMax,
    codeNames: Object.fromEntries(
      config.deviceProfiles.flatMap((p) =>
        p.alarms.map((a) => [a.code, declaredAlarmText(p.alarms, a.code).title]),
      ),
    ),
    ...(who === undefined ? {} : { operator: who }),
  };
}

function operatorInfo(config: Config, name: string): NonNullable<ConsoleSiteInfo["operator"]> {
  const entry = config.operators.find((o) => o.name === name);
  // Logged in, then removed by a reload before this answer: nothing is offered.
  const role: OperatorRole = entry ? (entry.role ?? DEFAULT_ROLE) : "viewer";
  return { name, role, actions: roleActions(role) };
}

/** A device command as the console offers it (ConsoleSiteInfo `devices[].commands`). */
export interface ConsoleCommand {
  name: string;
  /** What operators call it; null for a YAML profile's command (the page says its name). */
  names: Readonly<Record<"zh-CN" | "en", string>> | null;
  /**
   * Asked before it is sent: a command that moves something on site (`actuates`, a GD-2's valve),
   * and every command of a YAML profile, whose effect the gateway cannot know.
   */
  confirm: boolean;
  /** A command that writes the request's `value` (LV-4 set-points): the integers it takes. */
  value: { min: number; max: number } | null;
}

/**
 * Exactly the commands the device's profile declares, the ones the gateway's one validation
 * (device-commands.ts, devices/commands.ts) accepts, in the profile's order.
 */
export function consoleCommands(d: Pick<DeviceConfig, "id" | "model">, config: Config): ConsoleCommand[] {
  const profile: AnyProfile = deviceProfile(d, config);
  const declared = profileFor(d.model) === undefined;
  return Object.entries(profile.commands).map(([name, c]) => ({
    name,
    names: c.names ?? null,
    confirm: declared || c.actuates === true,
    value: "value" in c && c.value === "request" ? { min: c.min, max: c.max } : null,
  }));
}
