/**
 * What a scenario's load asks of each device, against the gateway's per-device message rate: a
 * load phase's aggregate rate is spread over the site's MQTT devices in turn (load.ts), and the
 * gateway drops a device's messages beyond its model's token bucket (docs/security.md "Limits",
 * `deviceRate.models`) as `rate-limited`. A site too small for the aggregate rate would see the
 * gateway drop load, not carry it: the run is refused before it starts, with the numbers.
 */
import type { LoadPhase } from "./schema.js";

export interface DeviceRate {
  perSecond: number;
  burst: number;
}

/**
 * The gateway's documented defaults (docs/security.md "Limits": EC-200, DS-10 1/s, burst 120);
 * the simulator keeps its own copy (it shares no tables with the gateway), and a site file's
 * `limits.deviceRate` replaces them (site.ts).
 */
export const DOCUMENTED_DEVICE_RATES: Readonly<Record<string, DeviceRate>> = {
  ec200: { perSecond: 1, burst: 120 },
  ds10: { perSecond: 1, burst: 120 },
};

/** A site's per-device limits as its gateway runs them: off, or a rate per model (others unlimited). */
export interface SiteDeviceRates {
  enabled: boolean;
  models: Readonly<Record<string, DeviceRate>>;
}

/** A site file's `limits.deviceRate` over the defaults, model by model, as the gateway reads it. */
export function siteDeviceRates(file?: {
  enabled: boolean;
  models: Readonly<Record<string, DeviceRate>>;
}): SiteDeviceRates {
  return { enabled: file?.enabled ?? true, models: { ...DOCUMENTED_DEVICE_RATES, ...file?.models } };
}

/** Step of the bucket's simulation, ms: fine against the seconds that load phases last. */
const STEP_MS = 50;

/** Aggregate well-formed messages per second the phase offers at `t` ms after its start (0 outside it). */
function rateAt(p: LoadPhase, t: number): number {
  if (t < 0) return 0;
  if (p.do === "burst") {
    const within = Math.max(1, p.within as number);
    return t < within ? ((p.count as number) * 1000) / within : 0;
  }
  const duration = p.duration as number;
  if (t >= duration) return 0;
  const from = p.rate as number;
  const to = p.do === "ramp" ? (p.to as number) : from;
  // Malformed payloads are refused before the rate is asked (gateway: after decoding): no token.
  return (from + ((to - from) * t) / duration) * (1 - p.malformed);
}

export interface DeviceLoad {
  /** The highest aggregate rate of well-formed load messages, msg/s, all load phases together. */
  peakPerSecond: number;
  /** That rate spread over the devices: what each one sends at the peak, msg/s. */
  peakPerDevice: number;
  /** Messages of one device beyond its bucket over the whole load (0: none dropped). */
  droppedPerDevice: number;
}

/**
 * Each of `devices` devices' share of the load phases (overlapping ones add up), run through a
 * token bucket of `rate` starting full, as the gateway's is.
 */
export function deviceLoad(phases: readonly LoadPhase[], devices: number, rate: DeviceRate): DeviceLoad {
  const end = Math.max(
    0,
    ...phases.map(
      (p) => p.at + (p.do === "burst" ? Math.max(1, p.within as number) : (p.duration as number)),
    ),
  );
  let tokens = rate.burst;
  let dropped = 0;
  let peak = 0;
  for (let t = 0; t < end; t += STEP_MS) {
    const aggregate = phases.reduce((sum, p) => sum + rateAt(p, t - p.at), 0);
    peak = Math.max(peak, aggregate);
    tokens = Math.min(rate.burst, tokens + (rate.perSecond * STEP_MS) / 1000);
    tokens -= (aggregate / devices) * (STEP_MS / 1000);
    if (tokens < 0) {
      dropped -= tokens;
      tokens = 0;
    }
  }
  return { peakPerSecond: peak, peakPerDevice: peak / devices, droppedPerDevice: dropped };
}

/** The fewest devices that carry the load without a drop (at least `from`; the count doubles, then narrows). */
export function devicesNeeded(phases: readonly LoadPhase[], rate: DeviceRate, from: number): number {
  const drops = (n: number) => deviceLoad(phases, n, rate).droppedPerDevice >= 1;
  let lo = Math.max(1, from);
  if (!drops(lo)) return lo;
  let hi = lo * 2;
  while (drops(hi)) {
    lo = hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (drops(mid)) lo = mid;
    else hi = mid;
  }
  return hi;
}

const MODEL_NAMES: Readonly<Record<string, string>> = { ec200: "EC-200", ds10: "DS-10", gd2: "GD-2" };

/**
 * Why the load cannot be carried by `models` (the MQTT devices' models, one entry a device), or
 * undefined when every rate-limited device stays within its bucket. `scale` says how to size a
 * generated site (households for that many devices), if the site is one.
 */
export function overDeviceRate(
  phases: readonly LoadPhase[],
  models: readonly string[],
  rates: SiteDeviceRates,
  hint: { site: string; devicesPerHousehold?: number },
): string | undefined {
  if (!rates.enabled || phases.length === 0 || models.length === 0) return undefined;
  const limited = [...new Set(models)].filter((m) => rates.models[m] !== undefined);
  if (limited.length === 0) return undefined;
  // The tightest bucket among the site's limited models: the load goes round every device alike.
  const tightest = limited
    .map((m) => ({ m, rate: rates.models[m] as DeviceRate }))
    .sort((a, b) => a.rate.perSecond - b.rate.perSecond || a.rate.burst - b.rate.burst)[0] as {
    m: string;
    rate: DeviceRate;
  };
  const load = deviceLoad(phases, models.length, tightest.rate);
  if (load.droppedPerDevice < 1) return undefined;
  const need = devicesNeeded(phases, tightest.rate, models.length);
  const perHousehold = hint.devicesPerHousehold;
  const names = limited.map((m) => MODEL_NAMES[m] ?? m).join(", ");
  const limitedCount = models.filter((m) => rates.models[m] !== undefined).length;
  return (
    `its load peaks at ${fmt(load.peakPerSecond)} msg/s, ${fmt(load.peakPerDevice)} msg/s for each of the ` +
    `${models.length} MQTT devices of ${hint.site}: over the gateway's per-device limit ` +
    `(${names}: ${fmt(tightest.rate.perSecond)} msg/s, burst ${tightest.rate.burst}; docs/security.md "Limits"), ` +
    `which would drop about ${Math.round(load.droppedPerDevice * limitedCount)} of its messages as rate-limited. ` +
    `Carrying it needs at least ${need} MQTT devices` +
    (perHousehold ? ` (--scale ${Math.ceil(need / perHousehold)})` : "") +
    `, or a lower rate in the scenario`
  );
}

const fmt = (v: number) => (v >= 10 ? String(Math.round(v)) : String(Math.round(v * 100) / 100));
