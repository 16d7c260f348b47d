/** Options shared by every scenario (parsed in run.ts). */
export interface CommonOptions {
  durationS: number;
  warmupS: number;
  connections: number;
  /** Devices registered in the gateway config. */
  registered: number;
  alarmFraction: number;
  seed: number;
  /** When set, the gateway child runs with `node --cpu-prof` into this directory. */
  profileDir?: string;
  /** Before each point, wait until other processes use less than this % of a core (max 20 s). */
  quietPct: number;
  /** The gateway's devices on its device listener (mqtt.deviceListener, a worker thread). */
  deviceListener?: boolean;
  /** The journal-on points' sync policy (storage.sync; default "batch", the gateway's default). */
  journalSync?: "batch" | "interval" | "always";
  /** The journal-on points' write design (JournalOptions.writes; default "auto", the gateway's). */
  journalWrites?: "auto" | "pool" | "loop";
}

/** The ceiling suite's load, for the measurement harnesses that run its points (cores.ts, floor-run.ts). */
export const HARNESS_LOAD: Omit<CommonOptions, "durationS"> = {
  warmupS: 1,
  connections: 100,
  registered: 10_000,
  alarmFraction: 0.01,
  seed: 1,
  quietPct: 25,
};

/** Where the gateway's devices connect in a benchmark run. */
export type DevicesOn = "listener" | "aedes";

/**
 * `--devices-on` (or its older shorthand `--device-listener`) resolved against the suite. The
 * ceiling suite measures whether the gateway uses both cores, which it does with its devices on the
 * device listener (docs/performance.md "The device listener"), so it runs there unless told
 * otherwise; the other suites keep aedes' listener, the gateway's own default, on which their
 * earlier figures were measured. Throws (a usage error) on an unknown value or a contradiction.
 */
export function devicesOn(suite: string, option: string | undefined, deviceListenerFlag: boolean): DevicesOn {
  if (option !== undefined && option !== "listener" && option !== "aedes")
    throw new RangeError(`--devices-on must be listener or aedes, not "${option}"`);
  if (deviceListenerFlag && option === "aedes")
    throw new RangeError("--device-listener and --devices-on aedes contradict each other");
  if (option !== undefined) return option;
  if (deviceListenerFlag) return "listener";
  return suite === "ceiling" ? "listener" : "aedes";
}
