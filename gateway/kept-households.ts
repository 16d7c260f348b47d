/**
 * The names of households that open alerts keep (alert.ts `household`: a device moved to another
 * household keeps its open alerts in the one they were raised in) as last read from the site
 * file, so that such an alert still names the person and the place once a reload (or a start with
 * an edited file) has removed that household: before, it said `住户 hh-0101` only. Journaled as
 * `hhkept/<household>` (docs/durability.md), read at start; kept only while an open alert of a
 * device elsewhere names the household. The file's names come first while it has them.
 */
import type { Alert } from "./alerts/alert.js";
import type { HouseholdConfig } from "./config/schema.js";
import { KEY, PREFIX } from "./state/keys.js";
import type { DurableStore } from "./state/store.js";

/** What an alert shows of a household: its names, place and number (not its welfare settings). */
export type KeptHousehold = Pick<
  HouseholdConfig,
  "id" | "name" | "address" | "room" | "residentName" | "contactPhone"
>;

const FIELDS = ["name", "address", "room", "residentName", "contactPhone"] as const;

function keptOf(h: HouseholdConfig | KeptHousehold): KeptHousehold {
  const out: KeptHousehold = { id: h.id };
  for (const f of FIELDS) if (typeof h[f] === "string") out[f] = h[f];
  return out;
}

const same = (a: KeptHousehold, b: KeptHousehold) => FIELDS.every((f) => a[f] === b[f]);

export class KeptHouseholds {
  private readonly kept = new Map<string, KeptHousehold>();

  constructor(private readonly store: DurableStore | null) {}

  /** The last names known of a household the site file may no longer have. */
  get(id: string): KeptHousehold | undefined {
    return this.kept.get(id);
  }

  /** At start: what the journal kept (a record of another shape is skipped). */
  restore(): void {
    if (!this.store) return;
    for (const [key, v] of this.store.entries(PREFIX.keptHousehold)) {
      const id = key.slice(PREFIX.keptHousehold.length);
      const r = v as Partial<Record<(typeof FIELDS)[number], unknown>> | null;
      if (typeof r !== "object" || r === null) continue;
      this.kept.set(id, keptOf({ ...(r as KeptHousehold), id }));
    }
  }

  /**
   * At start and after each reload: the households that open alerts keep while their device is
   * in another household (or none), with their names as `files` have them (the first that has
   * the household: the file now, then the one before a reload); one no file has keeps its last
   * names. The others are forgotten.
   */
  refresh(
    openAlerts: Iterable<Alert>,
    householdOf: (deviceId: string) => string | null | undefined,
    files: ReadonlyArray<ReadonlyArray<HouseholdConfig>>,
  ): void {
    const named = new Set<string>();
    for (const a of openAlerts) {
      if (a.household === null || a.subject.model === "household" || a.subject.model === "gateway") continue;
      if (householdOf(a.subject.id) !== a.household) named.add(a.household);
    }
    for (const id of [...this.kept.keys()])
      if (!named.has(id)) {
        this.kept.delete(id);
        this.store?.delete(KEY.keptHousehold(id));
      }
    for (const id of named) {
      let found: HouseholdConfig | undefined;
      for (const file of files) {
        found = file.find((h) => h.id === id);
        if (found) break;
      }
      if (!found) continue;
      const now = keptOf(found);
      const was = this.kept.get(id);
      if (was && same(was, now)) continue;
      this.kept.set(id, now);
      const { id: _id, ...names } = now;
      this.store?.put(KEY.keptHousehold(id), names);
    }
  }
}
