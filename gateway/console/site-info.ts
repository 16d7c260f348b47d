/**
 * What the console page shows about the site beside the live topics: names of
 * households, residents and devices, so that an operator reads "1号楼 101室"
 * and not only "hh-07". Built from the running config at each request, so a
 * reload shows at once. Only for logged-in operators (gateway/console/server.ts).
 */
import { declaredAlarmText } from "../../devices/index.js";
import type { Config } from "../config/schema.js";
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
  return {
    site: {
      id: site.id,
      name: site.name ?? null,
      locale: site.locale ?? "en",
      timezone: site.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone,
    },
    households: config.households.map((h) => pick(h, HOUSEHOLD_FIELDS)),
    devices: config.devices.map((d) => pick(d, DEVICE_FIELDS)),
    shelveMaxMs: config.alerts.shelveMax,
    codeNames: Object.fromEntries(
      config.deviceProfiles.flatMap((p) =>
        p.alarms.map((a) => [a.code, declaredAlarmText(p.alarms, a.code).title]),
      ),
    ),
    ...(operator === undefined ? {} : { operator: operatorInfo(config, operator) }),
  };
}

function operatorInfo(config: Config, name: string): NonNullable<ConsoleSiteInfo["operator"]> {
  const entry = config.operators.find((o) => o.name === name);
  // Logged in, then removed by a reload before this answer: nothing is offered.
  const role: OperatorRole = entry ? (entry.role ?? DEFAULT_ROLE) : "viewer";
  return { name, role, actions: roleActions(role) };
}
