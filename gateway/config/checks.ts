/**
 * The rules a valid-looking configuration must still meet, beyond its schema:
 * references between sections, ports that would clash, and serial poll plans
 * the line cannot carry. `linli config check`, `linli start` and a reload all
 * run these (through validateConfig), so a file that passes the check starts.
 */
import { profileProblem } from "../../devices/index.js";
import { lineBudgetProblems } from "../southbound/modbus.js";
import { deviceProfile } from "./device-profiles.js";
import { type ConfigProblem, configProblem } from "./problem.js";
import type { Config, DeviceConfig } from "./schema.js";

export function configProblems(config: Config): ConfigProblem[] {
  return [...referenceProblems(config), ...portProblems(config), ...budgetProblems(config)];
}

/** The subject id of the gateway's own alerts (gateway/state/recovery.ts GATEWAY_SUBJECT). */
const RESERVED_SUBJECT = "gateway";

/** Cross-field references: ids unique, buses and households that exist, models that can run. */
export function referenceProblems(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const households = new Set<string>();
  config.households.forEach((h, i) => {
    if (households.has(h.id))
      problems.push(configProblem(`households[${i}].id`, `duplicate household id "${h.id}"`));
    households.add(h.id);
  });
  const buses = new Set<string>();
  config.buses.forEach((b, i) => {
    if (buses.has(b.id)) problems.push(configProblem(`buses[${i}].id`, `duplicate bus id "${b.id}"`));
    buses.add(b.id);
  });
  const units = new Map<string, string>();
  const names = new Map<string, string>();
  config.devices.forEach((d, i) => {
    const seen = names.get(d.id);
    if (seen) problems.push(configProblem(`devices[${i}].id`, `duplicate id "${d.id}" (also ${seen})`));
    names.set(d.id, `devices[${i}]`);
    // A model the gateway could neither poll nor supervise is refused here, never run silently.
    const problem = profileProblem(deviceProfile(d, config));
    if (problem) problems.push(configProblem(`devices[${i}].model`, problem));
    problems.push(...declaredSettingProblems(d, i, config));
    if ("bus" in d) {
      if (!buses.has(d.bus)) problems.push(configProblem(`devices[${i}].bus`, `unknown bus "${d.bus}"`));
      const unitKey = `${d.bus}/${d.unit}`;
      const other = units.get(unitKey);
      if (other)
        problems.push(configProblem(`devices[${i}].unit`, `unit ${d.unit} on bus ${d.bus} is also ${other}`));
      units.set(unitKey, `devices[${i}]`);
    }
    if (d.household !== undefined && !households.has(d.household)) {
      problems.push(configProblem(`devices[${i}].household`, `unknown household "${d.household}"`));
    }
  });
  // Alerts are kept per subject id: a household and a device of one id shared their alerts' state
  // (a reload removing the household closed the device's open calls; out of service held both), and
  // "gateway" is the gateway's own alerts' subject (STORAGE_DEGRADED).
  config.households.forEach((h, i) => {
    const device = names.get(h.id);
    if (device) problems.push(configProblem(`households[${i}].id`, `"${h.id}" is also the id of ${device}`));
    else if (h.id === RESERVED_SUBJECT)
      problems.push(
        configProblem(`households[${i}].id`, `"${h.id}" is reserved for the gateway's own alerts`),
      );
  });
  config.devices.forEach((d, i) => {
    if (d.id === RESERVED_SUBJECT)
      problems.push(configProblem(`devices[${i}].id`, `"${d.id}" is reserved for the gateway's own alerts`));
  });
  config.operators.forEach((o, i) => {
    const seen = names.get(o.name);
    // Usernames share one namespace on the broker: an operator named like a device would be ambiguous.
    if (seen) problems.push(configProblem(`operators[${i}].name`, `"${o.name}" is already used by ${seen}`));
    names.set(o.name, `operators[${i}]`);
  });
  return problems;
}

/** A device of a declared profile (deviceProfiles): its `settings` are the profile's, within their ranges. */
function declaredSettingProblems(d: DeviceConfig, i: number, config: Config): ConfigProblem[] {
  const doc = config.deviceProfiles.find((p) => p.model === d.model);
  if (!doc || !("settings" in d)) return [];
  const problems: ConfigProblem[] = [];
  for (const [k, v] of Object.entries(d.settings as Record<string, number>)) {
    const spec = doc.settings[k];
    const path = `devices[${i}].settings.${k}`;
    if (!spec) {
      const known = Object.keys(doc.settings);
      problems.push(
        configProblem(
          path,
          `not a setting of profile "${d.model}" (${known.length ? `known: ${known.join(", ")}` : "it has none"})`,
        ),
      );
    } else if ((spec.min !== undefined && v < spec.min) || (spec.max !== undefined && v > spec.max))
      problems.push(configProblem(path, `${v} is outside ${spec.min ?? "-∞"}..${spec.max ?? "∞"}`));
  }
  return problems;
}

/** Two hosts that would bind the same address (0.0.0.0 and :: take every address). */
function overlaps(a: string, b: string): boolean {
  const any = (h: string) => h === "0.0.0.0" || h === "::" || h === "";
  return a === b || any(a) || any(b);
}

/**
 * Listeners that would take the same port (MQTT, device listener, metrics, console):
 * `start` would fail on EADDRINUSE after opening the journal; the file says it now.
 * Port 0 (the system picks a free port) never clashes.
 */
export function portProblems(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const taken: Array<{ host: string; port: number; path: string }> = [];
  const claim = (host: string, port: number, path: string, what: string) => {
    if (port === 0) return;
    const other = taken.find((t) => t.port === port && overlaps(t.host, host));
    if (other)
      problems.push(
        configProblem(path, `${what} port ${port} is also ${other.path}'s (${other.host}:${port})`),
      );
    else taken.push({ host, port, path });
  };
  for (const [i, l] of config.mqtt.listeners.entries())
    claim(l.host, l.port, `mqtt.listeners[${i}]`, "MQTT listener");
  const devices = config.mqtt.deviceListener;
  if (devices) claim(devices.host, devices.port, "mqtt.deviceListener", "MQTT device listener");
  if (config.metrics.enabled) claim(config.metrics.host, config.metrics.port, "metrics.port", "metrics");
  if (config.console.enabled) claim(config.console.host, config.console.port, "console.port", "console");
  return problems;
}

/** Serial buses whose poll plan needs more than the line carries (the rule `start` applies to each bus). */
function budgetProblems(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  config.buses.forEach((b, i) => {
    for (const message of lineBudgetProblems({ ...config, buses: [b] }))
      problems.push(configProblem(`buses[${i}]`, message));
  });
  return problems;
}
