/**
 * What an open alert shows of its device (`deviceName`, `location`, the place in its `message`)
 * once a reload has moved the device to another household: the device's name and location as
 * last read while it was in the household the alert keeps (kept-households.ts), not the ones it
 * has in the new place ("1号楼 101室 张阿姨, 呼叫器（卧室）", not the new flat's "客厅"). Per
 * alert, journaled as `devkept/<alertId>` (docs/durability.md), read at start; kept only while the
 * alert is open and its device elsewhere. A device moved back shows its names as the file has them.
 */
import type { Alert } from "./alerts/alert.js";
import type { DeviceConfig } from "./config/schema.js";
import { KEY, PREFIX } from "./state/keys.js";
import type { DurableStore } from "./state/store.js";

/** What an alert shows of its device beside its model and id. */
export type KeptDevice = Pick<DeviceConfig, "name" | "location">;

const FIELDS = ["name", "location"] as const;

function keptOf(d: Partial<Record<(typeof FIELDS)[number], unknown>>): KeptDevice {
  const out: KeptDevice = {};
  for (const f of FIELDS) {
    const v = d[f];
    if (typeof v === "string") out[f] = v;
  }
  return out;
}

export class KeptDevices {
  private readonly kept = new Map<string, KeptDevice>();

  constructor(private readonly store: DurableStore | null) {}

  /** The device's names as the alert keeps them; undefined: the file's now. */
  get(alertId: string): KeptDevice | undefined {
    return this.kept.get(alertId);
  }

  /** At start: what the journal kept (a record of another shape is skipped). */
  restore(): void {
    if (!this.store) return;
    for (const [key, v] of this.store.entries(PREFIX.keptDevice)) {
      if (typeof v !== "object" || v === null) continue;
      this.kept.set(key.slice(PREFIX.keptDevice.length), keptOf(v as Record<string, unknown>));
    }
  }

  /**
   * At start and after each reload: for each open alert of a device now in another household (or
   * none) than the alert's, the device's names as the first of `files` that has it in the alert's
   * household reads them (the file before a reload); one already kept stays as it is (the names it
   * had there, not a later rename in the new place). The others are forgotten.
   */
  refresh(
    openAlerts: Iterable<Alert>,
    devices: ReadonlyArray<DeviceConfig>,
    files: ReadonlyArray<ReadonlyArray<DeviceConfig>>,
  ): void {
    const now = new Map(devices.map((d) => [d.id, d]));
    const elsewhere = new Map<string, Alert>();
    for (const a of openAlerts) {
      if (a.subject.model === "household" || a.subject.model === "gateway") continue;
      const d = now.get(a.subject.id);
      if (d !== undefined && (d.household ?? null) !== a.household) elsewhere.set(a.id, a);
    }
    for (const id of [...this.kept.keys()])
      if (!elsewhere.has(id)) {
        this.kept.delete(id);
        this.store?.delete(KEY.keptDevice(id));
      }
    for (const [id, a] of elsewhere) {
      if (this.kept.has(id)) continue;
      let found: DeviceConfig | undefined;
      for (const file of files) {
        found = file.find((d) => d.id === a.subject.id && (d.household ?? null) === a.household);
        if (found) break;
      }
      // Not known where it was (a start with a file edited meanwhile): the file's names now.
      if (!found) continue;
      const names = keptOf(found);
      this.kept.set(id, names);
      this.store?.put(KEY.keptDevice(id), names);
    }
  }
}
