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
}
